// Package resolver is the name-resolution API of h2rpc ("gRPC Name
// Resolution"): a channel's target names a scheme, the scheme's Builder
// builds a Resolver for the target, and the Resolver pushes the target's
// addresses (and, optionally, its service config) to the channel through
// ClientConn.UpdateState, again whenever they change.
//
// h2rpc registers dns (the default scheme), passthrough, unix,
// unix-abstract, ipv4 and ipv6; Register adds more. Package
// resolver/manual gives a resolver a test drives by hand.
package resolver

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// Address is one address a target resolved to: one server, or one proxy
// in front of several.
type Address struct {
	// Addr is what the channel dials: "host:port" for TCP, a path (or
	// "@name" for the Linux abstract namespace) for Unix sockets.
	Addr string
	// Network is "tcp" when empty, or "unix".
	Network string
	// ServerName, when set, is the name TLS verifies and the :authority
	// the channel sends on this address's connection, in place of the
	// target's endpoint (but not of rpc.WithAuthority's, which wins).
	ServerName string
	// Attributes carry data from the resolver to the balancer (weights,
	// localities). Read-only once the address is handed over. Two
	// addresses are the same address when their Addr, Network and
	// ServerName are equal; attributes do not count.
	Attributes map[string]any
}

// Equal reports whether a and b are the same address (attributes apart).
func (a Address) Equal(b Address) bool {
	return a.Addr == b.Addr && a.Network == b.Network && a.ServerName == b.ServerName
}

// String returns the address as "network:addr" ("tcp" omitted).
func (a Address) String() string {
	if a.Network == "" || a.Network == "tcp" {
		return a.Addr
	}
	return a.Network + ":" + a.Addr
}

// State is what a resolver knows of its target.
type State struct {
	// Addresses are the target's addresses, in the resolver's order
	// (pick_first tries them in it).
	Addresses []Address
	// ServiceConfig is the target's service config, nil when the
	// resolver has none (the channel then uses its default).
	ServiceConfig *serviceconfig.ParseResult
}

// ClientConn is the channel as its resolver sees it. Its methods may be
// called from any goroutine, but not after the resolver's Close returned.
type ClientConn interface {
	// UpdateState hands the channel the target's current state. An
	// error means the channel rejected it (for example, the balancer
	// found no address it can use); the resolver should resolve again
	// with a backoff.
	UpdateState(State) error
	// ReportError tells the channel that resolving failed. The channel
	// keeps its current addresses, or, if it has none, fails RPCs that
	// do not wait for ready with UNAVAILABLE and err.
	ReportError(err error)
	// ParseServiceConfig parses a service config in JSON, as the channel
	// does: resolvers that read one (DNS TXT records) use it.
	ParseServiceConfig(serviceConfigJSON string) *serviceconfig.ParseResult
}

// Target is a parsed channel target, an RFC 3986 URI: "dns:///host:port",
// "dns://8.8.8.8/host", "unix:///tmp/s", "ipv4:10.0.0.1:80,10.0.0.2".
type Target struct {
	// URL is the parsed target. A target given without a scheme (a bare
	// "host:port") is parsed as "dns:///host:port".
	URL url.URL
}

// Scheme is the target's scheme, for example "dns".
func (t Target) Scheme() string { return t.URL.Scheme }

// Authority is the target URI's authority: for dns, the DNS server to
// ask ("8.8.8.8:53"); usually empty.
func (t Target) Authority() string { return t.URL.Host }

// Endpoint is the target without scheme and authority: the name to
// resolve ("host:port", a path, an address list).
func (t Target) Endpoint() string {
	endpoint := t.URL.Path
	if endpoint == "" {
		endpoint = t.URL.Opaque
	}
	// "dns:///host" has Path "/host"; "dns:host" has Opaque "host".
	return strings.TrimPrefix(endpoint, "/")
}

// String returns the target as a URI.
func (t Target) String() string { return t.URL.String() }

// BuildOptions is what a Builder gets beside the target.
type BuildOptions struct {
	// Dialer is the channel's context dialer (rpc.WithContextDialer), nil
	// when it has none. Resolvers that talk to a name server through a
	// dialer of their own may ignore it.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// DisableServiceConfig is set by rpc.WithDisableServiceConfig: the
	// resolver should not fetch a service config.
	DisableServiceConfig bool
}

// ResolveNowOptions are the options of ResolveNow; there are none yet.
type ResolveNowOptions struct{}

// Resolver watches one target for its channel.
type Resolver interface {
	// ResolveNow is a hint that the channel would like the target
	// resolved again (a connection was lost, every address failed). It
	// may be ignored, and resolvers rate-limit it; it must not block.
	ResolveNow(ResolveNowOptions)
	// Close stops the resolver. No ClientConn method is called after
	// it returns.
	Close()
}

// Builder builds the resolvers of one scheme.
type Builder interface {
	// Build starts resolving target for cc. It should not block: the
	// first state may arrive later, through cc.UpdateState.
	Build(target Target, cc ClientConn, opts BuildOptions) (Resolver, error)
	// Scheme is the scheme the builder handles, in lower case.
	Scheme() string
}

var (
	registryMu    sync.RWMutex
	registry      = map[string]Builder{}
	defaultScheme = "dns"
)

// Register makes b the builder of its scheme, replacing any builder
// registered for it before. Call it from an init function: it is not
// meant to race with channels being created.
func Register(b Builder) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[strings.ToLower(b.Scheme())] = b
}

// Get returns the builder registered for scheme, or nil.
func Get(scheme string) Builder {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return registry[strings.ToLower(scheme)]
}

// SetDefaultScheme sets the scheme of targets that name none ("dns"
// unless changed): a bare "host:port". A target that names a scheme with
// "scheme://" that is not registered is an error at rpc.NewClient.
func SetDefaultScheme(scheme string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	defaultScheme = strings.ToLower(scheme)
}

// GetDefaultScheme returns the scheme of targets that name none.
func GetDefaultScheme() string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return defaultScheme
}
