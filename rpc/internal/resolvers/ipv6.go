package resolvers

import (
	"strings"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

func init() { resolver.Register(ipv6Builder{}) }

// ipv6Builder resolves "ipv6:[addr]:port,…", "ipv6:[addr]" and
// "ipv6:addr" to those IPv6 addresses, in order, with port 443 where
// none is given. An address with a port must be in brackets.
type ipv6Builder struct{}

func (ipv6Builder) Scheme() string { return "ipv6" }

func (ipv6Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	return buildIPList(target, cc, false, parseIPv6)
}

// parseIPv6 splits "[addr]:port", "[addr]" or a bare "addr".
func parseIPv6(s string) (host, port string, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return s, "", !strings.ContainsAny(s, "[]")
	}
	if strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1], "", true
	}
	return splitHostPort(s)
}
