package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/peer"
)

// tlsHandshaker returns a testServer prepare hook that runs the server
// side of a TLS handshake with cfg, as a server must before handing the
// *tls.Conn to NewServerTransport.
func tlsHandshaker(cfg *tls.Config) func(net.Conn) (net.Conn, error) {
	return func(c net.Conn) (net.Conn, error) {
		tc := tls.Server(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), longWait)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
}

// newTLSTestServer is a test server speaking HTTP/2 over TLS, ALPN "h2".
func newTLSTestServer(t testing.TB, cert tls.Certificate, handler func(*ServerStream)) *testServer {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	return newTestServerWith(t, ServerConfig{}, handler, tlsHandshaker(cfg))
}

func TestTLSUnaryEcho(t *testing.T) {
	cert, pool := testcert.New(t)
	schemes := make(chan string, 1)
	ts := newTLSTestServer(t, cert, func(s *ServerStream) {
		schemes <- s.Scheme()
		echoHandler(s)
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{TransportCredentials: credentials.NewTLS(&tls.Config{RootCAs: pool})})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	resp, _, err := unary(ctx, c, "/test.Echo/Unary", []byte("over TLS"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != "over TLS" {
		t.Fatalf("response %q", resp)
	}
	if got := <-schemes; got != "https" {
		t.Errorf("server saw :scheme %q, want https", got)
	}
	ti, ok := c.AuthInfo().(credentials.TLSInfo)
	if !ok {
		t.Fatalf("client AuthInfo is %T, want credentials.TLSInfo", c.AuthInfo())
	}
	if len(ti.State.VerifiedChains) == 0 || ti.SecurityLevel != credentials.PrivacyAndIntegrity {
		t.Errorf("client AuthInfo %+v: want verified chains and PrivacyAndIntegrity", ti.CommonAuthInfo)
	}
	tc, ok := ts.conn(0).conn.(*tls.Conn)
	if !ok {
		t.Fatalf("server connection is %T, want *tls.Conn", ts.conn(0).conn)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("negotiated ALPN %q, want h2", p)
	}
}

func TestTLSWithoutH2(t *testing.T) {
	cert, pool := testcert.New(t)
	tests := []struct {
		name       string
		nextProtos []string
		wantErr    string
	}{
		// The handshake succeeds without ALPN; the client refuses the
		// connection itself.
		{"no ALPN", nil, `did not negotiate ALPN "h2"`},
		// A server that offers only other protocols fails the handshake
		// (RFC 7301 §3.2, no_application_protocol).
		{"http/1.1 only", []string{"http/1.1"}, "no application protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: tt.nextProtos}
			ts := newTestServerWith(t, ServerConfig{}, echoHandler, tlsHandshaker(cfg))
			ctx, cancel := context.WithTimeout(context.Background(), longWait)
			defer cancel()
			c, err := NewClientTransport(ctx, ts.addr(), ConnectOptions{TransportCredentials: credentials.NewTLS(&tls.Config{RootCAs: pool})})
			if err == nil {
				c.Close(nil)
				<-c.Done()
				t.Fatal("NewClientTransport succeeded without ALPN h2")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to say %q", err, tt.wantErr)
			}
			t.Logf("client error: %v", err)
		})
	}
}

// TestTLSServerRequiresH2: a TLS client that does not negotiate "h2" is
// refused by NewServerTransport, which closes the connection.
func TestTLSServerRequiresH2(t *testing.T) {
	cert, pool := testcert.New(t)
	ts := newTLSTestServer(t, cert, echoHandler)
	d := &net.Dialer{Timeout: longWait}
	conn, err := tls.DialWithDialer(d, "tcp", ts.addr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("negotiated %q without asking", p)
	}
	// The server refuses right after the handshake, before any preface;
	// nothing is written, so its close is a clean close_notify.
	conn.SetDeadline(time.Now().Add(longWait))
	if n, err := conn.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v; want the server to close the connection", n, err)
	}
	ts.mu.Lock()
	n := len(ts.conns)
	ts.mu.Unlock()
	if n != 0 {
		t.Errorf("%d server transports started for a connection without h2", n)
	}
}

// TestServerStreamPeerCarriesConnAuthInfo: every stream of a server
// connection reports the connection's addresses and the AuthInfo its
// caller gave in ServerConfig, the same Peer for all of them.
func TestServerStreamPeerCarriesConnAuthInfo(t *testing.T) {
	ai := testAuthInfo{"conn-1"}
	peers := make(chan any, 2)
	ts := newTestServerWith(t, ServerConfig{AuthInfo: ai}, func(s *ServerStream) {
		peers <- s.Peer()
		echoHandler(s)
	}, nil)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	if c.AuthInfo() != nil {
		t.Errorf("plaintext client AuthInfo = %v, want nil", c.AuthInfo())
	}
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	for range 2 {
		if _, _, err := unary(ctx, c, "/test.Echo/Unary", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := (<-peers).(*peer.Peer), (<-peers).(*peer.Peer)
	if p1 != p2 {
		t.Errorf("two streams of one connection got different Peers")
	}
	if p1.AuthInfo != ai {
		t.Errorf("Peer.AuthInfo = %v, want %v", p1.AuthInfo, ai)
	}
	if p1.Addr.String() != c.LocalAddr().String() || p1.LocalAddr.String() != c.RemoteAddr().String() {
		t.Errorf("Peer addresses %v (local %v), want %v (local %v)", p1.Addr, p1.LocalAddr, c.LocalAddr(), c.RemoteAddr())
	}
}

// testAuthInfo is a comparable AuthInfo.
type testAuthInfo struct{ id string }

func (testAuthInfo) AuthType() string { return "test" }

// TestConnectionClosedBeforeSettingsReportsCause: a connection the
// server ends before its SETTINGS fails with the reason the reader saw
// (here the server's TLS alert), not an empty one.
func TestConnectionClosedBeforeSettingsReportsCause(t *testing.T) {
	cert, pool := testcert.New(t)
	// The server requires a client certificate the client does not
	// have; under TLS 1.3 the client learns it on its first read.
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, ClientAuth: tls.RequireAnyClientCert}
	ts := newTestServerWith(t, ServerConfig{}, echoHandler, tlsHandshaker(cfg))
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	c, err := NewClientTransport(ctx, ts.addr(), ConnectOptions{TransportCredentials: credentials.NewTLS(&tls.Config{RootCAs: pool})})
	if err == nil {
		c.Close(nil)
		<-c.Done()
		t.Fatal("NewClientTransport succeeded without the client certificate the server requires")
	}
	if !strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "%!") {
		t.Errorf("error %q does not carry the server's alert", err)
	}
}
