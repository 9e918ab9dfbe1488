package rpc

import (
	"fmt"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// defaultPolicy is the load-balancing policy of a channel whose service
// config names none.
const defaultPolicy = "pick_first"

// balancerWrapper holds the channel's balancer. Every method runs in the
// channel's serializer.
//
// Switching policy is graceful: the new balancer is built as pending and
// gets the addresses, while the current one keeps picking; the pending
// one takes over once it publishes a state other than CONNECTING, or at
// once when the current one is not READY.
type balancerWrapper struct {
	cc      *ClientConn
	rw      *resolverWrapper // set once, before the resolver is built
	cur     *balancerCC
	pending *balancerCC
	closed  bool
	haveSC  bool // a service config was applied (the resolver's or the default)
}

func newBalancerWrapper(cc *ClientConn) *balancerWrapper {
	return &balancerWrapper{cc: cc}
}

// latest is the balancer that gets the resolver's updates: the pending
// one, if any.
func (bw *balancerWrapper) latest() *balancerCC {
	if bw.pending != nil {
		return bw.pending
	}
	return bw.cur
}

// updateResolverState applies the service config of s and hands its
// addresses to the balancer of the config's policy.
func (bw *balancerWrapper) updateResolverState(s resolver.State) error {
	if bw.closed {
		return nil
	}
	cfg, err := bw.chooseServiceConfig(s.ServiceConfig)
	if err != nil {
		// No valid config, and none before: the channel fails.
		bw.failLocked(fmt.Errorf("rpc: invalid service config from the resolver of %s: %v", bw.cc.target, err))
		return balancer.ErrBadResolverState
	}
	name, lbCfg, err := policyOf(cfg)
	if err != nil {
		// The policy's own config does not parse: keep the balancer
		// we have, or fail if there is none.
		if bw.latest() == nil {
			bw.failLocked(fmt.Errorf("rpc: invalid load-balancing config: %v", err))
			return balancer.ErrBadResolverState
		}
		name, lbCfg = bw.latest().name, nil
	}
	b := bw.switchTo(name)
	return b.b.UpdateClientConnState(balancer.ClientConnState{ResolverState: s, BalancerConfig: lbCfg})
}

// chooseServiceConfig picks the config the channel uses after a resolver
// update, and stores it where calls read it.
func (bw *balancerWrapper) chooseServiceConfig(pr *serviceconfig.ParseResult) (*serviceconfig.Config, error) {
	cc := bw.cc
	def := cc.dopts.channel.defaultServiceConfig
	switch {
	case cc.dopts.channel.disableServiceConfig || pr == nil:
		cc.setServiceConfig(def)
	case pr.Err != nil:
		if bw.haveSC {
			return cc.sc.Load(), nil
		}
		if def == nil {
			return nil, pr.Err
		}
		cc.setServiceConfig(def)
	default:
		cc.setServiceConfig(pr.Config)
	}
	bw.haveSC = true
	return cc.sc.Load(), nil
}

// policyOf returns the first registered policy of cfg and its parsed
// config; pick_first when cfg names none.
func policyOf(cfg *serviceconfig.Config) (string, balancer.LBConfig, error) {
	if cfg == nil {
		return defaultPolicy, nil, nil
	}
	for _, lb := range cfg.LoadBalancing {
		b := balancer.Get(lb.Name)
		if b == nil {
			continue
		}
		if p, ok := b.(balancer.ConfigParser); ok && len(lb.Config) > 0 {
			c, err := p.ParseConfig(lb.Config)
			if err != nil {
				return "", nil, fmt.Errorf("policy %q: %w", lb.Name, err)
			}
			return lb.Name, c, nil
		}
		return lb.Name, nil, nil
	}
	return defaultPolicy, nil, nil
}

// switchTo returns the balancer of policy name, building it (as pending
// when another one is current) if the latest one is of another policy.
func (bw *balancerWrapper) switchTo(name string) *balancerCC {
	if l := bw.latest(); l != nil && l.name == name {
		return l
	}
	builder := balancer.Get(name)
	if builder == nil {
		builder = balancer.Get(defaultPolicy)
	}
	b := &balancerCC{bw: bw, name: name, subs: map[*subConn]struct{}{}}
	b.b = builder.Build(b, balancer.BuildOptions{Authority: bw.cc.authority})
	if bw.pending != nil {
		bw.pending.close()
	}
	if bw.cur == nil {
		bw.cur = b
	} else {
		bw.pending = b
		if bw.cur.state.ConnectivityState != connectivity.Ready {
			bw.promote()
		}
	}
	return b
}

// promote makes the pending balancer current and closes the old one.
func (bw *balancerWrapper) promote() {
	old := bw.cur
	bw.cur, bw.pending = bw.pending, nil
	old.close()
	if bw.cur.published {
		bw.cc.publish(bw.cur.state)
	}
}

// resolverError hands the resolver's error to the balancer, building the
// default one if there is none yet.
func (bw *balancerWrapper) resolverError(err error) {
	if bw.closed {
		return
	}
	b := bw.latest()
	if b == nil {
		b = bw.switchTo(defaultPolicy)
	}
	b.b.ResolverError(err)
}

// failLocked publishes TRANSIENT_FAILURE with a picker failing RPCs with
// err, closing the balancers. err is not a status error (nor wraps one):
// fail-fast RPCs fail UNAVAILABLE with it, wait-for-ready RPCs wait for
// the next picker.
func (bw *balancerWrapper) failLocked(err error) {
	if bw.closed {
		return
	}
	bw.closeBalancers()
	bw.cc.publish(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{err}})
}

