package transport

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// sockopt reads an integer socket option of the TCP connection under c.
func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	tc := tcpConnOf(c)
	if tc == nil {
		t.Fatalf("no *net.TCPConn under %T", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// tcpPair connects a client transport with copts to a server transport
// with scfg over loopback, with OS keepalive off on both sockets as they
// come from the dialer and the listener (a custom dialer may well make
// them so), and returns both raw sockets once the client is ready.
func tcpPair(t *testing.T, copts ConnectOptions, scfg ServerConfig, serverTLS *tls.Config) (client, server net.Conn) {
	t.Helper()
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	accepted := make(chan net.Conn, 1)
	servers := make(chan *http2Server, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		var conn net.Conn = c
		if serverTLS != nil {
			conn, err = tlsHandshaker(serverTLS)(c)
			if err != nil {
				c.Close()
				return
			}
		}
		st, err := newHTTP2Server(conn, scfg)
		if err != nil {
			close(servers)
			return
		}
		servers <- st
		st.HandleStreams(context.Background(), func(s *ServerStream) {})
	}()
	dialed := make(chan net.Conn, 1)
	copts.Dialer = func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{KeepAlive: -1}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			dialed <- c
		}
		return c, err
	}
	newTestClient(t, ln.Addr().String(), copts)
	client = <-dialed
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	st, ok := <-servers
	if !ok {
		t.Fatal("the server transport failed")
	}
	t.Cleanup(func() { st.Close(nil) })
	return client, server
}

func TestTCPKeepaliveOnByDefault(t *testing.T) {
	client, server := tcpPair(t, ConnectOptions{}, ServerConfig{}, nil)
	for _, s := range []struct {
		side string
		c    net.Conn
	}{{"client", client}, {"server", server}} {
		if v := sockopt(t, s.c, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 1 {
			t.Errorf("%s SO_KEEPALIVE = %d, want 1", s.side, v)
		}
		if v := sockopt(t, s.c, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE); v != int(DefaultTCPKeepalive/time.Second) {
			t.Errorf("%s TCP_KEEPIDLE = %ds, want %v", s.side, v, DefaultTCPKeepalive)
		}
	}
}

func TestTCPKeepaliveNegativeTurnsItOff(t *testing.T) {
	client, server := tcpPair(t, ConnectOptions{TCPKeepalive: -1}, ServerConfig{TCPKeepalive: -1}, nil)
	if v := sockopt(t, client, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
		t.Errorf("client SO_KEEPALIVE = %d, want 0", v)
	}
	if v := sockopt(t, server, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
		t.Errorf("server SO_KEEPALIVE = %d, want 0", v)
	}
}

func TestTCPUserTimeoutFromKeepaliveTimeout(t *testing.T) {
	copts := ConnectOptions{Keepalive: keepalive.ClientParameters{Time: time.Hour, Timeout: 3 * time.Second}}
	scfg := ServerConfig{Keepalive: keepalive.ServerParameters{Time: time.Hour, Timeout: 7 * time.Second}}
	check := func(t *testing.T, client, server net.Conn) {
		if v := sockopt(t, client, syscall.IPPROTO_TCP, tcpUserTimeout); v != 3000 {
			t.Errorf("client TCP_USER_TIMEOUT = %dms, want 3000", v)
		}
		if v := sockopt(t, server, syscall.IPPROTO_TCP, tcpUserTimeout); v != 7000 {
			t.Errorf("server TCP_USER_TIMEOUT = %dms, want 7000", v)
		}
	}
	t.Run("plaintext", func(t *testing.T) {
		client, server := tcpPair(t, copts, scfg, nil)
		check(t, client, server)
	})
	t.Run("TLS", func(t *testing.T) {
		cert, pool := testcert.New(t)
		o := copts
		o.TransportCredentials = credentials.NewTLS(&tls.Config{RootCAs: pool})
		client, server := tcpPair(t, o, scfg, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		check(t, client, server)
	})
}

func TestTCPUserTimeoutDefaults(t *testing.T) {
	// As grpc-go: a client without keepalive pings sets no user timeout;
	// a server pings by default, so it sets the default ping Timeout.
	client, server := tcpPair(t, ConnectOptions{}, ServerConfig{}, nil)
	if v := sockopt(t, client, syscall.IPPROTO_TCP, tcpUserTimeout); v != 0 {
		t.Errorf("client TCP_USER_TIMEOUT = %dms, want 0 (keepalive off)", v)
	}
	want := int(keepalive.DefaultServerTimeout / time.Millisecond)
	if v := sockopt(t, server, syscall.IPPROTO_TCP, tcpUserTimeout); v != want {
		t.Errorf("server TCP_USER_TIMEOUT = %dms, want %d", v, want)
	}
	_, server = tcpPair(t, ConnectOptions{}, ServerConfig{Keepalive: keepalive.ServerParameters{Time: keepalive.Infinity}}, nil)
	if v := sockopt(t, server, syscall.IPPROTO_TCP, tcpUserTimeout); v != 0 {
		t.Errorf("server TCP_USER_TIMEOUT = %dms with server pings off, want 0", v)
	}
}
