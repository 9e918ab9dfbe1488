// Package manual is a resolver that tests (and programs that know their
// servers) drive by hand: register it (or pass it to rpc.WithResolvers),
// give a channel a target of its scheme, and push address lists and
// service configs with UpdateState.
package manual

import (
	"sync"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// Resolver is both the Builder of its scheme and the Resolver it builds.
// It serves one channel at a time: the channel that built it last.
type Resolver struct {
	// BuildCallback, when set, is called by Build.
	BuildCallback func(resolver.Target, resolver.ClientConn, resolver.BuildOptions)
	// ResolveNowCallback, when set, is called by ResolveNow. It may call
	// UpdateState.
	ResolveNowCallback func(resolver.ResolveNowOptions)
	// CloseCallback, when set, is called by Close.
	CloseCallback func()

	scheme string

	mu        sync.Mutex
	cc        resolver.ClientConn
	initial   *resolver.State
	lastState *resolver.State // the last state pushed, pushed again when a channel builds it anew
}

// NewBuilderWithScheme returns a manual resolver of scheme.
func NewBuilderWithScheme(scheme string) *Resolver {
	return &Resolver{scheme: scheme}
}

// InitialState sets the state a channel gets when it builds the resolver
// for the first time.
func (r *Resolver) InitialState(s resolver.State) {
	r.mu.Lock()
	r.initial = &s
	r.mu.Unlock()
}

// Build starts serving cc: it pushes the last state pushed, or the
// initial state, if any.
func (r *Resolver) Build(t resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	r.mu.Lock()
	r.cc = cc
	st := r.lastState
	if st == nil {
		st = r.initial
	}
	r.mu.Unlock()
	if r.BuildCallback != nil {
		r.BuildCallback(t, cc, opts)
	}
	if st != nil {
		cc.UpdateState(*st)
	}
	return r, nil
}

// Scheme is the resolver's scheme.
func (r *Resolver) Scheme() string { return r.scheme }

// ResolveNow calls ResolveNowCallback.
func (r *Resolver) ResolveNow(o resolver.ResolveNowOptions) {
	if r.ResolveNowCallback != nil {
		r.ResolveNowCallback(o)
	}
}

// Close stops serving the channel and calls CloseCallback.
func (r *Resolver) Close() {
	r.mu.Lock()
	r.cc = nil
	r.mu.Unlock()
	if r.CloseCallback != nil {
		r.CloseCallback()
	}
}

// CC returns the channel the resolver serves, nil when none.
func (r *Resolver) CC() resolver.ClientConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cc
}

// UpdateState pushes s to the channel (and keeps it for the next Build).
// Without a channel it only keeps it.
func (r *Resolver) UpdateState(s resolver.State) error {
	r.mu.Lock()
	r.lastState = &s
	cc := r.cc
	r.mu.Unlock()
	if cc == nil {
		return nil
	}
	return cc.UpdateState(s)
}

// ReportError reports err to the channel, if any.
func (r *Resolver) ReportError(err error) {
	if cc := r.CC(); cc != nil {
		cc.ReportError(err)
	}
}

// ParseServiceConfig parses js with the channel's parser, or with
// serviceconfig.Parse when no channel is built yet.
func (r *Resolver) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	if cc := r.CC(); cc != nil {
		return cc.ParseServiceConfig(js)
	}
	c, err := serviceconfig.Parse(js)
	return &serviceconfig.ParseResult{Config: c, Err: err}
}