// exitIdle asks the balancer to connect.
func (bw *balancerWrapper) exitIdle() {
	if !bw.closed && bw.cur != nil {
		bw.cur.b.ExitIdle()
	}
}

// subConns returns the subchannels of the balancers.
func (bw *balancerWrapper) subConns() []*subConn {
	var scs []*subConn
	for _, b := range []*balancerCC{bw.cur, bw.pending} {
		if b == nil {
			continue
		}
		for sc := range b.subs {
			scs = append(scs, sc)
		}
	}
	return scs
}

// close closes the balancers; none of their methods is called after.
func (bw *balancerWrapper) close() {
	bw.closed = true
	bw.closeBalancers()
}

// closeBalancers closes the current and the pending balancer, if any.
func (bw *balancerWrapper) closeBalancers() {
	if bw.pending != nil {
		bw.pending.close()
		bw.pending = nil
	}
	if bw.cur != nil {
		bw.cur.close()
		bw.cur = nil
	}
}

// balancerCC is the channel as one balancer sees it
// (balancer.ClientConn). Its methods run in the channel's serializer.
type balancerCC struct {
	bw        *balancerWrapper
	b         balancer.Balancer
	name      string
	closed    bool
	subs      map[*subConn]struct{} // not shut down
	state     balancer.State        // the last one published
	published bool
}

var _ balancer.ClientConn = (*balancerCC)(nil)

// NewSubConn creates an IDLE subchannel for addrs.
func (b *balancerCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if b.closed {
		return nil, fmt.Errorf("rpc: NewSubConn on a closed balancer")
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("rpc: NewSubConn without addresses")
	}
	if opts.StateListener == nil {
		return nil, fmt.Errorf("rpc: NewSubConn without a StateListener")
	}
	sc := newSubConn(b.bw.cc, b, addrs, opts.StateListener)
	sc.healthCheckEnabled = opts.HealthCheckEnabled
	b.subs[sc] = struct{}{}
	return sc, nil
}

// UpdateState publishes the balancer's state, or keeps it while the
// balancer is pending.
func (b *balancerCC) UpdateState(s balancer.State) {
	if b.closed {
		return
	}
	b.state, b.published = s, true
	bw := b.bw
	switch b {
	case bw.cur:
		if bw.pending != nil && s.ConnectivityState != connectivity.Ready {
			bw.promote()
			return
		}
		bw.cc.publish(s)
	case bw.pending:
		if s.ConnectivityState != connectivity.Connecting {
			bw.promote()
		}
	}
}

// ResolveNow asks the resolver to resolve again.
func (b *balancerCC) ResolveNow(o resolver.ResolveNowOptions) {
	if b.closed {
		return
	}
	b.bw.rw.resolveNow(o)
}

// Target is the channel's target.
func (b *balancerCC) Target() string { return b.bw.cc.target }

// close closes the balancer and shuts down what subchannels it left.
func (b *balancerCC) close() {
	if b.closed {
		return
	}
	b.b.Close()
	b.closed = true
	for sc := range b.subs {
		sc.Shutdown()
	}
}

// errPicker fails every pick with err.
type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
