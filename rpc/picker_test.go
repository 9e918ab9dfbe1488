package rpc

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// doneBalancer is a test policy: one subchannel over all addresses, and
// a picker that adds metadata and records every call's DoneInfo; until
// the subchannel is READY its picker fails with pickErr.
type doneBalancer struct {
	cc balancer.ClientConn
	sc balancer.SubConn
}

type doneBuilder struct{}

const donePolicy = "test_done_metadata"

var (
	doneMu    sync.Mutex
	doneInfos []balancer.DoneInfo
	// pickErr is what the picker fails with until READY.
	pickErr atomic.Pointer[error]
)

func init() { balancer.Register(doneBuilder{}) }

func (doneBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &doneBalancer{cc: cc}
}
func (doneBuilder) Name() string { return donePolicy }

func (b *doneBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if b.sc != nil {
		return nil
	}
	var err error
	b.sc, err = b.cc.NewSubConn(s.ResolverState.Addresses, balancer.NewSubConnOptions{StateListener: b.listen})
	if err != nil {
		return err
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: errPicker{*pickErr.Load()}})
	b.sc.Connect()
	return nil
}

func (b *doneBalancer) listen(st balancer.SubConnState) {
	switch st.ConnectivityState {
	case connectivity.Ready:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: donePicker{b.sc}})
	case connectivity.Idle:
		b.sc.Connect()
	}
}

func (b *doneBalancer) ResolverError(error) {}
func (b *doneBalancer) ExitIdle()           {}
func (b *doneBalancer) Close()              {}

type donePicker struct{ sc balancer.SubConn }

func (p donePicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{
		SubConn:  p.sc,
		Metadata: metadata.Pairs("picked-by", donePolicy),
		Done: func(di balancer.DoneInfo) {
			doneMu.Lock()
			doneInfos = append(doneInfos, di)
			doneMu.Unlock()
		},
	}, nil
}

// TestPickResultDoneAndMetadata: the picker's metadata reaches the
// server, and its Done hears once how each call ended.
func TestPickResultDoneAndMetadata(t *testing.T) {
	var noErr error = balancer.ErrNoSubConnAvailable
	pickErr.Store(&noErr)
	doneMu.Lock()
	doneInfos = nil
	doneMu.Unlock()
	var gotMD atomic.Value
	_, addr := startServer(t, &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		gotMD.Store(mdValue(md, "picked-by"))
		if string(in.Value) == "fail" {
			SetTrailer(ctx, metadata.Pairs("why", "asked-to"))
			return nil, status.Error(codes.Aborted, "failed as asked")
		}
		return in, nil
	}})
	sc := `{"loadBalancingConfig": [{"` + donePolicy + `": {}}]}`
	_, _, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: addr}}, ServiceConfig: parseSC(t, sc)})
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	if v, _ := gotMD.Load().(string); v != donePolicy {
		t.Errorf("server got picked-by %q, want the picker's metadata", v)
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("fail")))
	wantCode(t, err, codes.Aborted)
	doneMu.Lock()
	defer doneMu.Unlock()
	if len(doneInfos) != 2 {
		t.Fatalf("Done called %d times for 2 calls", len(doneInfos))
	}
	if di := doneInfos[0]; di.Err != nil || !di.BytesSent || !di.BytesReceived {
		t.Errorf("Done of the OK call: %+v", di)
	}
	if di := doneInfos[1]; status.Code(di.Err) != codes.Aborted || mdValue(di.Trailer, "why") != "asked-to" {
		t.Errorf("Done of the failed call: err %v, trailer %v", di.Err, di.Trailer)
	}
}

// TestPickerPlainErrorIsUnavailable: a picker error that is not a status
// fails a fail-fast call with UNAVAILABLE, and makes a wait-for-ready
// call wait.
func TestPickerPlainErrorIsUnavailable(t *testing.T) {
	plain := errors.New("plain picker error")
	pickErr.Store(&plain)
	// An address nobody answers on: the subchannel never gets READY.
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	sc := `{"loadBalancingConfig": [{"` + donePolicy + `": {}}]}`
	_, _, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: "127.0.0.1:1"}}, ServiceConfig: parseSC(t, sc)},
		WithContextDialer(dialer))
	ctx := ctxWait(t)
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if status.Convert(err).Message() != plain.Error() {
		t.Errorf("message %q, want the picker's error", status.Convert(err).Message())
	}
	short, cancel := context.WithTimeout(ctx, shortWait)
	defer cancel()
	_, err = c.Unary(short, wrapperspb.Bytes(nil), WaitForReady(true))
	wantCode(t, err, codes.DeadlineExceeded)
}

