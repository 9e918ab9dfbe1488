package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/peer"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/rpc/tap"
)

// tenantKey keys the tenant the test's tap hook puts in a context.
type tenantKey struct{}

// TestInTapHandleRefusedRPCsNeverReachTheHandler: an InTapHandle sees
// each RPC's method and metadata (:authority included) before anything
// else runs; an RPC it refuses ends with its error's status
// (PERMISSION_DENIED for an error without one) and reaches no
// interceptor or handler, while the other RPCs of the same connection
// carry on, with the context the hook returned.
func TestInTapHandleRefusedRPCsNeverReachTheHandler(t *testing.T) {
	var handled, intercepted atomic.Int32
	authority := make(chan string, 16)
	hook := func(ctx context.Context, info *tap.Info) (context.Context, error) {
		authority <- mdValue(info.Header, ":authority")
		switch tenant := mdValue(info.Header, "tenant"); tenant {
		case "over-quota":
			return nil, status.Errorf(codes.ResourceExhausted, "tenant %s is over its quota for %s", tenant, info.FullMethodName)
		case "unknown":
			return nil, errors.New("who are you")
		default:
			return context.WithValue(ctx, tenantKey{}, tenant), nil
		}
	}
	svc := &testService{
		unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			handled.Add(1)
			if tenant, _ := ctx.Value(tenantKey{}).(string); tenant != "ok" {
				return nil, status.Errorf(codes.Internal, "the handler's context has tenant %q, want the hook's", tenant)
			}
			return in, nil
		},
		bidi: func(BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
			handled.Add(1)
			return nil
		},
	}
	_, addr := startServer(t, svc, InTapHandle(hook),
		UnaryInterceptor(func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error) {
			intercepted.Add(1)
			return handler(ctx, req)
		}),
		StreamInterceptor(func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error {
			intercepted.Add(1)
			return handler(srv, ss)
		}))
	_, c := dial(t, addr)
	as := func(tenant string) context.Context {
		return metadata.AppendToOutgoingContext(ctxWait(t), "tenant", tenant)
	}

	for i := range 3 {
		if _, err := c.Unary(as("ok"), wrapperspb.Bytes(nil)); err != nil {
			t.Fatalf("admitted call %d: %v", i, err)
		}
		_, err := c.Unary(as("over-quota"), wrapperspb.Bytes(nil))
		wantCode(t, err, codes.ResourceExhausted)
		if want := "tenant over-quota is over its quota for /test.v1.Test/Unary"; status.Convert(err).Message() != want {
			t.Errorf("message %q, want %q", status.Convert(err).Message(), want)
		}
		_, err = c.Unary(as("unknown"), wrapperspb.Bytes(nil))
		wantCode(t, err, codes.PermissionDenied)
		if msg := status.Convert(err).Message(); msg != "who are you" {
			t.Errorf("message %q, want the error's text", msg)
		}
	}
	s, err := c.Bidi(as("over-quota"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.ResourceExhausted)

	if got := handled.Load(); got != 3 {
		t.Errorf("handlers ran %d times, want 3 (the admitted calls only)", got)
	}
	if got := intercepted.Load(); got != 3 {
		t.Errorf("interceptors ran %d times, want 3 (the admitted calls only)", got)
	}
	for range 10 {
		if a := <-authority; a != addr {
			t.Fatalf("the hook saw :authority %q, want %q", a, addr)
		}
	}
}

