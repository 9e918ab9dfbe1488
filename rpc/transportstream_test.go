package rpc

import (
	"context"
	"io"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// recordingTransportStream is a ServerTransportStream that records what
// it is given and passes it on to next, when there is one.
type recordingTransportStream struct {
	method string
	next   ServerTransportStream

	mu                    sync.Mutex
	header, sent, trailer metadata.MD
}

func (r *recordingTransportStream) Method() string { return r.method }

func (r *recordingTransportStream) SetHeader(md metadata.MD) error {
	r.mu.Lock()
	r.header = metadata.Join(r.header, md)
	r.mu.Unlock()
	if r.next != nil {
		return r.next.SetHeader(md)
	}
	return nil
}

func (r *recordingTransportStream) SendHeader(md metadata.MD) error {
	r.mu.Lock()
	r.sent = metadata.Join(r.sent, md)
	r.mu.Unlock()
	if r.next != nil {
		return r.next.SendHeader(md)
	}
	return nil
}

func (r *recordingTransportStream) SetTrailer(md metadata.MD) error {
	r.mu.Lock()
	r.trailer = metadata.Join(r.trailer, md)
	r.mu.Unlock()
	if r.next != nil {
		return r.next.SetTrailer(md)
	}
	return nil
}

// TestServerTransportStreamInEveryHandlerContext: the contexts of unary
// and streaming handlers and of both kinds of interceptor carry a
// ServerTransportStream naming the method, and what is set through it
// reaches the client.
func TestServerTransportStreamInEveryHandlerContext(t *testing.T) {
	check := func(ctx context.Context, want string) error {
		sts := ServerTransportStreamFromContext(ctx)
		if sts == nil {
			return status.Errorf(codes.Internal, "no ServerTransportStream in the context of %s", want)
		}
		if got := sts.Method(); got != want {
			return status.Errorf(codes.Internal, "Method() = %q, want %q", got, want)
		}
		if got, ok := Method(ctx); !ok || got != want {
			return status.Errorf(codes.Internal, "rpc.Method = %q, %v, want %q", got, ok, want)
		}
		return nil
	}
	svc := &testService{
		unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			if err := check(ctx, "/test.v1.Test/Unary"); err != nil {
				return nil, err
			}
			sts := ServerTransportStreamFromContext(ctx)
			if err := sts.SetHeader(metadata.Pairs("h", "unary")); err != nil {
				return nil, err
			}
			if err := sts.SetTrailer(metadata.Pairs("t", "unary")); err != nil {
				return nil, err
			}
			return in, nil
		},
		bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
			if err := check(s.Context(), "/test.v1.Test/Bidi"); err != nil {
				return err
			}
			sts := ServerTransportStreamFromContext(s.Context())
			if err := sts.SendHeader(metadata.Pairs("h", "bidi")); err != nil {
				return err
			}
			return sts.SetTrailer(metadata.Pairs("t", "bidi"))
		},
	}
	_, addr := startServer(t, svc,
		UnaryInterceptor(func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		StreamInterceptor(func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}))
	_, c := dial(t, addr)

	var hdr, trl metadata.MD
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Header(&hdr), Trailer(&trl)); err != nil {
		t.Fatal(err)
	}
	if mdValue(hdr, "h") != "unary" || mdValue(trl, "t") != "unary" {
		t.Errorf("unary: header %v, trailer %v", hdr, trl)
	}

	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	if hdr, err := s.Header(); err != nil || mdValue(hdr, "h") != "bidi" {
		t.Errorf("bidi: header %v, %v", hdr, err)
	}
	s.CloseSend()
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("bidi: Recv = %v, want io.EOF", err)
	}
	if mdValue(s.Trailer(), "t") != "bidi" {
		t.Errorf("bidi: trailer %v", s.Trailer())
	}
}

// TestHeaderFunctionsUseTheContextsTransportStream: an interceptor that
// wraps the handler's context with NewContextWithServerTransportStream
// sees what the handler sets with rpc.SetHeader, SendHeader and
// SetTrailer, and rpc.Method answers from it; passed on, the metadata
// still reaches the client.
func TestHeaderFunctionsUseTheContextsTransportStream(t *testing.T) {
	rec := make(chan *recordingTransportStream, 1)
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if m, _ := Method(ctx); m != "/wrapped" {
			return nil, status.Errorf(codes.Internal, "rpc.Method = %q, want the wrapper's", m)
		}
		if err := SetHeader(ctx, metadata.Pairs("set", "1")); err != nil {
			return nil, err
		}
		if err := SendHeader(ctx, metadata.Pairs("sent", "1")); err != nil {
			return nil, err
		}
		if err := SetTrailer(ctx, metadata.Pairs("trailer", "1")); err != nil {
			return nil, err
		}
		return in, nil
	}}
	_, addr := startServer(t, svc, UnaryInterceptor(func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error) {
		r := &recordingTransportStream{method: "/wrapped", next: ServerTransportStreamFromContext(ctx)}
		rec <- r
		return handler(NewContextWithServerTransportStream(ctx, r), req)
	}))
	_, c := dial(t, addr)
	var hdr, trl metadata.MD
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Header(&hdr), Trailer(&trl)); err != nil {
		t.Fatal(err)
	}
	r := <-rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if mdValue(r.header, "set") != "1" || mdValue(r.sent, "sent") != "1" || mdValue(r.trailer, "trailer") != "1" {
		t.Errorf("the wrapper saw header %v, sent %v, trailer %v", r.header, r.sent, r.trailer)
	}
	if mdValue(hdr, "set") != "1" || mdValue(hdr, "sent") != "1" || mdValue(trl, "trailer") != "1" {
		t.Errorf("the client got header %v, trailer %v", hdr, trl)
	}
}