// TestIdleChannelCostsNoGoroutine: channels that were never used, and
// channels that went idle, run no goroutine.
func TestIdleChannelCostsNoGoroutine(t *testing.T) {
	bs := startBackends(t, 1)
	base := runtime.NumGoroutine()
	var ccs []*ClientConn
	for range 20 {
		cc, err := newTestClient(bs[0].addr)
		if err != nil {
			t.Fatal(err)
		}
		ccs = append(ccs, cc)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines for 20 new channels, want none (%d before, %d after)", n-base, base, n)
	}
	for _, cc := range ccs {
		cc.Close()
	}
	// A channel that went idle after a call holds no connection and no
	// goroutine either.
	cc, c := dial(t, bs[0].addr, WithIdleTimeout(50*time.Millisecond))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxWait(t)
	for s := cc.GetState(); s != connectivity.Idle; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatal("never idle")
		}
	}
	waitFor(t, "the idle channel's connection closed", func() bool { return transportCount(cc) == 0 })
	waitFor(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base+1 })
}

// TestCloseClosesResolverFirstAndCallsItNoMore: Close closes the
// resolver before the balancer and the connections; after Close, the
// resolver's updates and the balancer's requests reach nothing.
func TestCloseClosesResolverFirstAndCallsItNoMore(t *testing.T) {
	bs := startBackends(t, 1)
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	var resolveNows atomic.Int32
	r := manual.NewBuilderWithScheme("closetest")
	r.InitialState(resolver.State{Addresses: addrsOf(bs...)})
	r.ResolveNowCallback = func(resolver.ResolveNowOptions) { resolveNows.Add(1) }
	cc, c := dial(t, "closetest:///x", WithResolvers(r))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	rcc := r.CC()
	r.CloseCallback = func() {
		note("resolver")
		if n := transportCount(cc); n != 1 {
			t.Errorf("%d transports when the resolver closed, want the one still open", n)
		}
	}
	cc.Close()
	note("closed")
	if len(order) != 2 || order[0] != "resolver" {
		t.Errorf("close order %v, want the resolver first", order)
	}
	// A late update from the old resolver reaches nothing.
	n := resolveNows.Load()
	rcc.UpdateState(resolver.State{})
	rcc.ReportError(errors.New("late"))
	if got := resolveNows.Load(); got != n {
		t.Errorf("ResolveNow called %d times after Close", got-n)
	}
	if s := cc.GetState(); s != connectivity.Shutdown {
		t.Errorf("state %v after a late update, want SHUTDOWN", s)
	}
}

// connectingBuilder builds a policy that stays CONNECTING for good.
type connectingBuilder struct{}

func init() { balancer.Register(connectingBuilder{}) }

func (connectingBuilder) Name() string { return "test_always_connecting" }
func (connectingBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return connectingBalancer{cc}
}

type connectingBalancer struct{ cc balancer.ClientConn }

func (b connectingBalancer) UpdateClientConnState(balancer.ClientConnState) error {
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: errPicker{balancer.ErrNoSubConnAvailable}})
	return nil
}
func (connectingBalancer) ResolverError(error) {}
func (connectingBalancer) ExitIdle()           {}
func (connectingBalancer) Close()              {}

// TestPolicySwitchKeepsOldPolicyUntilNewOneIsReady: a READY channel
// switching to a policy that is still connecting keeps picking with the
// old one.
func TestPolicySwitchKeepsOldPolicyUntilNewOneIsReady(t *testing.T) {
	bs := startBackends(t, 1)
	r, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...)})
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs...),
		ServiceConfig: parseSC(t, `{"loadBalancingConfig": [{"test_always_connecting": {}}]}`)}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		short, cancel := context.WithTimeout(ctx, longWait/4)
		_, err := c.Unary(short, wrapperspb.Bytes(nil))
		cancel()
		if err != nil {
			t.Fatalf("call after switching to a policy still connecting: %v", err)
		}
	}
	if s := cc.GetState(); s != connectivity.Ready {
		t.Errorf("state %v, want READY (the old policy's)", s)
	}
}
