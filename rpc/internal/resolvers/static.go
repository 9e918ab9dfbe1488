// Package resolvers holds h2rpc's built-in resolvers of targets that
// need no lookup: unix, unix-abstract, ipv4 and ipv6 (and passthrough).
// Each registers its scheme with package resolver when this package is
// imported. Targets, as in the gRPC naming document:
//
//	unix:relative/path.sock       unix:/abs/path.sock    unix:///abs/path.sock
//	unix-abstract:name            (Linux abstract namespace, dialled as "@name")
//	ipv4:10.0.0.1                 ipv4:10.0.0.1:50051,10.0.0.2:50052
//	ipv6:2001:db8::1              ipv6:[2001:db8::1]:50051,[::1]
//
// An address without a port gets 443. A malformed target is an error of
// Build that wraps ErrInvalidTarget.
package resolvers

import (
	"errors"
	"fmt"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// ErrInvalidTarget is wrapped by the errors Build returns for a target
// its scheme cannot use.
var ErrInvalidTarget = errors.New("invalid target")

// defaultPort is the port of an address given without one.
const defaultPort = 443

// staticResolver is the resolver of a target whose addresses are the
// target itself: it pushes them once, from Build, and has nothing to
// watch, so ResolveNow and Close do nothing.
type staticResolver struct{}

func (staticResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (staticResolver) Close()                                {}

// buildStatic hands addrs to cc and returns a resolver with nothing more
// to do. An error from UpdateState is dropped: resolving again would
// give the same addresses.
func buildStatic(cc resolver.ClientConn, addrs []resolver.Address) (resolver.Resolver, error) {
	_ = cc.UpdateState(resolver.State{Addresses: addrs})
	return staticResolver{}, nil
}

// badTarget returns the error for target, whose problem is detail.
func badTarget(target resolver.Target, detail string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidTarget, target.String(), fmt.Sprintf(detail, args...))
}

// noAuthority checks that target has no authority, which the static
// schemes do not use ("unix://host/path" is not an absolute path).
func noAuthority(target resolver.Target) error {
	if target.URL.Host != "" || target.URL.User != nil {
		return badTarget(target, "the %s scheme takes no authority (for an absolute path or address write %s:///…)", target.Scheme(), target.Scheme())
	}
	return nil
}
