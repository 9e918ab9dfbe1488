package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// backend is one server of a balancing test, counting the calls it got.
type backend struct {
	addr string
	hits atomic.Int64
	// hold, when set, blocks calls whose request is "hold" until it is
	// closed; held receives one value per held call.
	hold chan struct{}
	held chan struct{}

	srv  *Server
	done chan error
}

// startBackend serves on host (port 0); it stops when the test ends.
func startBackend(t *testing.T, host string) *backend {
	t.Helper()
	b := &backend{held: make(chan struct{}, 16)}
	lis, addr := listenAt(t, host+":0")
	b.addr = addr
	b.serve(lis)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve(lis net.Listener, opts ...ServerOption) {
	b.srv = NewServer(opts...)
	b.srv.RegisterService(&testServiceDesc, &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		b.hits.Add(1)
		if string(in.Value) == "hold" && b.hold != nil {
			b.held <- struct{}{}
			<-b.hold
		}
		return in, nil
	}})
	b.done = make(chan error, 1)
	srv, done := b.srv, b.done
	go func() { done <- srv.Serve(lis) }()
}

// stop stops the server at once (Stop) and waits for it.
func (b *backend) stop() {
	if b.srv == nil {
		return
	}
	b.srv.Stop()
	<-b.done
	b.srv = nil
}

// restart serves again on the same address.
func (b *backend) restart(t *testing.T) {
	t.Helper()
	lis, _ := listenAt(t, b.addr)
	b.serve(lis)
}

func startBackends(t *testing.T, n int) []*backend {
	bs := make([]*backend, n)
	for i := range bs {
		bs[i] = startBackend(t, fmt.Sprintf("127.0.0.%d", i+1))
	}
	return bs
}

func addrsOf(bs ...*backend) []resolver.Address {
	var as []resolver.Address
	for _, b := range bs {
		as = append(as, resolver.Address{Addr: b.addr})
	}
	return as
}

func hitsOf(bs []*backend) []int64 {
	hs := make([]int64, len(bs))
	for i, b := range bs {
		hs[i] = b.hits.Load()
	}
	return hs
}

func resetHits(bs []*backend) {
	for _, b := range bs {
		b.hits.Store(0)
	}
}

// parseSC parses a service config for a resolver state.
func parseSC(t *testing.T, js string) *serviceconfig.ParseResult {
	t.Helper()
	c, err := serviceconfig.Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	return &serviceconfig.ParseResult{Config: c}
}

