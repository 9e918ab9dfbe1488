package orca

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// longWait bounds every wait of these tests; they never assert timings.
const longWait = 20 * time.Second

// startServer serves on a loopback port with opts; register adds the
// services. The server stops when the test ends.
func startServer(t *testing.T, register func(*rpc.Server), opts ...rpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(opts...)
	register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// newTestClient is rpc.NewClient with this package's default test
// transport credentials (plaintext); every test client is made here.
func newTestClient(target string, opts ...rpc.DialOption) (*rpc.ClientConn, error) {
	return rpc.NewClient(target, append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
}

// dial returns a client of addr, closed when the test ends.
func dial(t *testing.T, addr string) *rpc.ClientConn {
	t.Helper()
	cc, err := newTestClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	t.Cleanup(cancel)
	return ctx
}

// echoService is echo.v1.Echo whose Unary and Chat run hooks first.
type echoService struct {
	echov1.Service
	unary func(ctx context.Context) error
	chat  func(ctx context.Context) error
}

func (s *echoService) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if s.unary != nil {
		if err := s.unary(ctx); err != nil {
			return nil, err
		}
	}
	return s.Service.Unary(ctx, in)
}

func (s *echoService) Chat(st rpc.BidiStreamingServer[echov1.EchoRequest, echov1.EchoResponse]) error {
	if s.chat != nil {
		if err := s.chat(st.Context()); err != nil {
			return err
		}
	}
	return s.Service.Chat(st)
}