// TestInTapHandleAdmittingWithANilContext: a hook that admits an RPC but
// returns a nil context does not break it: the handler gets the RPC's own
// context.
func TestInTapHandleAdmittingWithANilContext(t *testing.T) {
	hook := func(context.Context, *tap.Info) (context.Context, error) { return nil, nil }
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if m, ok := Method(ctx); !ok || m != "/test.v1.Test/Unary" {
			return nil, status.Errorf(codes.Internal, "Method = %q, %v", m, ok)
		}
		if v := metadata.ValueFromIncomingContext(ctx, "k"); len(v) != 1 || v[0] != "v" {
			return nil, status.Errorf(codes.Internal, "metadata k = %q", v)
		}
		if ctx.Err() != nil {
			return nil, status.Errorf(codes.Internal, "context ended: %v", ctx.Err())
		}
		return in, nil
	}}
	_, addr := startServer(t, svc, InTapHandle(hook), Logger(discardLogger()))
	_, c := dial(t, addr)
	ctx := metadata.AppendToOutgoingContext(ctxWait(t), "k", "v")
	if _, err := c.Unary(ctx, wrapperspb.Bytes([]byte("x"))); err != nil {
		t.Fatal(err)
	}
}

// TestInTapHandlePanicRefusesOnlyThatRPC: a hook that panics (on input a
// client chose, say) must not take the server process down with the
// connection's reader goroutine: the RPC fails with INTERNAL, as a
// handler's panic does, and the connection serves the next RPCs.
func TestInTapHandlePanicRefusesOnlyThatRPC(t *testing.T) {
	hook := func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if mdValue(info.Header, "boom") != "" {
			var m map[string]int
			m["x"] = 1 // a nil map write: a runtime panic
		}
		return ctx, nil
	}
	svc := &testService{unary: func(_ context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		return in, nil
	}}
	_, addr := startServer(t, svc, InTapHandle(hook), Logger(discardLogger()))
	_, c := dial(t, addr)
	for i := range 3 {
		_, err := c.Unary(metadata.AppendToOutgoingContext(ctxWait(t), "boom", "1"), wrapperspb.Bytes(nil))
		wantCode(t, err, codes.Internal)
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
			t.Fatalf("call %d after a panicking hook: %v", i, err)
		}
	}
}

// TestInTapHandleSeesThePeer: the hook's context carries the client's
// peer (peer.FromContext), as grpc-go's does, so that a per-client rate
// limit can key on the client's address or certificate.
func TestInTapHandleSeesThePeer(t *testing.T) {
	seen := make(chan string, 1)
	hook := func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		p, ok := peer.FromContext(ctx)
		if !ok || p.Addr == nil {
			return nil, status.Error(codes.FailedPrecondition, "no peer in the tap's context")
		}
		select {
		case seen <- p.Addr.String():
		default:
		}
		return ctx, nil
	}
	svc := &testService{unary: func(_ context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		return in, nil
	}}
	_, addr := startServer(t, svc, InTapHandle(hook))
	_, c := dial(t, addr)
	var p peer.Peer
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Peer(&p)); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != p.LocalAddr.String() {
		t.Errorf("the tap saw peer %s, want the client's address %s", got, p.LocalAddr)
	}
}

// TestInTapHandleSeesPeer: the InTapHandle's context carries the
// connection's peer (addresses and the TLS AuthInfo), as grpc-go's, so
// that admission can be per client (a rate limit by address or by
// certificate).
func TestInTapHandleSeesPeer(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	seen := make(chan *peer.Peer, 1)
	hook := func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		p, _ := peer.FromContext(ctx)
		seen <- p
		return ctx, nil
	}
	_, addr := startServer(t, &testService{}, InTapHandle(hook),
		serverTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}))
	_, c := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client("alice")}}))
	var mine peer.Peer
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Peer(&mine)); err != nil {
		t.Fatal(err)
	}
	p := <-seen
	if p == nil {
		t.Fatal("no peer in the InTapHandle's context")
	}
	if p.Addr == nil || p.Addr.String() != mine.LocalAddr.String() {
		t.Errorf("peer address %v, want the client's %v", p.Addr, mine.LocalAddr)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 || ti.State.PeerCertificates[0].Subject.CommonName != "alice" {
		t.Errorf("peer AuthInfo %#v, want the client's certificate", p.AuthInfo)
	}
}
