// Package roundrobin is the round_robin load-balancing policy: a
// subchannel per address, every READY one picked in turn, one RPC each,
// from a random first one. Subchannels that lose their connection, or
// whose backoff after a failure ends, reconnect at once. The channel is
// READY while any subchannel is, CONNECTING while none is but some are
// still trying for the first time, and TRANSIENT_FAILURE once all failed.
// A new address list adds and removes subchannels; a removed one closes
// its connection once its RPCs are done.
//
// Its subchannels ask for client-side health checking
// (balancer.NewSubConnOptions.HealthCheckEnabled): with a service
// config's healthCheckConfig, a backend whose grpc.health.v1 status is not
// SERVING is not picked.
//
// Package rpc imports it; importing it registers "round_robin".
package roundrobin

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// Name is the policy's name in a service config.
const Name = "round_robin"

func init() { balancer.Register(builder{}) }

type builder struct{}

func (builder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &roundRobin{cc: cc, subs: map[addrKey]*sub{}}
}

func (builder) Name() string { return Name }

// errNoAddresses is the error of a resolver state without addresses.
var errNoAddresses = errors.New("round_robin: the resolver produced no addresses")

// addrKey identifies an address (attributes apart, as Address.Equal).
type addrKey struct{ addr, network, serverName string }

func keyOf(a resolver.Address) addrKey { return addrKey{a.Addr, a.Network, a.ServerName} }

// sub is one subchannel and the state the balancer counts it in: a
// subchannel that failed stays TRANSIENT_FAILURE through its next
// attempts, until it is READY.
type sub struct {
	key     addrKey
	sc      balancer.SubConn
	state   connectivity.State
	lastErr error
}

type roundRobin struct {
	cc      balancer.ClientConn
	subs    map[addrKey]*sub
	order   []addrKey // the resolver's order, for stable pickers
	resErr  error     // the resolver's last error, while it has no addresses
	lastErr error
}

func (b *roundRobin) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := s.ResolverState.Addresses
	keep := make(map[addrKey]bool, len(addrs))
	b.order = b.order[:0]
	for _, a := range addrs {
		k := keyOf(a)
		if keep[k] {
			continue
		}
		keep[k] = true
		b.order = append(b.order, k)
		if _, ok := b.subs[k]; ok {
			continue
		}
		s := &sub{key: k, state: connectivity.Idle}
		sc, err := b.cc.NewSubConn([]resolver.Address{a}, balancer.NewSubConnOptions{
			StateListener:      func(st balancer.SubConnState) { b.updateSubConnState(s, st) },
			HealthCheckEnabled: true,
		})
		if err != nil {
			continue
		}
		s.sc = sc
		b.subs[k] = s
		sc.Connect()
	}
	for k, s := range b.subs {
		if !keep[k] {
			s.sc.Shutdown() // drains its RPCs
			delete(b.subs, k)
		}
	}
	if len(b.subs) == 0 {
		b.resErr = errNoAddresses
		b.publish()
		return balancer.ErrBadResolverState
	}
	b.resErr = nil
	b.publish()
	return nil
}

func (b *roundRobin) updateSubConnState(s *sub, st balancer.SubConnState) {
	if b.subs[s.key] != s {
		return // removed
	}
	switch st.ConnectivityState {
	case connectivity.Ready:
		s.state = connectivity.Ready
	case connectivity.Idle:
		if s.state == connectivity.Ready {
			b.cc.ResolveNow(resolver.ResolveNowOptions{})
			s.state = connectivity.Idle
		}
		s.sc.Connect()
	case connectivity.Connecting:
		if s.state != connectivity.TransientFailure {
			s.state = connectivity.Connecting
		}
	case connectivity.TransientFailure:
		s.state = connectivity.TransientFailure
		s.lastErr = st.ConnectionError
		b.lastErr = st.ConnectionError
		b.cc.ResolveNow(resolver.ResolveNowOptions{})
	default:
		return
	}
	b.publish()
}

// publish aggregates the subchannels' states into the channel's.
func (b *roundRobin) publish() {
	var ready []balancer.SubConn
	connecting := false
	for _, k := range b.order {
		s := b.subs[k]
		if s == nil {
			continue
		}
		switch s.state {
		case connectivity.Ready:
			ready = append(ready, s.sc)
		case connectivity.Idle, connectivity.Connecting:
			connecting = true
		}
	}
	switch {
	case len(ready) > 0:
		p := &picker{subs: ready}
		p.next.Store(rand.Uint32N(uint32(len(ready))))
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: p})
	case b.resErr != nil && len(b.subs) == 0:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure,
			Picker: errPicker{fmt.Errorf("round_robin: %v", b.resErr)}})
	case connecting:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: queuePicker{}})
	default:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure,
			Picker: errPicker{fmt.Errorf("round_robin: every address of %s failed, last: %v", b.cc.Target(), b.lastErr)}})
	}
}

func (b *roundRobin) ResolverError(err error) {
	if len(b.subs) > 0 {
		return // keep using the addresses we have
	}
	b.resErr = err
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure,
		Picker: errPicker{fmt.Errorf("round_robin: name resolution of %s failed: %v", b.cc.Target(), err)}})
}

func (b *roundRobin) ExitIdle() {
	for _, s := range b.subs {
		s.sc.Connect()
	}
}

func (b *roundRobin) Close() {
	for k, s := range b.subs {
		s.sc.Shutdown()
		delete(b.subs, k)
	}
}

// picker hands out the READY subchannels in turn. Pick takes no lock and
// allocates nothing.
type picker struct {
	subs []balancer.SubConn
	next atomic.Uint32
}

func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	n := p.next.Add(1)
	return balancer.PickResult{SubConn: p.subs[n%uint32(len(p.subs))]}, nil
}

// queuePicker makes RPCs wait for the next picker.
type queuePicker struct{}

func (queuePicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
}

// errPicker fails RPCs with err.
type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
