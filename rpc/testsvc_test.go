package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Test timeouts: long for what must happen, short for what must not.
const (
	longWait  = 20 * time.Second
	shortWait = 100 * time.Millisecond
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testService is a hand-written service (what protoc-gen-rpc would
// generate) with one method of each kind, on wrapperspb.BytesValue.
type testService struct {
	unary    func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
	download func(in *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error
	upload   func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error
	bidi     func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error
}

type testServer interface {
	Unary(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
}

func (t *testService) Unary(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	if t.unary != nil {
		return t.unary(ctx, in)
	}
	return in, nil
}

var testServiceDesc = ServiceDesc{
	ServiceName: "test.v1.Test",
	HandlerType: (*testServer)(nil),
	Methods: []MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(testServer).Unary(ctx, in)
			}
			info := &UnaryServerInfo{Server: srv, FullMethod: "/test.v1.Test/Unary"}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(testServer).Unary(ctx, req.(*wrapperspb.BytesValue))
			})
		},
	}},
	Streams: []StreamDesc{
		{
			StreamName:    "Download",
			ServerStreams: true,
			Handler: func(srv any, stream ServerStream) error {
				in := new(wrapperspb.BytesValue)
				if err := stream.RecvMsg(in); err != nil {
					return err
				}
				t := srv.(*testService)
				s := &GenericServerStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ServerStream: stream}
				if t.download != nil {
					return t.download(in, s)
				}
				for range 3 {
					if err := s.Send(in); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			StreamName:    "Upload",
			ClientStreams: true,
			Handler: func(srv any, stream ServerStream) error {
				t := srv.(*testService)
				s := &GenericServerStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ServerStream: stream}
				if t.upload != nil {
					return t.upload(s)
				}
				var total []byte
				for {
					m, err := s.Recv()
					if err == io.EOF {
						return s.SendAndClose(wrapperspb.Bytes(total))
					}
					if err != nil {
						return err
					}
					total = append(total, m.Value...)
				}
			},
		},
		{
			StreamName:    "Bidi",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(srv any, stream ServerStream) error {
				t := srv.(*testService)
				s := &GenericServerStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ServerStream: stream}
				if t.bidi != nil {
					return t.bidi(s)
				}
				for {
					m, err := s.Recv()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					if err := s.Send(m); err != nil {
						return err
					}
				}
			},
		},
	},
}

// testClient is the client stub protoc-gen-rpc would generate.
type testClient struct{ cc ClientConnInterface }

func (c *testClient) Unary(ctx context.Context, in *wrapperspb.BytesValue, opts ...CallOption) (*wrapperspb.BytesValue, error) {
	out := new(wrapperspb.BytesValue)
	if err := c.cc.Invoke(ctx, "/test.v1.Test/Unary", in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *testClient) Download(ctx context.Context, in *wrapperspb.BytesValue, opts ...CallOption) (ServerStreamingClient[wrapperspb.BytesValue], error) {
	s, err := c.cc.NewStream(ctx, &testServiceDesc.Streams[0], "/test.v1.Test/Download", opts...)
	if err != nil {
		return nil, err
	}
	x := &GenericClientStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ClientStream: s}
	if err := x.SendMsg(in); err != nil {
		return nil, err
	}
	if err := x.CloseSend(); err != nil {
		return nil, err
	}
	return x, nil
}

func (c *testClient) Upload(ctx context.Context, opts ...CallOption) (ClientStreamingClient[wrapperspb.BytesValue, wrapperspb.BytesValue], error) {
	s, err := c.cc.NewStream(ctx, &testServiceDesc.Streams[1], "/test.v1.Test/Upload", opts...)
	if err != nil {
		return nil, err
	}
	return &GenericClientStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ClientStream: s}, nil
}

func (c *testClient) Bidi(ctx context.Context, opts ...CallOption) (BidiStreamingClient[wrapperspb.BytesValue, wrapperspb.BytesValue], error) {
	s, err := c.cc.NewStream(ctx, &testServiceDesc.Streams[2], "/test.v1.Test/Bidi", opts...)
	if err != nil {
		return nil, err
	}
	return &GenericClientStream[wrapperspb.BytesValue, wrapperspb.BytesValue]{ClientStream: s}, nil
}

// startServer serves svc on a loopback port and returns its address.
func startServer(t testing.TB, svc *testService, opts ...ServerOption) (*Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(opts...)
	srv.RegisterService(&testServiceDesc, svc)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, lis.Addr().String()
}

// newTestClient is NewClient with this package's default test transport
// credentials (plaintext), which a test's own WithTransportCredentials
// overrides. Every client of the package's tests is made here.
func newTestClient(target string, opts ...DialOption) (*ClientConn, error) {
	return NewClient(target, append([]DialOption{WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
}

// clientTLS and serverTLS are the TLS options of the package's tests.
func clientTLS(cfg *tls.Config) DialOption {
	return WithTransportCredentials(credentials.NewTLS(cfg))
}

func serverTLS(cfg *tls.Config) ServerOption { return Creds(credentials.NewTLS(cfg)) }

func dial(t testing.TB, addr string, opts ...DialOption) (*ClientConn, *testClient) {
	t.Helper()
	cc, err := newTestClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, &testClient{cc: cc}
}

func ctxWait(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails the test unless err has code c.
func wantCode(t testing.TB, err error, c codes.Code) {
	t.Helper()
	if got := status.Code(err); got != c {
		t.Fatalf("error %v: code %v, want %v", err, got, c)
	}
}

// mdValue returns md's single value for key or "".
func mdValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) == 1 {
		return v[0]
	}
	return ""
}

// listenAt listens on addr, retrying briefly while a just-closed port is
// being released.
func listenAt(t testing.TB, addr string) (net.Listener, string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(longWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var lis net.Listener
		if lis, err = net.Listen("tcp", addr); err == nil {
			return lis, lis.Addr().String()
		}
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil, ""
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
