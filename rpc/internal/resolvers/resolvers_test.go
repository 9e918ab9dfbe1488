package resolvers

import (
	"errors"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordingCC is a resolver.ClientConn that records what it is told.
type recordingCC struct {
	mu     sync.Mutex
	states []resolver.State
	errs   []error
}

func (cc *recordingCC) UpdateState(s resolver.State) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.states = append(cc.states, s)
	return nil
}

func (cc *recordingCC) ReportError(err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.errs = append(cc.errs, err)
}

func (cc *recordingCC) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	c, err := serviceconfig.Parse(js)
	return &serviceconfig.ParseResult{Config: c, Err: err}
}

func parseTarget(t *testing.T, s string) resolver.Target {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return resolver.Target{URL: *u}
}

// build builds target with the builder registered for its scheme.
func build(t *testing.T, target string) (*recordingCC, error) {
	t.Helper()
	tg := parseTarget(t, target)
	b := resolver.Get(tg.Scheme())
	if b == nil {
		t.Fatalf("no builder registered for %q", tg.Scheme())
	}
	cc := &recordingCC{}
	r, err := b.Build(tg, cc, resolver.BuildOptions{})
	if err != nil {
		if r != nil {
			t.Errorf("Build(%q) returned a resolver with its error", target)
		}
		return cc, err
	}
	r.ResolveNow(resolver.ResolveNowOptions{}) // ignored
	r.Close()
	return cc, nil
}

func TestStaticTargetsResolveToTheirAddresses(t *testing.T) {
	unix := func(a string) resolver.Address { return resolver.Address{Network: "unix", Addr: a} }
	tcp := func(a string) resolver.Address { return resolver.Address{Addr: a} }
	for _, tc := range []struct {
		target string
		want   []resolver.Address
	}{
		{"unix:s.sock", []resolver.Address{unix("s.sock")}},
		{"unix:dir/s.sock", []resolver.Address{unix("dir/s.sock")}},
		{"unix:/abs/s.sock", []resolver.Address{unix("/abs/s.sock")}},
		{"unix:///abs/s.sock", []resolver.Address{unix("/abs/s.sock")}},
		{"UNIX:///abs/s.sock", []resolver.Address{unix("/abs/s.sock")}},
		{"unix-abstract:name", []resolver.Address{unix("@name")}},
		{"unix-abstract:a/b", []resolver.Address{unix("@a/b")}},
		{"ipv4:10.0.0.1", []resolver.Address{tcp("10.0.0.1:443")}},
		{"ipv4:10.0.0.1:80", []resolver.Address{tcp("10.0.0.1:80")}},
		{"ipv4:10.0.0.2:80,10.0.0.1,127.0.0.1:65535", []resolver.Address{tcp("10.0.0.2:80"), tcp("10.0.0.1:443"), tcp("127.0.0.1:65535")}},
		{"ipv4:///127.0.0.1:50051", []resolver.Address{tcp("127.0.0.1:50051")}},
		{"ipv6:::1", []resolver.Address{tcp("[::1]:443")}},
		{"ipv6:2001:db8::1", []resolver.Address{tcp("[2001:db8::1]:443")}},
		{"ipv6:[::1]", []resolver.Address{tcp("[::1]:443")}},
		{"ipv6:[::1]:80,[2001:db8::2],2001:db8::3", []resolver.Address{tcp("[::1]:80"), tcp("[2001:db8::2]:443"), tcp("[2001:db8::3]:443")}},
		{"ipv6:[2001:DB8:0::1]:50051", []resolver.Address{tcp("[2001:db8::1]:50051")}},
	} {
		cc, err := build(t, tc.target)
		if err != nil {
			t.Errorf("Build(%q): %v", tc.target, err)
			continue
		}
		if len(cc.states) != 1 || len(cc.errs) != 0 {
			t.Errorf("Build(%q): %d states and %d errors, want 1 state", tc.target, len(cc.states), len(cc.errs))
			continue
		}
		got := cc.states[0]
		if !slices.EqualFunc(got.Addresses, tc.want, resolver.Address.Equal) || got.ServiceConfig != nil {
			t.Errorf("Build(%q): state %+v, want addresses %v and no service config", tc.target, got, tc.want)
		}
	}
}

