package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
)

func TestTargetParsing(t *testing.T) {
	r := manual.NewBuilderWithScheme("mine")
	for _, tc := range []struct {
		target, scheme, endpoint, authority string
	}{
		{"127.0.0.1:50051", "dns", "127.0.0.1:50051", "127.0.0.1:50051"},
		{"localhost:50051", "dns", "localhost:50051", "localhost:50051"},
		{"dns:///example.com:443", "dns", "example.com:443", "example.com:443"},
		{"passthrough:///10.0.0.1:80", "passthrough", "10.0.0.1:80", "10.0.0.1:80"},
		{"mine:///a,b", "mine", "a,b", "a,b"},
		{"[::1]:50051", "dns", "[::1]:50051", "[::1]:50051"},
	} {
		cc, err := newTestClient(tc.target, WithResolvers(r))
		if err != nil {
			t.Errorf("%q: %v", tc.target, err)
			continue
		}
		if cc.parsed.Scheme() != tc.scheme || cc.parsed.Endpoint() != tc.endpoint || cc.authority != tc.authority {
			t.Errorf("%q: scheme %q endpoint %q authority %q, want %q %q %q", tc.target,
				cc.parsed.Scheme(), cc.parsed.Endpoint(), cc.authority, tc.scheme, tc.endpoint, tc.authority)
		}
		cc.Close()
	}
	cc, err := newTestClient("127.0.0.1:1", WithAuthority("override.example"))
	if err != nil {
		t.Fatal(err)
	}
	if cc.authority != "override.example" {
		t.Errorf("authority %q, want WithAuthority's", cc.authority)
	}
	cc.Close()
}

func TestUnknownSchemeIsAnError(t *testing.T) {
	_, err := newTestClient("nosuchscheme:///host:1")
	if !errors.Is(err, ErrUnknownScheme) {
		t.Fatalf("NewClient: %v, want an error wrapping ErrUnknownScheme", err)
	}
}

// authorityServer is a raw HTTP/2 server that reports the :authority of
// each request it gets and answers nothing.
func authorityServer(t *testing.T) (addr string, authorities <-chan string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				if fr.WriteSettings() != nil {
					return
				}
				dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
					if f.Name == ":authority" {
						ch <- f.Value
					}
				})
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					if h, ok := f.(*http2.HeadersFrame); ok {
						dec.Write(h.HeaderBlockFragment())
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lis.Addr().String(), ch
}

// TestAuthority: the :authority (and the TLS server name) of a
// connection is WithAuthority's, else its address's ServerName, else the
// target's endpoint, as in grpc-go: a resolver cannot override the name
// the user set.
func TestAuthority(t *testing.T) {
	addr, got := authorityServer(t)
	for _, tc := range []struct {
		name       string
		serverName string
		opts       []DialOption
		want       string
	}{
		{"endpoint", "", nil, "backends"},
		{"WithAuthority", "", []DialOption{WithAuthority("channel.example")}, "channel.example"},
		{"ServerName", "backend-1.example", nil, "backend-1.example"},
		{"WithAuthority over ServerName", "backend-1.example", []DialOption{WithAuthority("channel.example")}, "channel.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: addr, ServerName: tc.serverName}}}, tc.opts...)
			short, cancel := context.WithTimeout(context.Background(), shortWait)
			defer cancel()
			c.Unary(short, wrapperspb.Bytes(nil)) // the server never answers
			select {
			case a := <-got:
				if a != tc.want {
					t.Errorf(":authority %q, want %q", a, tc.want)
				}
			case <-time.After(longWait):
				t.Fatal("no request reached the server")
			}
		})
	}
}

// failingBuilder is a resolver builder whose Build fails.
type failingBuilder struct{}

func (failingBuilder) Build(resolver.Target, resolver.ClientConn, resolver.BuildOptions) (resolver.Resolver, error) {
	return nil, errors.New("cannot build this resolver")
}
func (failingBuilder) Scheme() string { return "failbuild" }

// TestResolverBuildErrorFailsCalls: a resolver that cannot be built fails
// calls with UNAVAILABLE and its error.
func TestResolverBuildErrorFailsCalls(t *testing.T) {
	_, c := dial(t, "failbuild:///x", WithResolvers(failingBuilder{}), WithLogger(discardLogger()))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(err.Error(), "cannot build this resolver") {
		t.Errorf("error %v does not carry the builder's", err)
	}
}

// TestUnixTargetsThroughAChannel: calls on channels to unix:path (relative
// and absolute), unix:///abs and unix-abstract:name targets reach a
// server listening on that Unix socket.
func TestUnixTargetsThroughAChannel(t *testing.T) {
	serveUnix := func(t *testing.T, addr string) *atomic.Int64 {
		t.Helper()
		lis, err := net.Listen("unix", addr)
		if err != nil {
			t.Skipf("listen unix %q: %v", addr, err)
		}
		hits := new(atomic.Int64)
		srv := NewServer()
		srv.RegisterService(&testServiceDesc, &testService{unary: func(_ context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			hits.Add(1)
			return in, nil
		}})
		done := make(chan error, 1)
		go func() { done <- srv.Serve(lis) }()
		t.Cleanup(func() {
			srv.Stop()
			<-done
		})
		return hits
	}
	call := func(t *testing.T, target string, hits *atomic.Int64) {
		t.Helper()
		before := hits.Load()
		_, c := dial(t, target, WithLogger(discardLogger()))
		out, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("unix")), WaitForReady(true))
		if err != nil {
			t.Fatalf("call to %q: %v", target, err)
		}
		if string(out.Value) != "unix" || hits.Load() != before+1 {
			t.Fatalf("call to %q: reply %q, %d calls served; want the echo, 1", target, out.Value, hits.Load()-before)
		}
	}
	t.Run("path", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.sock")
		hits := serveUnix(t, path)
		call(t, "unix://"+path, hits) // unix:///abs
		call(t, "unix:"+path, hits)
		t.Chdir(dir)
		call(t, "unix:s.sock", hits)
	})
	t.Run("abstract", func(t *testing.T) {
		name := "h2rpc-rpc-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		hits := serveUnix(t, "@"+name)
		call(t, "unix-abstract:"+name, hits)
	})
}
