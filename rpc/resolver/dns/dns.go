// Package dns is h2rpc's DNS resolver, the resolver of the "dns" scheme
// (the default scheme, used for a target that names none). Importing the
// package registers it with package resolver.
//
// Targets have the form dns:[//authority/]host[:port] (gRPC naming
// document):
//
//	dns:///api.example.com:50051   A and AAAA records of api.example.com, port 50051
//	dns:api.example.com            the same name, port 443 (the default)
//	dns://8.8.8.8/api.example.com  asking the DNS server 8.8.8.8 (port 53)
//	dns://[2001:db8::53]:5353/api.example.com:50051
//	dns:///10.0.0.1:50051          an IP literal resolves to itself
//	dns:///[2001:db8::1]:50051     (IPv6 literals in brackets when a port follows)
//
// Without an authority the system's resolver is asked (Go's net
// package, as net.Dial does); with one, Go's own resolver asks that
// server only. An IP literal is pushed to the channel at once and never
// looked up.
//
// A name is resolved when the resolver is built, then again whenever the
// channel asks (ResolveNow: a connection was lost, every address
// failed), at most once per MinResolutionInterval (30 s by default).
// A failed lookup, or a state the channel rejects, is retried with the
// gRPC connection backoff (1 s, ×1.6 per failure, ±20 % jitter, at most
// 120 s). Each lookup gives up after 10 s, so a dead DNS server cannot
// hold the resolver.
//
// # Service config in DNS
//
// The resolver can read the target's service config from the TXT record
// of "_grpc_config.<host>" (gRFC A2). It is off by default, as in
// grpc-go, because whoever controls the DNS records then controls the
// client's retries, timeouts and balancing. To turn it on for every dns
// target, register a builder that reads it, in an init function:
//
//	resolver.Register(dns.NewBuilder(dns.WithServiceConfig(true)))
//
// The record is "grpc_config=" followed by a JSON list of choices; the
// first choice whose clientLanguage, percentage and clientHostname all
// match this client is the service config:
//
//	grpc_config=[{"clientLanguage":["go"],"percentage":10,
//	  "serviceConfig":{"loadBalancingConfig":[{"round_robin":{}}]}}]
//
// A malformed record is a service config with an error (the channel
// keeps its previous config); no record, or no matching choice, is no
// service config. A channel built with rpc.WithDisableServiceConfig
// never asks for the record.
package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/h2rpc/h2rpc/internal/backoff"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

func init() { resolver.Register(NewBuilder()) }

// Defaults of the Builder's options.
const (
	// DefaultPort is the port of a target that names none.
	DefaultPort = 443
	// DefaultMinResolutionInterval is the least time between two
	// lookups that ResolveNow asks for.
	DefaultMinResolutionInterval = 30 * time.Second
	// DefaultLookupTimeout bounds one lookup.
	DefaultLookupTimeout = 10 * time.Second
)

// defaultDNSPort is the port of a DNS server named without one.
const defaultDNSPort = 53

// ErrInvalidTarget is wrapped by the error Build returns for a target
// it cannot resolve: no host, a bad port or a bad authority.
var ErrInvalidTarget = errors.New("dns: invalid target")

// Builder builds DNS resolvers. The zero value is not usable: use
// NewBuilder.
type Builder struct {
	serviceConfig bool
	minInterval   time.Duration
	lookupTimeout time.Duration

	// Test seams: the backoff after failures, the timer the resolver
	// sleeps on, this host's name and this client's percentile for TXT
	// choices.
	backoff    backoff.Config
	after      func(time.Duration) (<-chan time.Time, func() bool)
	hostname   func() (string, error)
	percentile func() int
}

// Option configures a Builder.
type Option func(*Builder)

// WithServiceConfig sets whether the resolvers read the service config
// from the "_grpc_config.<host>" TXT record. The default is false. For a
// choice's percentage, each resolver draws this client's percentile once,
// when it is built, so that a channel does not move between choices from
// one lookup to the next.
func WithServiceConfig(enabled bool) Option {
	return func(b *Builder) { b.serviceConfig = enabled }
}

// WithMinResolutionInterval sets the least time between two lookups of
// one resolver that ResolveNow asks for; more requests in the meantime
// wait for the interval to end and are served by one lookup. The
// default is DefaultMinResolutionInterval (30 s); 0 removes the limit
// (for tests).
func WithMinResolutionInterval(d time.Duration) Option {
	return func(b *Builder) { b.minInterval = max(d, 0) }
}

