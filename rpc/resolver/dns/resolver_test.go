package dns

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/dnstest"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

const (
	name    = "svc.example.test"
	txtName = "_grpc_config.svc.example.test"
)

// target is the dns target of name:port asked of srv.
func target(srv *dnstest.Server, port string) string {
	t := "dns://" + srv.Addr() + "/" + name
	if port != "" {
		t += ":" + port
	}
	return t
}

func addrs(s resolver.State) []string {
	var out []string
	for _, a := range s.Addresses {
		out = append(out, a.Addr)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestNamesResolveToTheirAddresses(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1", "10.0.0.2")
	srv.SetAAAA(name, "fd00::1")
	_, cc := build(t, NewBuilder(), target(srv, "50051"), resolver.BuildOptions{})

	s := cc.nextState(t)
	if got, want := sorted(addrs(s)), []string{"10.0.0.1:50051", "10.0.0.2:50051", "[fd00::1]:50051"}; !slices.Equal(got, want) {
		t.Fatalf("addresses %v, want %v", got, want)
	}
	for _, a := range s.Addresses {
		if a.Network != "" || a.ServerName != "" {
			t.Errorf("address %+v: want only Addr set", a)
		}
	}

	// The order is Go's resolver's, as it returns it.
	nr, _ := netResolver(srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	ips, err := nr.LookupNetIP(ctx, "ip", name)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ip := range ips {
		want = append(want, net.JoinHostPort(ip.Unmap().String(), "50051"))
	}
	if !slices.Equal(addrs(s), want) {
		t.Errorf("addresses in the order %v, Go's resolver gives %v", addrs(s), want)
	}

	if s.ServiceConfig != nil {
		t.Errorf("service config %+v, want none: it is off by default", s.ServiceConfig)
	}
	if n := srv.Queries(txtName, dnstest.TypeTXT); n != 0 {
		t.Errorf("%d TXT queries, want none: the service config is off by default", n)
	}
}

func TestPortDefaultsTo443(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1")
	_, cc := build(t, NewBuilder(), target(srv, ""), resolver.BuildOptions{})
	if got := addrs(cc.nextState(t)); !slices.Equal(got, []string{"10.0.0.1:443"}) {
		t.Fatalf("addresses %v, want [10.0.0.1:443]", got)
	}
}

func TestAuthoritySelectsTheDNSServer(t *testing.T) {
	one, two := dnstest.New(t), dnstest.New(t)
	one.SetA(name, "10.0.0.1")
	two.SetA(name, "10.0.0.2")
	_, cc := build(t, NewBuilder(), target(two, "80"), resolver.BuildOptions{})
	if got := addrs(cc.nextState(t)); !slices.Equal(got, []string{"10.0.0.2:80"}) {
		t.Fatalf("addresses %v, want those of the server in the authority, [10.0.0.2:80]", got)
	}
	if n := one.Queries(name, dnstest.TypeA); n != 0 {
		t.Errorf("the server not named got %d queries", n)
	}
}

func TestResolveNowPicksUpChangedRecords(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1", "10.0.0.2")
	r, cc := build(t, NewBuilder(WithMinResolutionInterval(0)), target(srv, "80"), resolver.BuildOptions{})
	if got := sorted(addrs(cc.nextState(t))); !slices.Equal(got, []string{"10.0.0.1:80", "10.0.0.2:80"}) {
		t.Fatalf("addresses %v", got)
	}

	// 10.0.0.1 goes, 10.0.0.3 comes.
	srv.SetA(name, "10.0.0.2", "10.0.0.3")
	r.ResolveNow(resolver.ResolveNowOptions{})
	if got := sorted(addrs(cc.nextState(t))); !slices.Equal(got, []string{"10.0.0.2:80", "10.0.0.3:80"}) {
		t.Fatalf("addresses after the change %v, want [10.0.0.2:80 10.0.0.3:80]", got)
	}

	srv.SetA(name, "10.0.0.3")
	srv.SetAAAA(name, "fd00::3")
	r.ResolveNow(resolver.ResolveNowOptions{})
	if got := sorted(addrs(cc.nextState(t))); !slices.Equal(got, []string{"10.0.0.3:80", "[fd00::3]:80"}) {
		t.Fatalf("addresses after the second change %v, want [10.0.0.3:80 [fd00::3]:80]", got)
	}
}

func TestResolveNowIsRateLimited(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1")
	clock := newFakeClock()
	b := NewBuilder(WithMinResolutionInterval(time.Hour))
	b.after = clock.after
	r, cc := build(t, b, target(srv, "80"), resolver.BuildOptions{})
	cc.nextState(t)
	// Every request made before a lookup is served by it: none is left
	// pending to cause another lookup.
	cc.onUpdate = func() {
		if n := len(r.(*dnsResolver).resolveNow); n != 0 {
			t.Errorf("a ResolveNow made before the lookup is still pending after it")
		}
	}

	for round := 2; round <= 3; round++ {
		srv.SetA(name, "10.0.0.1", "10.0.0."+string(rune('0'+round)))
		for range 5 {
			r.ResolveNow(resolver.ResolveNowOptions{})
		}
		// The resolver waits out the rest of the hour before it looks
		// the name up again; requests meanwhile are coalesced.
		ft := clock.next(t)
		if ft.d <= 59*time.Minute || ft.d > time.Hour {
			t.Fatalf("round %d: the resolver waits %v, want the rest of the hour", round, ft.d)
		}
		if n := srv.Queries(name, dnstest.TypeA); n != round-1 {
			t.Fatalf("round %d: %d A queries before the interval ended, want %d", round, n, round-1)
		}
		ft.fire <- time.Now()
		if got := addrs(cc.nextState(t)); len(got) != 2 {
			t.Fatalf("round %d: addresses %v, want the two set", round, got)
		}
		if n := srv.Queries(name, dnstest.TypeA); n != round {
			t.Fatalf("round %d: %d A queries, want %d", round, n, round)
		}
	}
}

func TestFailedLookupsAreReportedAndRetriedWithBackoff(t *testing.T) {
	srv := dnstest.New(t)
	clock := newFakeClock()
	b := NewBuilder(WithMinResolutionInterval(0))
	b.after = clock.after
	r, cc := build(t, b, target(srv, "80"), resolver.BuildOptions{})

	// NXDOMAIN: reported, then retried after 1 s, 1.6 s, 2.56 s (±20 %).
	for i, base := range []time.Duration{time.Second, 1600 * time.Millisecond, 2560 * time.Millisecond} {
		err := cc.nextError(t)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound || !strings.Contains(err.Error(), name) {
			t.Fatalf("failure %d: error %v, want a not-found DNSError naming %s", i, err, name)
		}
		ft := clock.next(t)
		if low, high := base*8/10, base*12/10; ft.d < low || ft.d > high {
			t.Fatalf("backoff %d: %v, want within [%v, %v]", i, ft.d, low, high)
		}
		if i == 2 {
			srv.SetA(name, "10.0.0.1")
		}
		ft.fire <- time.Now()
	}
	if got := addrs(cc.nextState(t)); !slices.Equal(got, []string{"10.0.0.1:80"}) {
		t.Fatalf("addresses %v after the name appeared", got)
	}

	// A success resets the backoff.
	srv.Remove(name)
	r.ResolveNow(resolver.ResolveNowOptions{})
	cc.nextError(t)
	if ft := clock.next(t); ft.d > 1200*time.Millisecond {
		t.Fatalf("backoff after a success %v, want it back at 1 s", ft.d)
	}
}

func TestRejectedStatesAreRetriedWithBackoff(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1")
	clock := newFakeClock()
	b := NewBuilder()
	b.after = clock.after
	cc := newFakeCC(t)
	cc.updateErrs = []error{errors.New("no usable address")}
	r, err := b.Build(parseTarget(t, target(srv, "80")), cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close(); cc.markClosed() }()

	cc.nextState(t) // rejected
	ft := clock.next(t)
	if ft.d < 800*time.Millisecond || ft.d > 1200*time.Millisecond {
		t.Fatalf("backoff %v after a rejected state, want 1 s ± 20 %%", ft.d)
	}
	srv.SetA(name, "10.0.0.2")
	ft.fire <- time.Now()
	if got := addrs(cc.nextState(t)); !slices.Equal(got, []string{"10.0.0.2:80"}) {
		t.Fatalf("addresses %v on the retry, want [10.0.0.2:80]", got)
	}
}

func TestADeadDNSServerTimesOut(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1")
	srv.SetSilent(true)
	clock := newFakeClock()
	b := NewBuilder(WithLookupTimeout(100 * time.Millisecond))
	b.after = clock.after
	_, cc := build(t, b, target(srv, "80"), resolver.BuildOptions{})

	err := cc.nextError(t)
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout {
		t.Fatalf("error %v, want a DNS timeout", err)
	}
	// Then it backs off and tries again.
	srv.SetSilent(false)
	clock.next(t).fire <- time.Now()
	if got := addrs(cc.nextState(t)); !slices.Equal(got, []string{"10.0.0.1:80"}) {
		t.Fatalf("addresses %v once the server answers", got)
	}
}

func TestCloseStopsALookupInFlight(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetSilent(true)
	cc := newFakeCC(t)
	r, err := NewBuilder().Build(parseTarget(t, target(srv, "80")), cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the lookup to reach the server.
	for i := 0; srv.Queries(name, dnstest.TypeA) == 0; i++ {
		if i == 3000 {
			t.Fatal("the resolver never asked the server")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Close()
	cc.markClosed()
	r.Close() // twice is fine
	if n := cc.count(); n != 0 {
		t.Errorf("the resolver told its ClientConn %d things about a lookup it gave up at Close", n)
	}
	// goleak, in TestMain, checks that no goroutine of the resolver or
	// of Go's lookup is left waiting for the silent server.
}

// longServiceConfig is a service config longer than a DNS answer over
// UDP may be, so its TXT record comes over TCP, in many strings.
var longServiceConfig = func() string {
	var names []string
	for i := range 40 {
		names = append(names, `{"service":"example.v1.Service`+string(rune('A'+i%26))+string(rune('a'+i/26))+`"}`)
	}
	return `{"loadBalancingConfig":[{"round_robin":{}}],"methodConfig":[{"name":[` + strings.Join(names, ",") + `],"timeout":"2s"}]}`
}()

func TestServiceConfigFromTXT(t *testing.T) {
	const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`
	for _, tc := range []struct {
		desc    string
		enabled bool
		disable bool     // BuildOptions.DisableServiceConfig
		txt     []string // nil: no record at all (NXDOMAIN)
		want    string   // the policy of the config, "" for none
		wantErr bool
		asks    bool // whether the TXT record is looked up
	}{
		{desc: "off by default", txt: []string{"grpc_config=[{\"serviceConfig\":" + roundRobin + "}]"}},
		{desc: "on", enabled: true, txt: []string{"grpc_config=[{\"serviceConfig\":" + roundRobin + "}]"}, want: "round_robin", asks: true},
		{desc: "disabled by the channel", enabled: true, disable: true, txt: []string{"grpc_config=[{\"serviceConfig\":" + roundRobin + "}]"}},
		{desc: "no record", enabled: true, asks: true},
		{desc: "other records only", enabled: true, txt: []string{"v=spf1 -all"}, asks: true},
		{desc: "long, over TCP", enabled: true, txt: []string{"v=spf1 -all", "grpc_config=[{\"serviceConfig\":" + longServiceConfig + "}]"}, want: "round_robin", asks: true},
		{desc: "no choice for Go", enabled: true, txt: []string{"grpc_config=[{\"clientLanguage\":[\"java\"],\"serviceConfig\":" + roundRobin + "}]"}, asks: true},
		{desc: "malformed JSON", enabled: true, txt: []string{"grpc_config=[{\"serviceConfig\":"}, wantErr: true, asks: true},
		{desc: "bad service config", enabled: true, txt: []string{"grpc_config=[{\"serviceConfig\":{\"methodConfig\":[{\"timeout\":\"x\"}]}}]"}, wantErr: true, asks: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			srv := dnstest.New(t)
			srv.SetA(name, "10.0.0.1")
			if tc.txt != nil {
				srv.SetTXT(txtName, tc.txt...)
			}
			_, cc := build(t, NewBuilder(WithServiceConfig(tc.enabled)), target(srv, "80"), resolver.BuildOptions{DisableServiceConfig: tc.disable})
			s := cc.nextState(t)
			if got := addrs(s); !slices.Equal(got, []string{"10.0.0.1:80"}) {
				t.Errorf("addresses %v, want [10.0.0.1:80] whatever the service config", got)
			}
			sc := s.ServiceConfig
			switch {
			case tc.wantErr:
				if sc == nil || !errors.Is(sc.Err, serviceconfig.ErrInvalid) || sc.Config != nil {
					t.Errorf("service config %+v, want an error wrapping serviceconfig.ErrInvalid", sc)
				}
			case tc.want == "":
				if sc != nil {
					t.Errorf("service config %+v, want none", sc)
				}
			default:
				if sc == nil || sc.Err != nil || len(sc.Config.LoadBalancing) == 0 || sc.Config.LoadBalancing[0].Name != tc.want {
					t.Errorf("service config %+v, want one with policy %s", sc, tc.want)
				}
			}
			if asked := srv.Queries(txtName, dnstest.TypeTXT) > 0; asked != tc.asks {
				t.Errorf("TXT record looked up: %v, want %v", asked, tc.asks)
			}
		})
	}
}

func TestServiceConfigChangesArePickedUp(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetA(name, "10.0.0.1")
	srv.SetTXT(txtName, `grpc_config=[{"serviceConfig":{"loadBalancingConfig":[{"round_robin":{}}]}}]`)
	r, cc := build(t, NewBuilder(WithServiceConfig(true), WithMinResolutionInterval(0)), target(srv, "80"), resolver.BuildOptions{})
	if sc := cc.nextState(t).ServiceConfig; sc == nil || sc.Config == nil || sc.Config.LoadBalancing[0].Name != "round_robin" {
		t.Fatalf("first service config %+v", sc)
	}
	srv.SetTXT(txtName, `grpc_config=[{"serviceConfig":{"loadBalancingConfig":[{"pick_first":{}}]}}]`)
	r.ResolveNow(resolver.ResolveNowOptions{})
	if sc := cc.nextState(t).ServiceConfig; sc == nil || sc.Config == nil || sc.Config.LoadBalancing[0].Name != "pick_first" {
		t.Fatalf("service config after the change %+v, want pick_first", sc)
	}
	srv.Remove(txtName)
	r.ResolveNow(resolver.ResolveNowOptions{})
	if sc := cc.nextState(t).ServiceConfig; sc != nil {
		t.Fatalf("service config after the record went %+v, want none", sc)
	}
}

func TestNamesWithoutAuthorityAskTheSystem(t *testing.T) {
	// localhost is in every hosts file: no name server is needed.
	_, cc := build(t, NewBuilder(), "dns:///localhost:50051", resolver.BuildOptions{})
	if got := addrs(cc.nextState(t)); !slices.Contains(got, "127.0.0.1:50051") {
		t.Fatalf("addresses of localhost %v, want 127.0.0.1:50051 among them", got)
	}
}
