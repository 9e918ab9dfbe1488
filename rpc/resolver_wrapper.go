package rpc

import (
	"sync"
	"sync/atomic"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// resolverWrapper is the channel as its resolver sees it
// (resolver.ClientConn). It hands every update to the balancer through
// the channel's serializer, so updates reach the balancer one at a time
// and in order, and drops them once the resolver is closed.
type resolverWrapper struct {
	cc     *ClientConn
	bw     *balancerWrapper
	closed atomic.Bool

	mu sync.Mutex // guards r: no ResolveNow once Close began
	r  resolver.Resolver
}

var _ resolver.ClientConn = (*resolverWrapper)(nil)

// start builds the resolver. Caller holds cc.idleMu. The resolver may
// push its first state before Build returns.
func (rw *resolverWrapper) start() error {
	cc := rw.cc
	r, err := cc.builder.Build(cc.parsed, rw, resolver.BuildOptions{
		Dialer:               cc.dopts.dialer,
		DisableServiceConfig: cc.dopts.channel.disableServiceConfig,
	})
	if err != nil {
		return err
	}
	rw.mu.Lock()
	rw.r = r
	rw.mu.Unlock()
	return nil
}

// UpdateState hands s to the balancer. It is applied asynchronously
// (serialised with the balancer's other work), so it reports no error:
// a state the balancer rejects makes the channel ask the resolver to
// resolve again.
func (rw *resolverWrapper) UpdateState(s resolver.State) error {
	if rw.closed.Load() {
		return nil
	}
	rw.cc.ser.schedule(func() {
		if rw.closed.Load() {
			return
		}
		if err := rw.bw.updateResolverState(s); err != nil {
			rw.resolveNow(resolver.ResolveNowOptions{})
		}
	})
	return nil
}

// ReportError tells the balancer that resolving failed.
func (rw *resolverWrapper) ReportError(err error) {
	if rw.closed.Load() {
		return
	}
	rw.cc.ser.schedule(func() {
		if !rw.closed.Load() {
			rw.bw.resolverError(err)
		}
	})
}

// ParseServiceConfig parses a service config in JSON.
func (rw *resolverWrapper) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	c, err := serviceconfig.Parse(js)
	if err != nil {
		return &serviceconfig.ParseResult{Err: err}
	}
	return &serviceconfig.ParseResult{Config: c}
}

// resolveNow forwards a re-resolution request of the balancer.
func (rw *resolverWrapper) resolveNow(o resolver.ResolveNowOptions) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r != nil && !rw.closed.Load() {
		rw.r.ResolveNow(o)
	}
}

// close closes the resolver; nothing it calls afterwards reaches the
// balancer, and it is never called again.
func (rw *resolverWrapper) close() {
	rw.closed.Store(true)
	rw.mu.Lock()
	r := rw.r
	rw.r = nil
	rw.mu.Unlock()
	if r != nil {
		r.Close()
	}
}
