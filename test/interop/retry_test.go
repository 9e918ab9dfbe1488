package interop_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	grpcmetadata "google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc"
)

// TestH2rpcClientRetriesGrpcGoServer: a grpc-go server fails the first
// attempt with UNAVAILABLE and a pushback of 0 ms; our client, under a
// retry policy, retries at once and the second attempt, which announces
// one previous attempt, succeeds.
func TestH2rpcClientRetriesGrpcGoServer(t *testing.T) {
	var mu sync.Mutex
	var prev []string
	handler := func(_ any, stream grpc.ServerStream) error {
		md, _ := grpcmetadata.FromIncomingContext(stream.Context())
		p := ""
		if v := md.Get("grpc-previous-rpc-attempts"); len(v) > 0 {
			p = v[0]
		}
		mu.Lock()
		prev = append(prev, p)
		n := len(prev)
		mu.Unlock()
		in := new(wrapperspb.BytesValue)
		if err := stream.RecvMsg(in); err != nil {
			return err
		}
		if n == 1 {
			stream.SetTrailer(grpcmetadata.Pairs("grpc-retry-pushback-ms", "0"))
			return grpcstatus.Error(grpccodes.Unavailable, "try again")
		}
		return stream.SendMsg(in)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.UnknownServiceHandler(handler))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	defer func() {
		gs.Stop()
		<-served
	}()
	cc, err := newTestClient(lis.Addr().String(), rpc.WithDefaultServiceConfig(`{"methodConfig": [{
	  "name": [{"service": "h2rpc.interop.Retry"}],
	  "retryPolicy": {"maxAttempts": 3, "initialBackoff": "10s", "maxBackoff": "10s",
	    "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	out := new(wrapperspb.BytesValue)
	if err := cc.Invoke(ctx, "/h2rpc.interop.Retry/Echo", wrapperspb.Bytes([]byte("again")), out); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if string(out.Value) != "again" {
		t.Errorf("reply %q", out.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(prev) != 2 || prev[0] != "" || prev[1] != "1" {
		t.Errorf("grpc-previous-rpc-attempts per attempt = %q, want [\"\" \"1\"]", prev)
	}
}
