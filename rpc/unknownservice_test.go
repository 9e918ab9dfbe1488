package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// TestUnknownServiceHandlerGetsUnknownServicesAndMethods: with
// UnknownServiceHandler, RPCs to a service that is not registered and to
// an unknown method of one that is reach the handler (srv nil, as a
// bidirectional stream, through the stream interceptors), and the error
// it returns is their status; registered methods are served as before.
func TestUnknownServiceHandlerGetsUnknownServicesAndMethods(t *testing.T) {
	var mu sync.Mutex
	var intercepted []StreamServerInfo
	_, addr := startServer(t, &testService{},
		UnknownServiceHandler(func(srv any, stream ServerStream) error {
			if srv != nil {
				return status.Errorf(codes.Internal, "srv = %v, want nil", srv)
			}
			m, ok := Method(stream.Context())
			if !ok {
				return status.Error(codes.Internal, "no method in the context")
			}
			var in wrapperspb.BytesValue
			if err := stream.RecvMsg(&in); err != nil {
				return err
			}
			return status.Errorf(codes.NotFound, "no route for %s (%s)", m, in.Value)
		}),
		StreamInterceptor(func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error {
			mu.Lock()
			intercepted = append(intercepted, *info)
			mu.Unlock()
			return handler(srv, ss)
		}))
	cc, c := dial(t, addr)
	for _, method := range []string{"/other.v1.Svc/Do", "/test.v1.Test/Nope"} {
		err := cc.Invoke(ctxWait(t), method, wrapperspb.Bytes([]byte("req")), new(wrapperspb.BytesValue))
		wantCode(t, err, codes.NotFound)
		if want := "no route for " + method + " (req)"; status.Convert(err).Message() != want {
			t.Errorf("%s: message %q, want %q", method, status.Convert(err).Message(), want)
		}
	}
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("x"))); err != nil {
		t.Fatalf("registered method: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(intercepted) != 2 {
		t.Fatalf("the stream interceptor saw %d RPCs, want 2: %+v", len(intercepted), intercepted)
	}
	for i, want := range []string{"/other.v1.Svc/Do", "/test.v1.Test/Nope"} {
		if got := intercepted[i]; got != (StreamServerInfo{FullMethod: want, IsClientStream: true, IsServerStream: true}) {
			t.Errorf("interceptor info %+v, want %s as a bidi stream", got, want)
		}
	}
}

// rawFrame is a message a proxy passes through undecoded.
type rawFrame struct{ payload []byte }

// proxyCodec passes *rawFrame through as bytes and codes everything else
// as protobuf, as grpc-go proxies' codecs do. Registered under its own
// content subtype, so the test changes no other RPC of this binary.
type proxyCodec struct{}

const proxyCodecName = "proxytest"

func (proxyCodec) Name() string { return proxyCodecName }

func (proxyCodec) Marshal(v any) ([]byte, error) {
	if f, ok := v.(*rawFrame); ok {
		return f.payload, nil
	}
	return codec.ProtoCodec{}.Marshal(v)
}

func (proxyCodec) Unmarshal(data []byte, v any) error {
	if f, ok := v.(*rawFrame); ok {
		f.payload = append(f.payload[:0], data...) // data is lent for the call only
		return nil
	}
	return codec.ProtoCodec{}.Unmarshal(data, v)
}

func init() { codec.RegisterCodec(proxyCodec{}) }

// proxyHandler returns an UnknownServiceHandler that forwards every RPC
// to backend frame by frame, with its metadata, and returns the
// backend's status.
func proxyHandler(backend *ClientConn) StreamHandler {
	return func(_ any, stream ServerStream) error {
		method, _ := Method(stream.Context())
		md, _ := metadata.FromIncomingContext(stream.Context())
		ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(stream.Context(), md))
		defer cancel()
		out, err := backend.NewStream(ctx, &StreamDesc{ClientStreams: true, ServerStreams: true}, method, CallContentSubtype(proxyCodecName))
		if err != nil {
			return err
		}
		go func() { // client to backend
			var f rawFrame
			for {
				if err := stream.RecvMsg(&f); err != nil {
					if errors.Is(err, io.EOF) {
						out.CloseSend()
					} else {
						cancel()
					}
					return
				}
				if err := out.SendMsg(&f); err != nil {
					return
				}
			}
		}()
		var f rawFrame
		for {
			if err := out.RecvMsg(&f); err != nil {
				stream.SetTrailer(out.Trailer())
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := stream.SendMsg(&f); err != nil {
				return err
			}
		}
	}
}

// TestUnknownServiceHandlerProxiesRawFrames: a proxy built on
// UnknownServiceHandler and a pass-through codec forwards unary and
// streaming RPCs it knows nothing about, messages, metadata and status
// unchanged.
func TestUnknownServiceHandlerProxiesRawFrames(t *testing.T) {
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if string(in.Value) == "fail" {
			return nil, status.Error(codes.FailedPrecondition, "backend says no")
		}
		SetTrailer(ctx, metadata.Pairs("backend-saw", mdValue(metadataOf(ctx), "x-caller")))
		return wrapperspb.Bytes(append([]byte("backend:"), in.Value...)), nil
	}}
	_, backendAddr := startServer(t, svc)
	backend, _ := dial(t, backendAddr)

	proxy := NewServer(UnknownServiceHandler(proxyHandler(backend)))
	proxyAddr := serveBare(t, proxy)
	_, c := dial(t, proxyAddr, WithDefaultCallOptions(CallContentSubtype(proxyCodecName)))

	ctx := metadata.AppendToOutgoingContext(ctxWait(t), "x-caller", "client-1")
	var trl metadata.MD
	out, err := c.Unary(ctx, wrapperspb.Bytes([]byte("hi")), Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Value) != "backend:hi" || mdValue(trl, "backend-saw") != "client-1" {
		t.Errorf("unary through the proxy: %q, trailer %v", out.Value, trl)
	}
	_, err = c.Unary(ctx, wrapperspb.Bytes([]byte("fail")))
	wantCode(t, err, codes.FailedPrecondition)

	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "bb", "ccc"} {
		if err := s.Send(wrapperspb.Bytes([]byte(m))); err != nil {
			t.Fatal(err)
		}
		got, err := s.Recv()
		if err != nil || string(got.Value) != m {
			t.Fatalf("bidi through the proxy: %v, %v, want %q", got, err, m)
		}
	}
	s.CloseSend()
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("bidi end: %v, want io.EOF", err)
	}
}

// metadataOf returns the incoming metadata of ctx.
func metadataOf(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

// serveBare serves srv, with whatever it has registered, on a loopback
// port until the test ends, and returns the address.
func serveBare(t testing.TB, srv *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}
