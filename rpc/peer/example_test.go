package peer_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/peer"
)

// who answers with what it knows of its caller.
type who struct {
	echov1.UnimplementedEchoServer
}

func (who) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return &echov1.EchoResponse{Message: "unknown caller"}, nil
	}
	host, _, _ := net.SplitHostPort(p.Addr.String())
	msg := fmt.Sprintf("from %s over %s", host, p.AuthInfo.AuthType())
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && ti.SPIFFEID != nil {
		msg += " as " + ti.SPIFFEID.String()
	}
	return &echov1.EchoResponse{Message: msg}, nil
}

// A handler learns who called with peer.FromContext (its interceptors
// too), and a client which server answered with the rpc.Peer call option.
func ExampleFromContext() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.Creds(insecure.NewCredentials()))
	echov1.RegisterEchoServer(srv, who{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var server peer.Peer
	resp, err := echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{}, rpc.Peer(&server))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Message)
	fmt.Println(server.Addr.String() == lis.Addr().String())
	// Output:
	// from 127.0.0.1 over insecure
	// true
}
