package rpc_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// echo implements echo.v1.Echo's unary and server-streaming methods; the
// embedded UnimplementedEchoServer answers the others with UNIMPLEMENTED.
type echo struct {
	echov1.UnimplementedEchoServer
}

func (echo) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if in.Message == "" {
		return nil, status.Error(codes.InvalidArgument, "message is empty")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	rpc.SetTrailer(ctx, metadata.Pairs("caller", md.Get("caller")[0]))
	return &echov1.EchoResponse{Message: in.Message}, nil
}

func (echo) Expand(in *echov1.ExpandRequest, s rpc.ServerStreamingServer[echov1.EchoResponse]) error {
	for i := range in.Count {
		if err := s.Send(&echov1.EchoResponse{Message: in.Message, Sequence: uint64(i)}); err != nil {
			return err
		}
	}
	return nil
}

// A server and a client of a generated service in one program.
func Example() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer()
	echov1.RegisterEchoServer(srv, echo{})
	go srv.Serve(lis)
	defer srv.GracefulStop()

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "caller", "example")

	// Unary, with the trailer metadata.
	var trailer metadata.MD
	resp, err := c.Unary(ctx, &echov1.EchoRequest{Message: "hello"}, rpc.Trailer(&trailer))
	fmt.Println(resp.GetMessage(), trailer.Get("caller"), err)

	// An error status.
	_, err = c.Unary(ctx, &echov1.EchoRequest{})
	fmt.Println(status.Code(err), status.Convert(err).Message())

	// Server streaming.
	stream, err := c.Expand(ctx, &echov1.ExpandRequest{Message: "tick", Count: 3})
	if err != nil {
		log.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Message, m.Sequence)
	}

	// A method the server does not implement.
	up, err := c.Collect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_, err = up.CloseAndRecv()
	fmt.Println(status.Code(err))
	// Output:
	// hello [example] <nil>
	// InvalidArgument message is empty
	// tick 0
	// tick 1
	// tick 2
	// Unimplemented
}
