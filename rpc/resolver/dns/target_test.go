package dns

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/resolver"
)

func TestParseEndpointSplitsHostAndPort(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		host     string
		port     uint16
	}{
		{"svc.example.test", "svc.example.test", 443},
		{"svc.example.test:50051", "svc.example.test", 50051},
		{"svc.example.test.:1", "svc.example.test.", 1},
		{"localhost:65535", "localhost", 65535},
		{":50051", "localhost", 50051},
		{"10.0.0.1", "10.0.0.1", 443},
		{"10.0.0.1:80", "10.0.0.1", 80},
		{"::1", "::1", 443},
		{"2001:db8::1", "2001:db8::1", 443},
		{"[::1]", "::1", 443},
		{"[2001:db8::1]:50051", "2001:db8::1", 50051},
	} {
		host, port, err := parseEndpoint(tc.endpoint)
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("parseEndpoint(%q) = %q, %d, %v; want %q, %d", tc.endpoint, host, port, err, tc.host, tc.port)
		}
	}
}

func TestMalformedTargetsAreBuildErrors(t *testing.T) {
	for _, target := range []string{
		"dns:",
		"dns:///",
		"dns:///svc.example.test:",
		"dns:///svc.example.test:http",
		"dns:///svc.example.test:0",
		"dns:///svc.example.test:65536",
		"dns:///svc.example.test:80:80",
		"dns:///[svc.example.test]:80",
		"dns:///[10.0.0.1]:80",
		"dns:///[10.0.0.1]",
		"dns:///[::1",
		"dns://dns.example.test/svc.example.test",
		"dns://10.0.0.53:0/svc.example.test",
	} {
		cc := newFakeCC(t)
		r, err := NewBuilder().Build(parseTarget(t, target), cc, resolver.BuildOptions{})
		if !errors.Is(err, ErrInvalidTarget) || r != nil {
			t.Errorf("Build(%q) = %v, %v; want an error wrapping ErrInvalidTarget", target, r, err)
			if r != nil {
				r.Close()
			}
			continue
		}
		if !strings.Contains(err.Error(), target) {
			t.Errorf("Build(%q): error %q does not name the target", target, err)
		}
		if cc.count() != 0 {
			t.Errorf("Build(%q) failed but called its ClientConn", target)
		}
	}
}

func TestParseAuthorityDefaultsToPort53(t *testing.T) {
	for authority, want := range map[string]string{
		"8.8.8.8":            "8.8.8.8:53",
		"8.8.8.8:5353":       "8.8.8.8:5353",
		"[2001:db8::53]":     "[2001:db8::53]:53",
		"[2001:db8::53]:530": "[2001:db8::53]:530",
	} {
		got, err := parseAuthority(authority)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("parseAuthority(%q) = %v, %v; want %v", authority, got, err, want)
		}
	}
}

func TestIPLiteralsResolveToThemselvesAtBuild(t *testing.T) {
	for target, want := range map[string]string{
		"dns:///10.0.0.1":                       "10.0.0.1:443",
		"dns:10.0.0.1:50051":                    "10.0.0.1:50051",
		"dns:///::1":                            "[::1]:443",
		"dns:///[::1]":                          "[::1]:443",
		"dns:///[2001:db8::1]:50051":            "[2001:db8::1]:50051",
		"dns://127.0.0.1:1/[2001:db8::1]:50051": "[2001:db8::1]:50051",
		"dns://127.0.0.1:1/10.0.0.1:50051":      "10.0.0.1:50051",
		"dns://[2001:db8::53]:1/10.0.0.1:50051": "10.0.0.1:50051",
	} {
		cc := newFakeCC(t)
		r, err := NewBuilder().Build(parseTarget(t, target), cc, resolver.BuildOptions{})
		if err != nil {
			t.Errorf("Build(%q): %v", target, err)
			continue
		}
		// The state is there when Build returns: no lookup, no goroutine.
		if _, ok := r.(literalResolver); !ok || cc.count() != 1 {
			t.Errorf("Build(%q): resolver %T and %d calls, want a literal resolver that called UpdateState", target, r, cc.count())
		}
		r.ResolveNow(resolver.ResolveNowOptions{})
		r.Close()
		cc.markClosed()
		if cc.count() != 1 {
			continue
		}
		s := cc.nextState(t)
		if len(s.Addresses) != 1 || s.Addresses[0].Addr != want || s.ServiceConfig != nil {
			t.Errorf("Build(%q): state %+v, want the one address %s", target, s, want)
		}
	}
}

func TestTheDNSSchemeIsRegistered(t *testing.T) {
	if _, ok := resolver.Get("dns").(*Builder); !ok {
		t.Fatalf("the builder of dns is %T, want this package's", resolver.Get("dns"))
	}
}
