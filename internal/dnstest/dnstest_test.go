package dnstest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// resolverFor returns a Go resolver that asks only s, over the network
// Go picks (UDP, then TCP for truncated answers). A lookup whose context
// ends closes its connection, so no goroutine of Go's resolver outlives
// the test waiting for an answer from a silent server.
func resolverFor(s *Server) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, s.Addr())
			if err == nil {
				context.AfterFunc(ctx, func() { c.Close() })
			}
			return c, err
		},
	}
}

func lookupIPs(t *testing.T, r *net.Resolver, name string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", name)
	var out []string
	for _, ip := range ips {
		out = append(out, ip.Unmap().String())
	}
	slices.Sort(out)
	return out, err
}

func TestServerAnswersAddressRecords(t *testing.T) {
	s := New(t)
	r := resolverFor(s)
	s.SetA("svc.example.test", "10.0.0.1", "10.0.0.2")
	s.SetAAAA("svc.example.test", "fd00::1")

	got, err := lookupIPs(t, r, "svc.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.1", "10.0.0.2", "fd00::1"}; !slices.Equal(got, want) {
		t.Fatalf("addresses: got %v, want %v", got, want)
	}
	if s.Queries("svc.example.test", TypeA) != 1 || s.Queries("SVC.example.test.", TypeAAAA) != 1 {
		t.Errorf("queries: A %d, AAAA %d, want 1 each", s.Queries("svc.example.test", TypeA), s.Queries("svc.example.test", TypeAAAA))
	}

	// Records change at once; SetA leaves the AAAA records alone.
	s.SetA("svc.example.test", "10.0.0.3")
	got, err = lookupIPs(t, r, "svc.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.3", "fd00::1"}; !slices.Equal(got, want) {
		t.Fatalf("addresses after SetA: got %v, want %v", got, want)
	}
}

func TestServerAnswersNXDOMAINForUnknownNames(t *testing.T) {
	s := New(t)
	r := resolverFor(s)
	s.SetA("gone.example.test", "10.0.0.1")
	s.Remove("gone.example.test")
	for _, name := range []string{"unknown.example.test.", "gone.example.test."} {
		_, err := lookupIPs(t, r, name)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("lookup %s: got %v, want a not-found DNSError", name, err)
		}
	}
}

func TestServerAnswersTXTRecordsLongerThanOneString(t *testing.T) {
	s := New(t)
	r := resolverFor(s)
	long := "grpc_config=" + strings.Repeat("x", 1000) // several strings, and too long for UDP
	s.SetTXT("_grpc_config.svc.example.test", "short", long)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	txts, err := r.LookupTXT(ctx, "_grpc_config.svc.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(txts, []string{"short", long}) {
		t.Fatalf("TXT: got %d records %q..., want [short, the long one]", len(txts), txts)
	}
}

func TestSilentServerDoesNotAnswer(t *testing.T) {
	s := New(t)
	r := resolverFor(s)
	s.SetA("svc.example.test", "10.0.0.1")
	s.SetSilent(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.LookupNetIP(ctx, "ip4", "svc.example.test.")
	if err == nil {
		t.Fatal("a silent server answered")
	}
	if s.Queries("svc.example.test", TypeA) == 0 {
		t.Error("the silent server counted no query")
	}
	s.SetSilent(false)
	if _, err := lookupIPs(t, r, "svc.example.test."); err != nil {
		t.Fatalf("after SetSilent(false): %v", err)
	}
}

func TestSetAPanicsOnAnIPv6Address(t *testing.T) {
	s := New(t)
	defer func() {
		if recover() == nil {
			t.Error("SetA accepted an IPv6 address")
		}
	}()
	s.SetA("svc.example.test", "::1")
}
