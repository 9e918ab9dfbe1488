package rpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/rpc/tap"
)

// newExampleClient is how the new examples and tests of package rpc_test
// connect to their server.
func newExampleClient(addr string) (*rpc.ClientConn, error) {
	return rpc.NewClient(addr, rpc.WithTransportCredentials(insecure.NewCredentials()))
}

// serveExample serves srv on a loopback port and returns its address.
func serveExample(srv *rpc.Server) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	return lis.Addr().String()
}

// quota admits a fixed number of calls per client: a stand-in for a real
// rate limiter (a token bucket per client, say). It must be quick, since
// it runs on the connection's reader.
type quota struct {
	mu   sync.Mutex
	left map[string]int
	per  int
}

func (q *quota) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	client := info.Header.Get("client-id")
	if len(client) != 1 {
		return nil, status.Error(codes.Unauthenticated, "no client-id")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n, seen := q.left[client[0]]
	if !seen {
		n = q.per
	}
	if n == 0 {
		return nil, status.Errorf(codes.ResourceExhausted, "client %s is over its quota", client[0])
	}
	q.left[client[0]] = n - 1
	return ctx, nil
}

// A per-client rate limit: InTapHandle refuses a client's calls past its
// quota before any handler or interceptor runs for them.
func ExampleInTapHandle() {
	q := &quota{left: map[string]int{}, per: 2}
	srv := rpc.NewServer(rpc.InTapHandle(q.admit))
	echov1.RegisterEchoServer(srv, echo{})
	addr := serveExample(srv)
	defer srv.GracefulStop()

	cc, err := newExampleClient(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, client := range []string{"a", "a", "a", "b"} {
		ctx := metadata.AppendToOutgoingContext(ctx, "client-id", client, "caller", "example")
		_, err := c.Unary(ctx, &echov1.EchoRequest{Message: "hi"})
		fmt.Println(client, status.Code(err))
	}
	// Output:
	// a OK
	// a OK
	// a ResourceExhausted
	// b OK
}

// A server that answers every method it does not know, here with a
// status naming it; a proxy would forward the stream instead.
func ExampleUnknownServiceHandler() {
	srv := rpc.NewServer(rpc.UnknownServiceHandler(func(_ any, stream rpc.ServerStream) error {
		method, _ := rpc.Method(stream.Context())
		return status.Errorf(codes.NotFound, "no backend for %s", method)
	}))
	addr := serveExample(srv)
	defer srv.GracefulStop()

	cc, err := newExampleClient(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{Message: "hi"})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	// Output:
	// NotFound no backend for /echo.v1.Echo/Unary
}

// fakeStream is a ServerTransportStream for testing handler code without
// a server.
type fakeStream struct{ header, trailer metadata.MD }

func (*fakeStream) Method() string { return "/echo.v1.Echo/Unary" }
func (f *fakeStream) SetHeader(md metadata.MD) error {
	f.header = metadata.Join(f.header, md)
	return nil
}
func (f *fakeStream) SendHeader(md metadata.MD) error { return f.SetHeader(md) }
func (f *fakeStream) SetTrailer(md metadata.MD) error {
	f.trailer = metadata.Join(f.trailer, md)
	return nil
}

// Testing a handler that sets trailers: a fake ServerTransportStream in
// its context receives what it sets.
func ExampleNewContextWithServerTransportStream() {
	fake := &fakeStream{}
	ctx := rpc.NewContextWithServerTransportStream(context.Background(), fake)
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("caller", "test"))
	resp, err := echo{}.Unary(ctx, &echov1.EchoRequest{Message: "hi"})
	fmt.Println(resp.GetMessage(), err, fake.trailer.Get("caller"))
	// Output:
	// hi <nil> [test]
}