// WithLookupTimeout sets how long one lookup may take before it fails
// (and is retried after a backoff). The default is DefaultLookupTimeout
// (10 s); d <= 0 restores it.
func WithLookupTimeout(d time.Duration) Option {
	return func(b *Builder) {
		if d <= 0 {
			d = DefaultLookupTimeout
		}
		b.lookupTimeout = d
	}
}

// NewBuilder returns a builder of the "dns" scheme. Register it with
// resolver.Register to replace the default one.
func NewBuilder(opts ...Option) *Builder {
	b := &Builder{
		minInterval:   DefaultMinResolutionInterval,
		lookupTimeout: DefaultLookupTimeout,
		backoff:       backoff.Default,
		after: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
		hostname:   os.Hostname,
		percentile: func() int { return rand.IntN(100) },
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Scheme returns "dns".
func (b *Builder) Scheme() string { return "dns" }

// Build starts resolving target for cc. It does not wait for the first
// lookup; an IP literal is pushed to cc before Build returns.
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	host, port, err := parseEndpoint(target.Endpoint())
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidTarget, target.String(), err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		addr := resolver.Address{Addr: netip.AddrPortFrom(ip, port).String()}
		_ = cc.UpdateState(resolver.State{Addresses: []resolver.Address{addr}})
		return literalResolver{}, nil
	}
	nr, err := netResolver(target.Authority())
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidTarget, target.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsResolver{
		b:          b,
		cc:         cc,
		lookup:     nr,
		host:       host,
		port:       port,
		ctx:        ctx,
		cancel:     cancel,
		resolveNow: make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	if b.serviceConfig && !opts.DisableServiceConfig {
		r.serviceConfig = true
		r.hostname, _ = b.hostname()
		r.percentile = b.percentile()
	}
	go r.watch()
	return r, nil
}

// parseEndpoint splits a dns target's endpoint, "host", "host:port",
// "[ipv6]:port", "[ipv6]" or a bare IPv6 literal, into host and port.
func parseEndpoint(endpoint string) (host string, port uint16, err error) {
	if endpoint == "" {
		return "", 0, errors.New("no host")
	}
	if _, err := netip.ParseAddr(endpoint); err == nil {
		return endpoint, DefaultPort, nil // an IP literal, IPv6 without brackets included
	}
	if strings.HasPrefix(endpoint, "[") && strings.HasSuffix(endpoint, "]") {
		host = endpoint[1 : len(endpoint)-1]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
		return host, DefaultPort, nil
	}
	if !strings.Contains(endpoint, ":") {
		return endpoint, DefaultPort, nil
	}
	host, portStr, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", 0, err
	}
	if portStr == "" {
		return "", 0, errors.New("no port after the colon")
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
	}
	if host == "" {
		host = "localhost" // ":port", as grpc-go
	}
	if strings.HasPrefix(endpoint, "[") {
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	}
	return host, uint16(p), nil
}

// lookuper is what the resolver asks; *net.Resolver is one.
type lookuper interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// netResolver returns the resolver that asks authority, a DNS server's
// "ip[:port]", or the system's name service when authority is empty.
func netResolver(authority string) (*net.Resolver, error) {
	if authority == "" {
		return &net.Resolver{Dial: dialer("")}, nil
	}
	server, err := parseAuthority(authority)
	if err != nil {
		return nil, err
	}
	return &net.Resolver{PreferGo: true, Dial: dialer(server.String())}, nil
}

// parseAuthority parses a DNS server's "ip", "ip:port", "[ipv6]" or
// "[ipv6]:port" (port 53 by default).
func parseAuthority(authority string) (netip.AddrPort, error) {
	server, err := netip.ParseAddrPort(authority)
	if err != nil {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(authority, "["), "]"))
		if err != nil || ip.Is6() != strings.HasPrefix(authority, "[") {
			return server, fmt.Errorf("authority %q is not a DNS server's IP address with an optional port", authority)
		}
		server = netip.AddrPortFrom(ip, defaultDNSPort)
	}
	if server.Port() == 0 {
		return server, fmt.Errorf("authority %q has port 0", authority)
	}
	return server, nil
}

// dialer returns the Dial of a net.Resolver: it connects to server (or,
// when server is empty, to the name server Go chose), and closes the
// connection when the lookup's context ends, so that a lookup given up
// (the resolver closed, the lookup timed out) does not leave Go's
// resolver waiting on a silent server in the background.
func dialer(server string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if server != "" {
			address = server
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		// Go's resolver ends every exchange's context when the
		// exchange returns, so this always runs, then on a connection
		// already closed, which is harmless.
		context.AfterFunc(ctx, func() { c.Close() })
		return c, nil
	}
}

// literalResolver is the resolver of an IP literal: nothing to watch.
type literalResolver struct{}

func (literalResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (literalResolver) Close()                                {}
