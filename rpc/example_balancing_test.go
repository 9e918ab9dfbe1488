package rpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync/atomic"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
)

// countingEcho is an echo server that counts its calls.
type countingEcho struct {
	echov1.UnimplementedEchoServer
	calls atomic.Int64
}

func (e *countingEcho) Unary(_ context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	e.calls.Add(1)
	return &echov1.EchoResponse{Message: in.Message}, nil
}

// Three servers behind one target: a manual resolver gives the channel
// their addresses and a service config choosing round_robin, which sends
// each call to the next READY server.
func Example_roundRobin() {
	var servers [3]*countingEcho
	var addrs []resolver.Address
	for i := range servers {
		lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			log.Fatal(err)
		}
		srv := rpc.NewServer()
		servers[i] = &countingEcho{}
		echov1.RegisterEchoServer(srv, servers[i])
		go srv.Serve(lis)
		defer srv.Stop()
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}

	r := manual.NewBuilderWithScheme("example")
	r.InitialState(resolver.State{
		Addresses:     addrs,
		ServiceConfig: r.ParseServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
	})
	cc, err := rpc.NewClient("example:///echo", rpc.WithTransportCredentials(insecure.NewCredentials()), rpc.WithResolvers(r))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Connections come up one by one: call until every server served
	// one, then count afresh.
	for servers[0].calls.Load() == 0 || servers[1].calls.Load() == 0 || servers[2].calls.Load() == 0 {
		if _, err := c.Unary(ctx, &echov1.EchoRequest{Message: "warm up"}, rpc.WaitForReady(true)); err != nil {
			log.Fatal(err)
		}
	}
	for _, s := range servers {
		s.calls.Store(0)
	}
	for range 30 {
		if _, err := c.Unary(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			log.Fatal(err)
		}
	}
	for i, s := range servers {
		fmt.Printf("server %d: %d calls\n", i+1, s.calls.Load())
	}
	// Output:
	// server 1: 10 calls
	// server 2: 10 calls
	// server 3: 10 calls
}