const roundRobinSC = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// fastBackoff makes failed subchannels retry within milliseconds.
var fastBackoff = WithConnectParams(ConnectParams{
	Backoff:           BackoffConfig{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// manualClient returns a channel to a manual resolver of its own.
func manualClient(t *testing.T, st *resolver.State, opts ...DialOption) (*manual.Resolver, *ClientConn, *testClient) {
	t.Helper()
	r := manual.NewBuilderWithScheme("lbtest")
	if st != nil {
		r.InitialState(*st)
	}
	opts = append([]DialOption{WithResolvers(r), WithLogger(discardLogger())}, opts...)
	cc, c := dial(t, "lbtest:///backends", opts...)
	return r, cc, c
}

// callUntil calls until every backend of want got a call.
func callUntil(t *testing.T, c *testClient, want ...*backend) {
	t.Helper()
	ctx := ctxWait(t)
	for {
		all := true
		for _, b := range want {
			all = all && b.hits.Load() > 0
		}
		if all {
			return
		}
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatalf("call while waiting for every backend to get one: %v", err)
		}
	}
}

// subConnStates reports the state of the channel's subchannels by address.
func subConnStates(cc *ClientConn) map[string]connectivity.State {
	m := map[string]connectivity.State{}
	cc.idleMu.Lock()
	bw := cc.bw
	cc.idleMu.Unlock()
	if bw == nil {
		return m
	}
	cc.ser.run(func() {
		for _, sc := range bw.subConns() {
			addr := sc.Addresses()[0].Addr
			sc.mu.Lock()
			m[addr] = sc.state
			sc.mu.Unlock()
		}
	})
	return m
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(longWait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func TestRoundRobinSpreadsCallsEvenly(t *testing.T) {
	bs := startBackends(t, 3)
	_, _, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)})
	callUntil(t, c, bs...)
	resetHits(bs)
	const n = 300
	ctx := ctxWait(t)
	for range n {
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range hitsOf(bs) {
		if h < n/3-3 || h > n/3+3 {
			t.Errorf("backend %d got %d of %d calls, want %d ± 3 (all: %v)", i, h, n, n/3, hitsOf(bs))
		}
	}
}

// TestRoundRobinStoppedServerLosesNoCallAndComesBack: one of three
// servers stops mid-run; wait-for-ready calls keep succeeding on the
// other two, and the server gets calls again once it is back.
func TestRoundRobinStoppedServerLosesNoCallAndComesBack(t *testing.T) {
	bs := startBackends(t, 3)
	_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)}, fastBackoff)
	callUntil(t, c, bs...)

	ctx := ctxWait(t)
	var failed atomic.Int64
	var wg sync.WaitGroup
	run := func(calls int) {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range calls {
					if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
						failed.Add(1)
						t.Errorf("goroutine %d call %d: %v", g, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	run(25)
	// A hard stop fails the calls in flight on that connection (as in
	// grpc-go, only a retry policy would retry them), so the stop comes
	// between two bursts, and the next burst starts once the channel saw
	// the connection die.
	bs[1].stop()
	waitFor(t, "the stopped server's subchannel is not READY", func() bool {
		return subConnStates(cc)[bs[1].addr] != connectivity.Ready
	})
	resetHits(bs)
	run(50)
	if h := hitsOf(bs); h[1] != 0 || h[0] == 0 || h[2] == 0 || h[0]+h[2] != 200 {
		t.Errorf("calls per backend after the stop: %v, want 0 on the stopped one and 200 on the others", h)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d wait-for-ready calls failed", failed.Load())
	}
	bs[1].restart(t)
	callUntil(t, c, bs[1])
}

// TestPickFirstFailsOverInOrder: pick_first calls the first address;
// when it dies the channel goes IDLE and the next call reconnects,
// trying the addresses in order.
func TestPickFirstFailsOverInOrder(t *testing.T) {
	bs := startBackends(t, 3)
	_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...)}, fastBackoff)
	ctx := ctxWait(t)
	for i := range bs {
		resetHits(bs)
		for range 10 {
			if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
				t.Fatalf("backend %d up: %v", i, err)
			}
		}
		want := make([]int64, len(bs))
		want[i] = 10
		if h := hitsOf(bs); fmt.Sprint(h) != fmt.Sprint(want) {
			t.Fatalf("calls per backend %v, want %v", h, want)
		}
		if s := cc.GetState(); s != connectivity.Ready {
			t.Fatalf("state %v, want READY", s)
		}
		bs[i].stop()
		if !cc.WaitForStateChange(ctx, connectivity.Ready) {
			t.Fatal("still READY after the server stopped")
		}
		if s := cc.GetState(); s != connectivity.Idle {
			t.Fatalf("state %v after the connection was lost, want IDLE", s)
		}
	}
	// Every address is down: a fail-fast call fails UNAVAILABLE, and
	// the channel is TRANSIENT_FAILURE.
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if s := cc.GetState(); s != connectivity.TransientFailure {
		t.Errorf("state %v with every address down, want TRANSIENT_FAILURE", s)
	}
	// The first address comes back: pick_first returns to it.
	bs[0].restart(t)
	resetHits(bs)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if h := hitsOf(bs); h[0] != 1 {
		t.Errorf("calls per backend %v after the first came back, want it on the first", h)
	}
}

