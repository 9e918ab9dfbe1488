package credentials_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// handshake runs client's and server's handshakes over a loopback TCP
// connection and returns what each side learned.
func handshake(t *testing.T, client, server credentials.TransportCredentials, authority string) (cai, sai credentials.AuthInfo, cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		ai  credentials.AuthInfo
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		conn, ai, err := server.ServerHandshake(raw)
		if err == nil {
			// Under TLS 1.3 the server verifies the client's
			// certificate after the client's handshake returned: read
			// until the client closes, so the client sees the alert.
			conn.Read(make([]byte, 1))
		}
		done <- result{ai, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, cai, cerr := client.ClientHandshake(ctx, authority, raw)
	if cerr == nil {
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cerr = err // the server's alert
		}
	}
	raw.Close()
	r := <-done
	return cai, r.ai, cerr, r.err
}

func TestTLSHandshakeAuthInfo(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	id := &url.URL{Scheme: "spiffe", Host: "example.org", Path: "/svc/a"}
	other := &url.URL{Scheme: "spiffe", Host: "example.org", Path: "/svc/b"}
	web := &url.URL{Scheme: "https", Host: "example.org"}
	for _, tc := range []struct {
		name string
		uris []*url.URL
		want string // the client's SPIFFE ID as the server sees it; "" for nil
	}{
		{"one SPIFFE ID", []*url.URL{id}, id.String()},
		// An X509-SVID has exactly one URI SAN (as grpc-go checks).
		{"a SPIFFE ID among other URIs", []*url.URL{web, id}, ""},
		{"two SPIFFE IDs", []*url.URL{id, other}, ""},
		{"no URI", nil, ""},
		{"no SPIFFE URI", []*url.URL{web}, ""},
		// A workload's SPIFFE ID has a trust domain and a path, and
		// nothing else.
		{"no path", []*url.URL{{Scheme: "spiffe", Host: "example.org"}}, ""},
		{"root path", []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/"}}, ""},
		{"no trust domain", []*url.URL{{Scheme: "spiffe", Path: "/svc/a"}}, ""},
		{"a port", []*url.URL{{Scheme: "spiffe", Host: "example.org:8443", Path: "/svc/a"}}, ""},
		{"a user", []*url.URL{{Scheme: "spiffe", User: url.User("u"), Host: "example.org", Path: "/svc/a"}}, ""},
		{"a query", []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc/a", RawQuery: "x=1"}}, ""},
		{"a fragment", []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc/a", Fragment: "f"}}, ""},
		{"too long", []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/" + strings.Repeat("a", 2048)}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientCert := ca.Issue(testcert.Leaf{CommonName: "c", Client: true, URIs: tc.uris})
			server := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool})
			client := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{clientCert}})
			cai, sai, cerr, serr := handshake(t, client, server, "localhost:443")
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
			sti := sai.(credentials.TLSInfo)
			got := ""
			if sti.SPIFFEID != nil {
				got = sti.SPIFFEID.String()
			}
			if got != tc.want {
				t.Errorf("SPIFFE ID %q, want %q", got, tc.want)
			}
			if len(sti.State.VerifiedChains) == 0 || sti.AuthType() != "tls" || sti.SecurityLevel != credentials.PrivacyAndIntegrity {
				t.Errorf("server's TLSInfo: chains %d, type %q, level %v", len(sti.State.VerifiedChains), sti.AuthType(), sti.SecurityLevel)
			}
			if cti := cai.(credentials.TLSInfo); cti.State.ServerName != "localhost" || cti.State.NegotiatedProtocol != "h2" {
				t.Errorf("client's TLSInfo: server name %q (want the authority's host), ALPN %q", cti.State.ServerName, cti.State.NegotiatedProtocol)
			}
		})
	}
}

func TestTLSHandshakeRequiresALPNH2(t *testing.T) {
	cert, pool := testcert.New(t)
	// A server or client made without our credentials offers no ALPN.
	plainServer := rawTLS{cfg: &tls.Config{Certificates: []tls.Certificate{cert}}}
	_, _, cerr, _ := handshake(t, credentials.NewTLS(&tls.Config{RootCAs: pool}), plainServer, "127.0.0.1")
	if !errors.Is(cerr, credentials.ErrALPN) {
		t.Errorf("client handshake with a server without ALPN: %v, want ErrALPN", cerr)
	}
	plainClient := rawTLS{cfg: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	_, _, _, serr := handshake(t, plainClient, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}), "127.0.0.1")
	if !errors.Is(serr, credentials.ErrALPN) {
		t.Errorf("server handshake with a client without ALPN: %v, want ErrALPN", serr)
	}
}

// rawTLS are TransportCredentials over crypto/tls without ALPN.
type rawTLS struct{ cfg *tls.Config }

