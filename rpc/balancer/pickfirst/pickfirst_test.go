package pickfirst

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

// TestStickyTransientFailureAndIdleAfterLoss: pick_first stays
// TRANSIENT_FAILURE through retries until READY, and goes IDLE (and asks
// for re-resolution) when a READY connection is lost; the next pick
// reconnects.
func TestStickyTransientFailureAndIdleAfterLoss(t *testing.T) {
	cc := &fakeCC{}
	b := balancer.Get(Name).Build(cc, balancer.BuildOptions{})
	s := balancer.ClientConnState{ResolverState: resolver.State{Addresses: []resolver.Address{{Addr: "a"}, {Addr: "b"}}}}
	if err := b.UpdateClientConnState(s); err != nil {
		t.Fatal(err)
	}
	if len(cc.subs) != 1 || len(cc.subs[0].addrs) != 2 || cc.subs[0].connects != 1 {
		t.Fatalf("subchannels %+v, want one over both addresses, connecting", cc.subs)
	}
	sc := cc.subs[0]
	sc.set(connectivity.Connecting, nil)
	sc.set(connectivity.TransientFailure, errors.New("all refused"))
	if cc.state.ConnectivityState != connectivity.TransientFailure || cc.resolveNows != 1 {
		t.Fatalf("state %v, %d ResolveNow; want TRANSIENT_FAILURE, 1", cc.state.ConnectivityState, cc.resolveNows)
	}
	// Not a status error: the channel fails fail-fast RPCs with
	// UNAVAILABLE and keeps wait-for-ready ones waiting.
	if _, err := cc.state.Picker.Pick(balancer.PickInfo{}); !isPlainErr(err, "all refused") {
		t.Errorf("pick error %v in TRANSIENT_FAILURE, want a plain error carrying the connection error", err)
	}
	sc.set(connectivity.Idle, nil) // backoff over
	if sc.connects != 2 {
		t.Errorf("%d Connect calls after the backoff, want 2", sc.connects)
	}
	sc.set(connectivity.Connecting, nil)
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Errorf("state %v while retrying, want TRANSIENT_FAILURE (sticky)", cc.state.ConnectivityState)
	}
	sc.set(connectivity.Ready, nil)
	if cc.state.ConnectivityState != connectivity.Ready {
		t.Fatalf("state %v, want READY", cc.state.ConnectivityState)
	}
	if r, err := cc.state.Picker.Pick(balancer.PickInfo{}); err != nil || r.SubConn != sc {
		t.Fatalf("pick: %v, %v", r.SubConn, err)
	}
	sc.set(connectivity.Idle, nil) // connection lost
	if cc.state.ConnectivityState != connectivity.Idle || cc.resolveNows != 2 || sc.connects != 2 {
		t.Fatalf("after loss: state %v, %d ResolveNow, %d Connect; want IDLE, 2, 2 (no reconnect by itself)",
			cc.state.ConnectivityState, cc.resolveNows, sc.connects)
	}
	if _, err := cc.state.Picker.Pick(balancer.PickInfo{}); !errors.Is(err, balancer.ErrNoSubConnAvailable) || sc.connects != 3 {
		t.Errorf("pick while IDLE: %v, %d Connect calls; want ErrNoSubConnAvailable and a reconnect", err, sc.connects)
	}
}

// TestEmptyAddressListShutsSubConnDownAndFails: an address list that
// becomes empty while connected shuts the subchannel down and makes the
// channel TRANSIENT_FAILURE with a plain (non-status) picker error, so
// that fail-fast RPCs fail UNAVAILABLE and wait-for-ready ones wait; a
// list with addresses afterwards connects a new subchannel.
func TestEmptyAddressListShutsSubConnDownAndFails(t *testing.T) {
	cc := &fakeCC{}
	b := balancer.Get(Name).Build(cc, balancer.BuildOptions{})
	one := balancer.ClientConnState{ResolverState: resolver.State{Addresses: []resolver.Address{{Addr: "a"}}}}
	if err := b.UpdateClientConnState(one); err != nil {
		t.Fatal(err)
	}
	sc := cc.subs[0]
	sc.set(connectivity.Connecting, nil)
	sc.set(connectivity.Ready, nil)
	err := b.UpdateClientConnState(balancer.ClientConnState{})
	if !errors.Is(err, balancer.ErrBadResolverState) {
		t.Errorf("UpdateClientConnState(no addresses) = %v, want ErrBadResolverState", err)
	}
	if !sc.shutdown {
		t.Error("the READY subchannel was kept with no address left")
	}
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Fatalf("state %v with no address, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
	if _, perr := cc.state.Picker.Pick(balancer.PickInfo{}); !isPlainErr(perr, "no addresses") {
		t.Errorf("pick error %v, want a plain error saying there are no addresses", perr)
	}
	// The old subchannel's late state changes change nothing.
	sc.set(connectivity.Idle, nil)
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Errorf("state %v after the old subchannel's update, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
	if err := b.UpdateClientConnState(one); err != nil {
		t.Fatal(err)
	}
	if len(cc.subs) != 2 || cc.subs[1].connects != 1 {
		t.Fatalf("%d subchannels after addresses came back, want a new one, connecting", len(cc.subs))
	}
	cc.subs[1].set(connectivity.Ready, nil)
	if r, err := cc.state.Picker.Pick(balancer.PickInfo{}); err != nil || r.SubConn != cc.subs[1] {
		t.Errorf("pick: %v, %v; want the new subchannel", r.SubConn, err)
	}
}

// isPlainErr reports whether err is an error that is not a status error
// and says want.
func isPlainErr(err error, want string) bool {
	_, isStatus := status.FromError(err)
	return err != nil && !isStatus && strings.Contains(err.Error(), want)
}