// TestRoundRobinAddressUpdateAddsAndDrains: a new address list adds
// backends, and a removed backend finishes the calls it was serving.
func TestRoundRobinAddressUpdateAddsAndDrains(t *testing.T) {
	bs := startBackends(t, 3)
	sc := parseSC(t, roundRobinSC)
	r, _, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs[0]), ServiceConfig: sc})
	ctx := ctxWait(t)
	bs[0].hold = make(chan struct{})
	heldErr := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("hold")), WaitForReady(true))
		heldErr <- err
	}()
	<-bs[0].held
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs[1], bs[2]), ServiceConfig: sc}); err != nil {
		t.Fatal(err)
	}
	resetHits(bs)
	callUntil(t, c, bs[1], bs[2])
	for range 20 {
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	close(bs[0].hold)
	if err := <-heldErr; err != nil {
		t.Errorf("the call on the removed backend: %v, want it to finish", err)
	}
	if h := bs[0].hits.Load(); h != 0 {
		t.Errorf("the removed backend got %d calls after its removal", h)
	}
}

func TestResolverErrorFailsFastCallsWithUnavailable(t *testing.T) {
	r, cc, c := manualClient(t, nil)
	cc.Connect()
	r.ReportError(errors.New("no such host: backends.example"))
	ctx := ctxWait(t)
	for s := cc.GetState(); s != connectivity.TransientFailure; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatal("no TRANSIENT_FAILURE after the resolver error")
		}
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(status.Convert(err).Message(), "no such host: backends.example") {
		t.Errorf("error %v does not carry the resolver's", err)
	}
	// A wait-for-ready call waits instead, until its deadline.
	short, cancel := context.WithTimeout(ctx, shortWait)
	defer cancel()
	_, err = c.Unary(short, wrapperspb.Bytes(nil), WaitForReady(true))
	wantCode(t, err, codes.DeadlineExceeded)
}

// TestServiceConfigSwitchesPolicy: the resolver's service config moves
// the channel from pick_first to round_robin and back.
func TestServiceConfigSwitchesPolicy(t *testing.T) {
	bs := startBackends(t, 3)
	r, _, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...)})
	ctx := ctxWait(t)
	for range 10 {
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if h := hitsOf(bs); h[0] != 10 {
		t.Fatalf("pick_first: calls per backend %v, want all on the first", h)
	}
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)}); err != nil {
		t.Fatal(err)
	}
	// The switch is graceful: pick_first keeps picking until round_robin
	// is READY, so fail-fast calls never fail meanwhile.
	for deadline := time.Now().Add(longWait); bs[1].hits.Load() == 0 || bs[2].hits.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("round_robin never reached every backend: %v", hitsOf(bs))
		}
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
			t.Fatalf("fail-fast call during the policy switch: %v", err)
		}
	}
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, `{"loadBalancingConfig": [{"no_such_policy": {}}, {"pick_first": {}}]}`)}); err != nil {
		t.Fatal(err)
	}
	// Once pick_first is back, calls go to the first address only.
	waitFor(t, "calls go to the first backend only", func() bool {
		resetHits(bs)
		for range 10 {
			if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
				t.Fatal(err)
			}
		}
		return bs[0].hits.Load() == 10
	})
}

// TestInvalidServiceConfig: a config that does not parse fails the
// channel when it has no config yet, and is ignored when it has one.
func TestInvalidServiceConfig(t *testing.T) {
	bs := startBackends(t, 1)
	bad := &serviceconfig.ParseResult{Err: errors.New("bad json here")}
	r, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...), ServiceConfig: bad})
	ctx := ctxWait(t)
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(err.Error(), "bad json here") {
		t.Errorf("error %v does not carry the config's", err)
	}
	if s := cc.GetState(); s != connectivity.TransientFailure {
		t.Errorf("state %v, want TRANSIENT_FAILURE", s)
	}
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs...), ServiceConfig: bad}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("after a bad config following a good one: %v", err)
	}
	if got := cc.serviceConfig(); got == nil || len(got.LoadBalancing) != 1 || got.LoadBalancing[0].Name != "round_robin" {
		t.Errorf("service config %+v, want the previous (round_robin) one kept", got)
	}
}

