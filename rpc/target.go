package rpc

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// ErrUnknownScheme is wrapped by NewClient's error for a target that
// names a scheme ("scheme://…") no resolver is registered for.
var ErrUnknownScheme = errors.New("rpc: no resolver is registered for the target's scheme")

// parseTarget parses target as an RFC 3986 URI and finds the resolver
// builder of its scheme (WithResolvers' first, then the registry). A
// target whose scheme is not registered, or that does not parse, is the
// default scheme's endpoint ("host:port" → "dns:///host:port"), unless it
// spells "scheme://", which is an error.
func (cc *ClientConn) parseTarget(target string) (resolver.Target, resolver.Builder, error) {
	u, err := url.Parse(target)
	if err == nil && u.Scheme != "" {
		if b := cc.resolverBuilder(u.Scheme); b != nil {
			return resolver.Target{URL: *u}, b, nil
		}
		if strings.Contains(target, "://") {
			return resolver.Target{}, nil, fmt.Errorf("rpc: target %q: scheme %q: %w", target, u.Scheme, ErrUnknownScheme)
		}
	}
	scheme := resolver.GetDefaultScheme()
	dt := scheme + ":///" + target
	u, err = url.Parse(dt)
	if err != nil {
		return resolver.Target{}, nil, fmt.Errorf("rpc: target %q is not a valid URI: %w", target, err)
	}
	b := cc.resolverBuilder(scheme)
	if b == nil {
		return resolver.Target{}, nil, fmt.Errorf("rpc: target %q: default scheme %q: %w", target, scheme, ErrUnknownScheme)
	}
	return resolver.Target{URL: *u}, b, nil
}

// resolverBuilder returns the builder of scheme: one given to
// WithResolvers, or the registered one.
func (cc *ClientConn) resolverBuilder(scheme string) resolver.Builder {
	for _, b := range cc.dopts.channel.resolvers {
		if strings.EqualFold(b.Scheme(), scheme) {
			return b
		}
	}
	return resolver.Get(scheme)
}

// defaultAuthority is the :authority of a channel to t when WithAuthority
// sets none: the target's endpoint, or "localhost" for Unix sockets.
func defaultAuthority(t resolver.Target) string {
	switch strings.ToLower(t.Scheme()) {
	case "unix", "unix-abstract":
		return "localhost"
	}
	return t.Endpoint()
}
