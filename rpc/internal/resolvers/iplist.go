package resolvers

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// buildIPList parses the comma-separated address list of an ipv4 or
// ipv6 target with parse, which returns one address's host and port
// (port empty when not given), and pushes the addresses in their order.
func buildIPList(target resolver.Target, cc resolver.ClientConn, is4 bool, parse func(string) (host, port string, ok bool)) (resolver.Resolver, error) {
	if err := noAuthority(target); err != nil {
		return nil, err
	}
	list := target.Endpoint()
	if list == "" {
		return nil, badTarget(target, "no address")
	}
	family := "IPv6"
	if is4 {
		family = "IPv4"
	}
	var addrs []resolver.Address
	for elem := range strings.SplitSeq(list, ",") {
		host, port, ok := parse(elem)
		if !ok {
			return nil, badTarget(target, "%q is not an %s address with an optional port", elem, family)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.Is4() != is4 {
			return nil, badTarget(target, "%q is not an %s address", host, family)
		}
		p := uint64(defaultPort)
		if port != "" {
			p, err = strconv.ParseUint(port, 10, 16)
			if err != nil || p == 0 {
				return nil, badTarget(target, "port %q of %q is not a number from 1 to 65535", port, elem)
			}
		}
		addrs = append(addrs, resolver.Address{Addr: netip.AddrPortFrom(ip, uint16(p)).String()})
	}
	return buildStatic(cc, addrs)
}

// splitHostPort splits "host:port" (ok false when it is not of that
// form, an empty port included).
func splitHostPort(s string) (host, port string, ok bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return "", "", false
	}
	return host, port, true
}