// TestHeaderFunctionsWithAFakeTransportStream: handler code can be tested
// without a server, with a fake stream in a plain context; without one,
// the functions fail with INTERNAL (empty metadata is a no-op, as in
// grpc-go).
func TestHeaderFunctionsWithAFakeTransportStream(t *testing.T) {
	fake := &recordingTransportStream{method: "/pkg.Svc/M"}
	ctx := NewContextWithServerTransportStream(context.Background(), fake)
	if got := ServerTransportStreamFromContext(ctx); got != fake {
		t.Fatalf("ServerTransportStreamFromContext = %v, want the fake", got)
	}
	if m, ok := Method(ctx); !ok || m != "/pkg.Svc/M" {
		t.Errorf("Method = %q, %v", m, ok)
	}
	if err := SetHeader(ctx, metadata.Pairs("a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := SendHeader(ctx, metadata.Pairs("b", "2")); err != nil {
		t.Fatal(err)
	}
	if err := SetTrailer(ctx, metadata.Pairs("c", "3")); err != nil {
		t.Fatal(err)
	}
	if mdValue(fake.header, "a") != "1" || mdValue(fake.sent, "b") != "2" || mdValue(fake.trailer, "c") != "3" {
		t.Errorf("fake got header %v, sent %v, trailer %v", fake.header, fake.sent, fake.trailer)
	}

	bg := context.Background()
	if ServerTransportStreamFromContext(bg) != nil {
		t.Error("a background context has a ServerTransportStream")
	}
	if _, ok := Method(bg); ok {
		t.Error("Method(background) ok")
	}
	wantCode(t, SetHeader(bg, metadata.Pairs("a", "1")), codes.Internal)
	wantCode(t, SendHeader(bg, nil), codes.Internal)
	wantCode(t, SetTrailer(bg, metadata.Pairs("a", "1")), codes.Internal)
	if err := SetHeader(bg, nil); err != nil {
		t.Errorf("SetHeader(empty) = %v, want nil", err)
	}
	if err := SetTrailer(bg, metadata.MD{}); err != nil {
		t.Errorf("SetTrailer(empty) = %v, want nil", err)
	}
}

// TestHandlerSeesAuthorityInIncomingMetadata: as in grpc-go, a handler's
// incoming metadata holds the request's :authority (the dialed address,
// or WithAuthority's), content-type and user-agent beside the custom
// metadata.
func TestHandlerSeesAuthorityInIncomingMetadata(t *testing.T) {
	got := make(chan metadata.MD, 2)
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md
		return in, nil
	}}
	_, addr := startServer(t, svc)
	for _, tc := range []struct {
		name, want string
		opts       []DialOption
	}{
		{"dialed", addr, nil},
		{"override", "svc.example.com:443", []DialOption{WithAuthority("svc.example.com:443")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := dial(t, addr, tc.opts...)
			ctx := metadata.AppendToOutgoingContext(ctxWait(t), "k", "v")
			if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
				t.Fatal(err)
			}
			md := <-got
			if a := md.Get(":authority"); len(a) != 1 || a[0] != tc.want {
				t.Errorf(":authority = %q, want %q", a, tc.want)
			}
			if ct := mdValue(md, "content-type"); ct != "application/grpc" {
				t.Errorf("content-type = %q, want application/grpc", ct)
			}
			if mdValue(md, "user-agent") == "" || mdValue(md, "k") != "v" {
				t.Errorf("metadata = %v", md)
			}
		})
	}
}

// TestServerTransportStreamFromContextAllocatesNothing: a handler's
// context serves its ServerTransportStream from the serverStream itself,
// so looking it up (what rpc.SetHeader and friends do) allocates nothing.
func TestServerTransportStreamFromContextAllocatesNothing(t *testing.T) {
	st := &serverStream{}
	st.sctx = streamContext{Context: context.Background(), st: st}
	ctx := context.Context(&st.sctx)
	var got ServerTransportStream
	allocs := testing.AllocsPerRun(100, func() { got = ServerTransportStreamFromContext(ctx) })
	if allocs != 0 {
		t.Errorf("ServerTransportStreamFromContext allocates %v times per call, want 0", allocs)
	}
	if got != (*transportStream)(st) {
		t.Errorf("ServerTransportStreamFromContext = %v, want the stream's own", got)
	}
}
