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
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// flaky fails its first two calls with UNAVAILABLE.
type flaky struct {
	echov1.UnimplementedEchoServer
	calls atomic.Int32
}

func (f *flaky) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if f.calls.Add(1) <= 2 {
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	return &echov1.EchoResponse{Message: in.Message}, nil
}

// A service config gives echo.v1.Echo's methods a timeout and a retry
// policy: the call succeeds on its third attempt.
func ExampleWithDefaultServiceConfig() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer()
	svc := &flaky{}
	echov1.RegisterEchoServer(srv, svc)
	go srv.Serve(lis)
	defer srv.GracefulStop()

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(insecure.NewCredentials()), rpc.WithDefaultServiceConfig(`{
	  "methodConfig": [{
	    "name": [{"service": "echo.v1.Echo"}],
	    "timeout": "10s",
	    "retryPolicy": {
	      "maxAttempts": 4,
	      "initialBackoff": "0.01s",
	      "maxBackoff": "0.1s",
	      "backoffMultiplier": 2,
	      "retryableStatusCodes": ["UNAVAILABLE"]
	    }
	  }],
	  "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{Message: "hello"})
	fmt.Println(resp.GetMessage(), err, svc.calls.Load())
	// Output: hello <nil> 3
}
