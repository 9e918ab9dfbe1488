package roundrobin

import (
	"errors"
	"strings"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// fakeCC is the channel as the balancer sees it, recorded.
type fakeCC struct {
	subs        []*fakeSubConn
	state       balancer.State
	resolveNows int
}

type fakeSubConn struct {
	addrs    []resolver.Address
	listener func(balancer.SubConnState)
	connects int
	shutdown bool
}

func (sc *fakeSubConn) Connect()                      { sc.connects++ }
func (sc *fakeSubConn) Shutdown()                     { sc.shutdown = true }
func (sc *fakeSubConn) Addresses() []resolver.Address { return sc.addrs }
func (sc *fakeSubConn) set(s connectivity.State, err error) {
	sc.listener(balancer.SubConnState{ConnectivityState: s, ConnectionError: err})
}

func (cc *fakeCC) NewSubConn(addrs []resolver.Address, o balancer.NewSubConnOptions) (balancer.SubConn, error) {
	sc := &fakeSubConn{addrs: addrs, listener: o.StateListener}
	cc.subs = append(cc.subs, sc)
	return sc, nil
}
func (cc *fakeCC) UpdateState(s balancer.State)          { cc.state = s }
func (cc *fakeCC) ResolveNow(resolver.ResolveNowOptions) { cc.resolveNows++ }
func (cc *fakeCC) Target() string                        { return "fake:///target" }

func addrs(as ...string) balancer.ClientConnState {
	var s balancer.ClientConnState
	for _, a := range as {
		s.ResolverState.Addresses = append(s.ResolverState.Addresses, resolver.Address{Addr: a})
	}
	return s
}

func newRR(t *testing.T, as ...string) (*fakeCC, balancer.Balancer) {
	t.Helper()
	cc := &fakeCC{}
	b := balancer.Get(Name).Build(cc, balancer.BuildOptions{})
	if err := b.UpdateClientConnState(addrs(as...)); err != nil {
		t.Fatal(err)
	}
	return cc, b
}

func TestPicksEveryReadySubConnInTurn(t *testing.T) {
	cc, _ := newRR(t, "a", "b", "c")
	for _, sc := range cc.subs {
		if sc.connects != 1 {
			t.Errorf("%v: %d Connect calls, want 1", sc.addrs, sc.connects)
		}
		sc.set(connectivity.Connecting, nil)
		sc.set(connectivity.Ready, nil)
	}
	if cc.state.ConnectivityState != connectivity.Ready {
		t.Fatalf("state %v, want READY", cc.state.ConnectivityState)
	}
	count := map[balancer.SubConn]int{}
	var prev balancer.SubConn
	for range 30 {
		r, err := cc.state.Picker.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if r.SubConn == prev {
			t.Fatal("the same subchannel picked twice in a row")
		}
		prev = r.SubConn
		count[r.SubConn]++
	}
	for _, sc := range cc.subs {
		if count[sc] != 10 {
			t.Errorf("%v picked %d times of 30, want 10", sc.addrs, count[sc])
		}
	}
}

func TestTransientFailureOnlyWhenAllFailAndSticky(t *testing.T) {
	cc, _ := newRR(t, "a", "b")
	a, b := cc.subs[0], cc.subs[1]
	a.set(connectivity.TransientFailure, errors.New("a refused"))
	if cc.state.ConnectivityState != connectivity.Connecting {
		t.Fatalf("state %v with one subchannel still trying, want CONNECTING", cc.state.ConnectivityState)
	}
	b.set(connectivity.TransientFailure, errors.New("b refused"))
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Fatalf("state %v with all failed, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
	// Not a status error: the channel fails fail-fast RPCs with
	// UNAVAILABLE and keeps wait-for-ready ones waiting.
	_, err := cc.state.Picker.Pick(balancer.PickInfo{})
	if _, isStatus := status.FromError(err); err == nil || isStatus || !strings.Contains(err.Error(), "b refused") {
		t.Errorf("pick error %v, want a plain error carrying the last connection error", err)
	}
	// a's backoff ends: it goes IDLE and is reconnected at once, and the
	// channel stays TRANSIENT_FAILURE through the attempt.
	a.set(connectivity.Idle, nil)
	if a.connects != 2 {
		t.Errorf("a: %d Connect calls, want 2 (reconnected after its backoff)", a.connects)
	}
	a.set(connectivity.Connecting, nil)
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Errorf("state %v while a failed subchannel retries, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
	a.set(connectivity.Ready, nil)
	if cc.state.ConnectivityState != connectivity.Ready {
		t.Errorf("state %v, want READY", cc.state.ConnectivityState)
	}
	// A READY subchannel that loses its connection reconnects and asks
	// for re-resolution.
	n := cc.resolveNows
	a.set(connectivity.Idle, nil)
	if a.connects != 3 || cc.resolveNows == n {
		t.Errorf("after losing a READY connection: %d Connect calls (want 3), %d ResolveNow (want more than %d)", a.connects, cc.resolveNows, n)
	}
}

func TestAddressUpdateAddsAndRemoves(t *testing.T) {
	cc, b := newRR(t, "a", "b")
	if err := b.UpdateClientConnState(addrs("b", "c")); err != nil {
		t.Fatal(err)
	}
	if len(cc.subs) != 3 {
		t.Fatalf("%d subchannels made, want 3 (c added)", len(cc.subs))
	}
	if !cc.subs[0].shutdown || cc.subs[1].shutdown || cc.subs[2].shutdown {
		t.Errorf("shut down: a %v b %v c %v, want only a", cc.subs[0].shutdown, cc.subs[1].shutdown, cc.subs[2].shutdown)
	}
	// A removed subchannel's late state changes are ignored.
	cc.subs[0].set(connectivity.Ready, nil)
	if cc.state.ConnectivityState == connectivity.Ready {
		t.Error("a removed subchannel made the channel READY")
	}
	if err := b.UpdateClientConnState(addrs()); !errors.Is(err, balancer.ErrBadResolverState) {
		t.Errorf("empty address list: %v, want ErrBadResolverState", err)
	}
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Errorf("state %v without addresses, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
}
