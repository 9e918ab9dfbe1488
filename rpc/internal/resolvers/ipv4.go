package resolvers

import (
	"strings"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

func init() { resolver.Register(ipv4Builder{}) }

// ipv4Builder resolves "ipv4:addr[:port][,addr[:port]…]" to those IPv4
// addresses, in order, with port 443 where none is given.
type ipv4Builder struct{}

func (ipv4Builder) Scheme() string { return "ipv4" }

func (ipv4Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	return buildIPList(target, cc, true, parseIPv4)
}

// parseIPv4 splits "a.b.c.d" or "a.b.c.d:port".
func parseIPv4(s string) (host, port string, ok bool) {
	if strings.ContainsAny(s, "[]") {
		return "", "", false
	}
	if !strings.Contains(s, ":") {
		return s, "", true
	}
	return splitHostPort(s)
}