func TestMalformedStaticTargetsAreBuildErrors(t *testing.T) {
	for _, target := range []string{
		"unix:",
		"unix://",
		"unix://host/abs/s.sock",
		"unix://user@/abs/s.sock",
		"unix-abstract:",
		"unix-abstract://host/name",
		"ipv4:",
		"ipv4:10.0.0.1:",
		"ipv4:10.0.0.1:http",
		"ipv4:10.0.0.1:0",
		"ipv4:10.0.0.1:65536",
		"ipv4:10.0.0.1:-1",
		"ipv4:10.0.0.256",
		"ipv4:10.0.0",
		"ipv4:host.example:80",
		"ipv4:::1",
		"ipv4:[::1]:80",
		"ipv4:[10.0.0.1]:80",
		"ipv4:::ffff:10.0.0.1",
		"ipv4:10.0.0.1,",
		"ipv4:,10.0.0.1",
		"ipv4:10.0.0.1:80:80",
		"ipv4://10.0.0.1/10.0.0.2",
		"ipv6:",
		"ipv6:10.0.0.1",
		"ipv6:[10.0.0.1]:80",
		"ipv6:[::1]:",
		"ipv6:[::1]:x",
		"ipv6:[::1]:70000",
		"ipv6:[::1",
		"ipv6:::1]",
		"ipv6:[[::1]]:80",
		"ipv6:[::1]:80,",
		"ipv6:[::1]:80,10.0.0.1:80",
		"ipv6:host.example",
		"ipv6://[::1]/[::2]",
	} {
		cc, err := build(t, target)
		if !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("Build(%q): error %v, want one wrapping ErrInvalidTarget", target, err)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(parseTarget(t, target).String())) {
			t.Errorf("Build(%q): error %q does not name the target", target, err)
		}
		if len(cc.states) != 0 || len(cc.errs) != 0 {
			t.Errorf("Build(%q) failed but told the channel %d states and %d errors", target, len(cc.states), len(cc.errs))
		}
	}
}

// dialResolved resolves target, dials the one address it gives and
// checks that ln, where a byte is written, accepted the connection.
func dialResolved(t *testing.T, ln net.Listener, target string) {
	t.Helper()
	cc, err := build(t, target)
	if err != nil {
		t.Fatalf("Build(%q): %v", target, err)
	}
	if len(cc.states) != 1 || len(cc.states[0].Addresses) != 1 {
		t.Fatalf("Build(%q): states %+v, want one with one address", target, cc.states)
	}
	addr := cc.states[0].Addresses[0]
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte{42})
			c.Close()
		}
		done <- err
	}()
	c, err := net.DialTimeout(addr.Network, addr.Addr, 20*time.Second)
	if err != nil {
		ln.Close()
		<-done
		t.Fatalf("dialling %s (from %q): %v", addr, target, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 42 {
		t.Errorf("reading from %s: %v, byte %d", addr, err, b[0])
	}
	if err := <-done; err != nil {
		t.Errorf("accepting on %s: %v", ln.Addr(), err)
	}
}

func TestUnixTargetsDialTheSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialResolved(t, ln, "unix://"+path)
	dialResolved(t, ln, "unix:"+path)
	t.Chdir(dir)
	dialResolved(t, ln, "unix:s.sock")
}

func TestUnixAbstractTargetsDialTheAbstractSocket(t *testing.T) {
	name := "h2rpc-resolvers-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ln, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Skipf("no abstract Unix sockets here: %v", err)
	}
	defer ln.Close()
	dialResolved(t, ln, "unix-abstract:"+name)
}