func TestChannelStateAPI(t *testing.T) {
	bs := startBackends(t, 1)
	_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...)},
		WithBackoff(BackoffConfig{BaseDelay: time.Hour, Multiplier: 1.6, MaxDelay: time.Hour}))
	if s := cc.GetState(); s != connectivity.Idle {
		t.Fatalf("new channel %v, want IDLE", s)
	}
	ctx := ctxWait(t)
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("Connect: stuck in %v", s)
		}
	}
	// The server goes; the channel goes IDLE; a call fails (the only
	// address is down) and the channel waits out an hour of backoff.
	bs[0].stop()
	if !cc.WaitForStateChange(ctx, connectivity.Ready) {
		t.Fatal("still READY")
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if s := cc.GetState(); s != connectivity.TransientFailure {
		t.Fatalf("state %v, want TRANSIENT_FAILURE", s)
	}
	bs[0].restart(t)
	short, cancel := context.WithTimeout(ctx, shortWait)
	defer cancel()
	if cc.WaitForStateChange(short, connectivity.TransientFailure) {
		t.Fatalf("state changed to %v during the backoff", cc.GetState())
	}
	// ResetConnectBackoff ends the wait: the channel reconnects now.
	cc.ResetConnectBackoff()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("after ResetConnectBackoff: stuck in %v", s)
		}
	}
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestChannelGoesIdleAfterIdleTimeout: without calls the channel drops
// its resolver, balancer and connection, and the next call wakes it.
func TestChannelGoesIdleAfterIdleTimeout(t *testing.T) {
	bs := startBackends(t, 1)
	var builds, closes atomic.Int32
	r := manual.NewBuilderWithScheme("idletest")
	r.InitialState(resolver.State{Addresses: addrsOf(bs...)})
	r.BuildCallback = func(resolver.Target, resolver.ClientConn, resolver.BuildOptions) { builds.Add(1) }
	r.CloseCallback = func() { closes.Add(1) }
	cc, c := dial(t, "idletest:///x", WithResolvers(r), WithIdleTimeout(100*time.Millisecond))
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	for s := cc.GetState(); s != connectivity.Idle; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("never IDLE (state %v)", s)
		}
	}
	if n := closes.Load(); n != 1 {
		t.Errorf("resolver closed %d times on going idle, want 1", n)
	}
	waitFor(t, "the idle channel's connection closed", func() bool { return transportCount(cc) == 0 })
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("call after idle: %v", err)
	}
	if n := builds.Load(); n != 2 {
		t.Errorf("resolver built %d times, want 2 (once more after idle)", n)
	}
}

// TestIdleTimeoutWaitsForOpenCalls: a call in progress keeps the
// channel out of idle, however long it lasts.
func TestIdleTimeoutWaitsForOpenCalls(t *testing.T) {
	bs := startBackends(t, 1)
	bs[0].hold = make(chan struct{})
	_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...)}, WithIdleTimeout(50*time.Millisecond))
	ctx := ctxWait(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("hold")))
		errc <- err
	}()
	<-bs[0].held
	short, cancel := context.WithTimeout(ctx, 4*50*time.Millisecond)
	defer cancel()
	if cc.WaitForStateChange(short, connectivity.Ready) {
		t.Errorf("state %v with a call open, want READY", cc.GetState())
	}
	close(bs[0].hold)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// withDefaultServiceConfig stands in, in tests, for the
// WithDefaultServiceConfig option another change adds.
func withDefaultServiceConfig(t *testing.T, js string) DialOption {
	c := parseSC(t, js).Config
	return dialOptionFunc(func(o *dialOptions) { o.channel.defaultServiceConfig = c })
}

// TestDefaultServiceConfig: the default config applies when the
// resolver gives none, or an invalid one before any valid one.
func TestDefaultServiceConfig(t *testing.T) {
	bs := startBackends(t, 3)
	for _, tc := range []struct {
		name string
		sc   *serviceconfig.ParseResult
	}{
		{"no config", nil},
		{"invalid config", &serviceconfig.ParseResult{Err: errors.New("bad json")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetHits(bs)
			_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...), ServiceConfig: tc.sc},
				withDefaultServiceConfig(t, roundRobinSC))
			callUntil(t, c, bs...) // round_robin: every backend gets calls
			if got := cc.serviceConfig(); got == nil || got.LoadBalancing[0].Name != "round_robin" {
				t.Errorf("service config %+v, want the default", got)
			}
		})
	}
}

