// Package pickfirst is the pick_first load-balancing policy, the default
// of every channel: one subchannel over the whole address list, which
// tries the addresses in order and stays on the first that connects.
// When that connection is lost the channel goes IDLE (the next RPC
// reconnects, again from the first address) and the resolver is asked to
// resolve again; the channel is TRANSIENT_FAILURE only once every address
// failed, and stays so, retrying after each backoff, until one connects.
// An address list that becomes empty shuts the subchannel down and makes
// the channel TRANSIENT_FAILURE until addresses come back.
//
// Package rpc imports it; importing it registers "pick_first".
package pickfirst

import (
	"errors"
	"fmt"
	"slices"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// Name is the policy's name in a service config.
const Name = "pick_first"

func init() { balancer.Register(builder{}) }

type builder struct{}

func (builder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &pickFirst{cc: cc}
}

func (builder) Name() string { return Name }

// errNoAddresses is the error of a resolver state without addresses.
var errNoAddresses = errors.New("pick_first: the resolver produced no addresses")

// addressUpdater is implemented by the subchannels of package rpc's
// channel: UpdateAddresses replaces the address list, keeping a
// connection to an address still in it.
type addressUpdater interface {
	UpdateAddresses([]resolver.Address)
}

type pickFirst struct {
	cc    balancer.ClientConn
	sc    balancer.SubConn
	addrs []resolver.Address
	state connectivity.State // the state published last
}

func (b *pickFirst) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := s.ResolverState.Addresses
	if len(addrs) == 0 {
		// Nothing left to connect to: the subchannel goes, and RPCs
		// fail (or wait for ready) until the resolver finds addresses.
		if b.sc != nil {
			b.sc.Shutdown()
			b.sc, b.addrs = nil, nil
		}
		b.ResolverError(errNoAddresses)
		return balancer.ErrBadResolverState
	}
	if b.sc != nil && slices.EqualFunc(b.addrs, addrs, resolver.Address.Equal) {
		return nil
	}
	if u, ok := b.sc.(addressUpdater); ok {
		// The channel's subchannels keep a connection to an address
		// still in the list: a new replica does not move the traffic.
		u.UpdateAddresses(addrs)
		b.addrs = slices.Clone(addrs)
		return nil
	}
	// A new list: a new subchannel over it. The old one closes once its
	// RPCs are done.
	if b.sc != nil {
		b.sc.Shutdown()
	}
	var sc balancer.SubConn
	sc, err := b.cc.NewSubConn(addrs, balancer.NewSubConnOptions{
		StateListener: func(st balancer.SubConnState) { b.updateSubConnState(sc, st) },
	})
	if err != nil {
		b.sc = nil
		b.fail(err)
		return balancer.ErrBadResolverState
	}
	b.sc, b.addrs = sc, slices.Clone(addrs)
	if b.state != connectivity.TransientFailure {
		b.publish(connectivity.Connecting, queuePicker{})
	}
	sc.Connect()
	return nil
}

func (b *pickFirst) updateSubConnState(sc balancer.SubConn, st balancer.SubConnState) {
	if sc != b.sc {
		return // an old subchannel
	}
	switch st.ConnectivityState {
	case connectivity.Ready:
		b.publish(connectivity.Ready, readyPicker{balancer.PickResult{SubConn: sc}})
	case connectivity.Connecting:
		// While failing, the channel stays TRANSIENT_FAILURE through
		// each new attempt, so that fail-fast RPCs keep failing at once.
		if b.state != connectivity.TransientFailure {
			b.publish(connectivity.Connecting, queuePicker{})
		}
	case connectivity.Idle:
		if b.state == connectivity.TransientFailure {
			// The backoff after every address failed is over.
			sc.Connect()
			return
		}
		// The connection was lost: wait for the next RPC.
		b.cc.ResolveNow(resolver.ResolveNowOptions{})
		b.publish(connectivity.Idle, &idlePicker{sc: sc})
	case connectivity.TransientFailure:
		b.cc.ResolveNow(resolver.ResolveNowOptions{})
		b.fail(st.ConnectionError)
	}
}

// fail publishes TRANSIENT_FAILURE with a picker failing RPCs with err.
// The picker's error is not a status (err is kept as text, not wrapped,
// since it may carry one): a fail-fast RPC fails UNAVAILABLE with it, a
// wait-for-ready RPC waits for the next picker.
func (b *pickFirst) fail(err error) {
	b.publish(connectivity.TransientFailure, errPicker{fmt.Errorf("connection to %s failed: %v", b.cc.Target(), err)})
}

func (b *pickFirst) publish(s connectivity.State, p balancer.Picker) {
	b.state = s
	b.cc.UpdateState(balancer.State{ConnectivityState: s, Picker: p})
}

func (b *pickFirst) ResolverError(err error) {
	if b.sc == nil || b.state == connectivity.TransientFailure {
		b.publish(connectivity.TransientFailure, errPicker{fmt.Errorf("name resolution of %s failed: %v", b.cc.Target(), err)})
	}
}

func (b *pickFirst) ExitIdle() {
	if b.sc != nil && b.state == connectivity.Idle {
		b.sc.Connect()
	}
}

func (b *pickFirst) Close() {
	if b.sc != nil {
		b.sc.Shutdown()
		b.sc = nil
	}
}

// readyPicker picks the one READY subchannel.
type readyPicker struct{ r balancer.PickResult }

func (p readyPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) { return p.r, nil }

// queuePicker makes RPCs wait for the next picker.
type queuePicker struct{}

func (queuePicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
}

// idlePicker reconnects the subchannel for the first RPC that comes.
type idlePicker struct{ sc balancer.SubConn }

func (p *idlePicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	p.sc.Connect()
	return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
}

// errPicker fails RPCs with err.
type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