func (r rawTLS) ClientHandshake(ctx context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := tls.Client(c, r.cfg)
	return tc, nil, tc.HandshakeContext(ctx)
}

func (r rawTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := tls.Server(c, r.cfg)
	return tc, nil, tc.Handshake()
}

func (rawTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (r rawTLS) Clone() credentials.TransportCredentials { return r }
func (rawTLS) OverrideServerName(string) error           { return nil }

func TestClientHandshakeHonoursContext(t *testing.T) {
	_, pool := testcert.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The server accepts and never answers the ClientHello.
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool})
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			srv := <-accepted
			defer srv.Close()
			ctx, cancel := tc.ctx()
			defer cancel()
			if _, _, err := creds.ClientHandshake(ctx, "127.0.0.1", raw); !errors.Is(err, tc.want) {
				t.Errorf("handshake error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewTLSLeavesTheCallersConfigAlone(t *testing.T) {
	cfg := &tls.Config{NextProtos: []string{"http/1.1"}, ServerName: "a.example"}
	c := credentials.NewTLS(cfg)
	if !slices.Equal(cfg.NextProtos, []string{"http/1.1"}) {
		t.Errorf("NewTLS changed the caller's NextProtos to %q", cfg.NextProtos)
	}
	if got := c.Info(); got.SecurityProtocol != "tls" || got.ServerName != "a.example" {
		t.Errorf("Info %+v", got)
	}
	clone := c.Clone()
	if err := clone.OverrideServerName("b.example"); err != nil {
		t.Fatal(err)
	}
	if c.Info().ServerName != "a.example" || clone.Info().ServerName != "b.example" {
		t.Errorf("OverrideServerName on a clone: original %q, clone %q", c.Info().ServerName, clone.Info().ServerName)
	}
}

func TestTLSFromFiles(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	writePEM(t, ca.Server(), certFile, keyFile)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	server, err := credentials.NewServerTLSFromFile(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := credentials.NewClientTLSFromFile(caFile, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cerr, serr := handshake(t, client, server, "127.0.0.1:1"); cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if _, err := credentials.NewClientTLSFromFile(keyFile, ""); err == nil {
		t.Error("NewClientTLSFromFile accepted a file without a certificate")
	}
	if _, err := credentials.NewServerTLSFromFile(certFile, filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewServerTLSFromFile with a missing key: %v, want os.ErrNotExist", err)
	}
}

func TestCheckSecurityLevel(t *testing.T) {
	tlsInfo := credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	for _, tc := range []struct {
		name string
		ai   credentials.AuthInfo
		ok   bool
	}{
		{"TLS", tlsInfo, true},
		{"nil", nil, false},
		{"no security", levelInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, false},
		{"integrity only", levelInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.IntegrityOnly}}, false},
		{"invalid level", levelInfo{}, true},
		{"no CommonAuthInfo", bareInfo{}, true},
	} {
		err := credentials.CheckSecurityLevel(tc.ai, credentials.PrivacyAndIntegrity)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, credentials.ErrInsufficientSecurity)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if s := credentials.IntegrityOnly.String(); s != "IntegrityOnly" {
		t.Errorf("String %q", s)
	}
}

type levelInfo struct{ credentials.CommonAuthInfo }

func (levelInfo) AuthType() string { return "level" }

type bareInfo struct{}

func (bareInfo) AuthType() string { return "bare" }

func TestRequestInfoContext(t *testing.T) {
	if _, ok := credentials.RequestInfoFromContext(context.Background()); ok {
		t.Error("RequestInfo in a bare context")
	}
	ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: "/s/m"})
	if ri, ok := credentials.RequestInfoFromContext(ctx); !ok || ri.Method != "/s/m" {
		t.Errorf("RequestInfoFromContext = %+v, %v", ri, ok)
	}
}

// TestGetConfigForClientNegotiatesH2: a server whose per-client config
// comes from GetConfigForClient (to rotate its CAs, as NewTLS's doc
// suggests) still negotiates "h2": the config the callback returns is
// the one the handshake uses, and it must get "h2" too.
func TestGetConfigForClientNegotiatesH2(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	perClient := &tls.Config{Certificates: []tls.Certificate{ca.Server()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	server := credentials.NewTLS(&tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return perClient, nil },
	})
	client := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client("alice")}})
	cai, sai, cerr, serr := handshake(t, client, server, "localhost:443")
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	if p := sai.(credentials.TLSInfo).State.NegotiatedProtocol; p != "h2" {
		t.Errorf("server negotiated %q", p)
	}
	if len(sai.(credentials.TLSInfo).State.VerifiedChains) == 0 || cai == nil {
		t.Error("the per-client config's client verification did not run")
	}
	if len(perClient.NextProtos) != 0 {
		t.Errorf("the callback's config was changed: NextProtos %q", perClient.NextProtos)
	}
}
