package resolvers

import (
	"errors"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// passthroughBuilder builds resolvers for "passthrough:///addr": the
// target's endpoint is the one address, handed to the dialer unresolved.
type passthroughBuilder struct{}

func init() { resolver.Register(passthroughBuilder{}) }

// errEmptyPassthrough is Build's error for a target without an endpoint.
var errEmptyPassthrough = errors.New("passthrough: the target has no address")

func (passthroughBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	addr := t.Endpoint()
	if addr == "" {
		return nil, errEmptyPassthrough
	}
	// There is nothing to resolve again: should the channel reject the
	// address, its balancer reports why.
	_ = cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}})
	return passthroughResolver{}, nil
}

func (passthroughBuilder) Scheme() string { return "passthrough" }

// passthroughResolver has nothing to resolve again and nothing to stop.
type passthroughResolver struct{}

func (passthroughResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (passthroughResolver) Close()                                {}