// TestDisableServiceConfig: with WithDisableServiceConfig the resolver's
// config is ignored (pick_first, the default, stays), and the resolver
// is told.
func TestDisableServiceConfig(t *testing.T) {
	bs := startBackends(t, 3)
	var disabled atomic.Bool
	r := manual.NewBuilderWithScheme("nosc")
	r.InitialState(resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)})
	r.BuildCallback = func(_ resolver.Target, _ resolver.ClientConn, o resolver.BuildOptions) {
		disabled.Store(o.DisableServiceConfig)
	}
	_, c := dial(t, "nosc:///x", WithResolvers(r), WithDisableServiceConfig())
	ctx := ctxWait(t)
	for range 10 {
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if h := hitsOf(bs); h[0] != 10 {
		t.Errorf("calls per backend %v, want all on the first (pick_first)", h)
	}
	if !disabled.Load() {
		t.Error("the resolver was not told the service config is disabled")
	}
}

// TestRoundRobinTransientFailureOnlyWhenAllFail: the channel stays READY
// while any backend is, and fails fast calls only once all are down.
func TestRoundRobinTransientFailureOnlyWhenAllFail(t *testing.T) {
	bs := startBackends(t, 3)
	_, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...), ServiceConfig: parseSC(t, roundRobinSC)}, fastBackoff)
	callUntil(t, c, bs...)
	ctx := ctxWait(t)
	for _, b := range bs[:2] {
		b.stop()
		waitFor(t, "the stopped server's subchannel is not READY", func() bool {
			return subConnStates(cc)[b.addr] != connectivity.Ready
		})
		if s := cc.GetState(); s != connectivity.Ready {
			t.Fatalf("state %v with a backend up, want READY", s)
		}
		for range 5 {
			if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
				t.Fatalf("fail-fast call with a backend up: %v", err)
			}
		}
	}
	bs[2].stop()
	for s := cc.GetState(); s != connectivity.TransientFailure; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("state %v with every backend down, want TRANSIENT_FAILURE", s)
		}
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %v does not say the connection failed", err)
	}
}

// TestLostConnectionAsksResolverToResolveAgain: when the connection of a
// READY subchannel is lost, the balancer asks the resolver to resolve
// again, through the channel.
func TestLostConnectionAsksResolverToResolveAgain(t *testing.T) {
	for _, policy := range []string{"pick_first", "round_robin"} {
		t.Run(policy, func(t *testing.T) {
			bs := startBackends(t, 1)
			var resolveNows atomic.Int32
			r, _, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs...),
				ServiceConfig: parseSC(t, `{"loadBalancingConfig": [{"`+policy+`": {}}]}`)})
			r.ResolveNowCallback = func(resolver.ResolveNowOptions) { resolveNows.Add(1) }
			if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
				t.Fatal(err)
			}
			if n := resolveNows.Load(); n != 0 {
				t.Fatalf("%d ResolveNow calls while the connection is fine", n)
			}
			bs[0].stop()
			waitFor(t, "a ResolveNow after the connection was lost", func() bool { return resolveNows.Load() > 0 })
		})
	}
}

// TestPickFirstKeepsConnectionOnAddressUpdate: a new address list that
// still holds the connected address keeps the connection (even when
// another address now comes first); one without it moves the calls.
func TestPickFirstKeepsConnectionOnAddressUpdate(t *testing.T) {
	bs := startBackends(t, 3)
	r, _, c := manualClient(t, &resolver.State{Addresses: addrsOf(bs[0], bs[1])})
	ctx := ctxWait(t)
	call := func() {
		t.Helper()
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	call()
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs[2], bs[1], bs[0])}); err != nil {
		t.Fatal(err)
	}
	resetHits(bs)
	for range 10 {
		call()
	}
	if h := hitsOf(bs); h[0] != 10 {
		t.Fatalf("calls per backend %v after a reordered list, want all still on the first", h)
	}
	// The connected address leaves the list: the next calls go to the
	// first of the new list.
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(bs[2], bs[1])}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "calls go to the new first address", func() bool {
		resetHits(bs)
		call()
		return bs[2].hits.Load() == 1
	})
	if h := bs[0].hits.Load(); h != 0 {
		t.Errorf("the removed backend got %d calls", h)
	}
}
