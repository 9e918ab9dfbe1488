package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/credentials/oauth"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/peer"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// peerRecorder is a testService whose handlers record the peer and the
// incoming metadata of each call.
type peerRecorder struct {
	testService
	mu    sync.Mutex
	peers []*peer.Peer
	mds   []metadata.MD
	calls atomic.Int32
}

func newPeerRecorder() *peerRecorder {
	r := &peerRecorder{}
	r.unary = func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		r.calls.Add(1)
		p, _ := peer.FromContext(ctx)
		md, _ := metadata.FromIncomingContext(ctx)
		r.mu.Lock()
		r.peers = append(r.peers, p)
		r.mds = append(r.mds, md)
		r.mu.Unlock()
		return in, nil
	}
	return r
}

func (r *peerRecorder) last(t *testing.T) (*peer.Peer, metadata.MD) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.peers) == 0 {
		t.Fatal("the handler saw no call")
	}
	return r.peers[len(r.peers)-1], r.mds[len(r.mds)-1]
}

func TestTLSHandshakeAcceptsOnlyTrustedNamedUnexpiredCertificates(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	otherCA := testcert.NewCA(t, "other CA")
	serverLeaf := testcert.Leaf{CommonName: "server", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	good := ca.Server()
	expired := ca.Expired(serverLeaf)
	client := ca.Client("alice")
	expiredClient := ca.Expired(testcert.Leaf{CommonName: "old", Client: true})
	mtls := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	}
	for _, tc := range []struct {
		name    string
		server  *tls.Config
		client  *tls.Config
		opts    []DialOption
		wantErr string // empty: the call succeeds
	}{
		{name: "trusted", server: &tls.Config{Certificates: []tls.Certificate{good}}, client: &tls.Config{RootCAs: ca.Pool}},
		{name: "wrong CA", server: &tls.Config{Certificates: []tls.Certificate{good}}, client: &tls.Config{RootCAs: otherCA.Pool},
			wantErr: "certificate signed by unknown authority"},
		{name: "wrong server name", server: &tls.Config{Certificates: []tls.Certificate{good}}, client: &tls.Config{RootCAs: ca.Pool},
			opts: []DialOption{WithAuthority("elsewhere.example:443")}, wantErr: "elsewhere.example"},
		{name: "expired server certificate", server: &tls.Config{Certificates: []tls.Certificate{expired}}, client: &tls.Config{RootCAs: ca.Pool},
			wantErr: "expired"},
		{name: "mTLS", server: mtls(good), client: &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{client}}},
		{name: "mTLS without a client certificate", server: mtls(good), client: &tls.Config{RootCAs: ca.Pool},
			wantErr: "certificate required"},
		{name: "mTLS with an expired client certificate", server: mtls(good), client: &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{expiredClient}},
			wantErr: "expired certificate"},
		{name: "mTLS with a client certificate of another CA", server: mtls(good), client: &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{otherCA.Client("mallory")}},
			// The client offers only certificates of the CAs the server
			// names, so it sends none.
			wantErr: "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newPeerRecorder()
			_, addr := startServer(t, &svc.testService, serverTLS(tc.server))
			_, c := dial(t, addr, append([]DialOption{clientTLS(tc.client)}, tc.opts...)...)
			_, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("hi")))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				return
			}
			wantCode(t, err, codes.Unavailable)
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if n := svc.calls.Load(); n != 0 {
				t.Errorf("the handler ran %d times over a refused connection", n)
			}
		})
	}
}

func TestHandlerAndInterceptorSeePeerWithTLSInfo(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	id, _ := url.Parse("spiffe://example.org/ns/test/sa/alice")
	clientCert := ca.Issue(testcert.Leaf{CommonName: "alice", Client: true, URIs: []*url.URL{id}})
	svc := newPeerRecorder()
	var fromInterceptor *peer.Peer
	_, addr := startServer(t, &svc.testService,
		serverTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}),
		UnaryInterceptor(func(ctx context.Context, req any, info *UnaryServerInfo, h UnaryHandler) (any, error) {
			fromInterceptor, _ = peer.FromContext(ctx)
			return h(ctx, req)
		}))
	var callPeer peer.Peer
	_, c := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{clientCert}}))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Peer(&callPeer)); err != nil {
		t.Fatal(err)
	}
	p, _ := svc.last(t)
	if p == nil {
		t.Fatal("peer.FromContext found no peer in the handler's context")
	}
	if fromInterceptor != p {
		t.Errorf("interceptor saw peer %v, handler %v", fromInterceptor, p)
	}
	if p.Addr.String() != callPeer.LocalAddr.String() || p.LocalAddr.String() != addr {
		t.Errorf("handler's peer %v; want Addr %v and LocalAddr %v", p, callPeer.LocalAddr, addr)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		t.Fatalf("handler's AuthInfo is %T, want credentials.TLSInfo", p.AuthInfo)
	}
	if ti.SecurityLevel != credentials.PrivacyAndIntegrity {
		t.Errorf("security level %v", ti.SecurityLevel)
	}
	if len(ti.State.VerifiedChains) == 0 || ti.State.VerifiedChains[0][0].Subject.CommonName != "alice" {
		t.Errorf("verified chains %v, want alice's", ti.State.VerifiedChains)
	}
	if ti.SPIFFEID == nil || ti.SPIFFEID.String() != id.String() {
		t.Errorf("SPIFFE ID %v, want %v", ti.SPIFFEID, id)
	}
	// The client's Peer: the server, its TLSInfo (no SPIFFE ID there).
	cti, ok := callPeer.AuthInfo.(credentials.TLSInfo)
	if !ok || callPeer.Addr.String() != addr || cti.State.PeerCertificates[0].Subject.CommonName != "server" || cti.SPIFFEID != nil {
		t.Errorf("rpc.Peer filled with %v", &callPeer)
	}
}

func TestStreamHandlerSeesPeer(t *testing.T) {
	got := make(chan *peer.Peer, 1)
	svc := &testService{download: func(in *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
		p, _ := peer.FromContext(s.Context())
		got <- p
		return nil
	}}
	_, addr := startServer(t, svc, Creds(insecure.NewCredentials()))
	_, c := dial(t, addr)
	st, err := c.Download(ctxWait(t), wrapperspb.Bytes(nil))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
	}
	p := <-got
	if p == nil || p.LocalAddr.String() != addr {
		t.Fatalf("stream handler's peer %v", p)
	}
	if p.AuthInfo == nil || p.AuthInfo.AuthType() != "insecure" {
		t.Fatalf("AuthInfo %v, want insecure", p.AuthInfo)
	}
	if err := credentials.CheckSecurityLevel(p.AuthInfo, credentials.IntegrityOnly); err == nil {
		t.Error("insecure AuthInfo passes IntegrityOnly")
	}
}

func TestServerWithoutCredsGivesPeerWithoutAuthInfo(t *testing.T) {
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService)
	_, c := dial(t, addr)
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	p, _ := svc.last(t)
	if p == nil || p.AuthInfo != nil || p.LocalAddr.String() != addr {
		t.Fatalf("peer %v, want our address and no AuthInfo", p)
	}
}

// writePEM writes cert's chain and key to certFile and keyFile.
func writePEM(t *testing.T, cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	c, k := testcert.PEM(t, cert)
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRotatedCertificateServedWithoutRestart(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := ca.Server(), ca.Server()
	writePEM(t, first, certFile, keyFile)
	r, err := credentials.NewFileReloader(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, &testService{}, serverTLS(&tls.Config{GetCertificate: r.GetCertificate}))
	servedSerial := func(c *testClient) string {
		t.Helper()
		var p peer.Peer
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Peer(&p)); err != nil {
			t.Fatal(err)
		}
		return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber.String()
	}
	_, old := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool}))
	if got, want := servedSerial(old), first.Leaf.SerialNumber.String(); got != want {
		t.Fatalf("first connection sees serial %s, want %s", got, want)
	}

	writePEM(t, second, certFile, keyFile)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	_, fresh := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool}))
	if got, want := servedSerial(fresh), second.Leaf.SerialNumber.String(); got != want {
		t.Errorf("a connection made after the rotation sees serial %s, want %s", got, want)
	}
	// The established connection carries on with its certificate.
	if got, want := servedSerial(old), first.Leaf.SerialNumber.String(); got != want {
		t.Errorf("the connection made before the rotation sees serial %s, want %s", got, want)
	}
}

// recordingCreds are PerRPCCredentials that record what they were asked.
type recordingCreds struct {
	md     map[string]string
	err    error
	secure bool

	mu  sync.Mutex
	uri []string
	ri  credentials.RequestInfo
}

func (c *recordingCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uri = uri
	c.ri, _ = credentials.RequestInfoFromContext(ctx)
	return c.md, c.err
}

func (c *recordingCreds) RequireTransportSecurity() bool { return c.secure }

func TestPerRPCCredentialsDeliverMetadata(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService, serverTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}}))
	rec := &recordingCreds{md: map[string]string{"X-Tenant": "blue"}, secure: true}
	_, c := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool}), WithPerRPCCredentials(rec))
	ctx := metadata.AppendToOutgoingContext(ctxWait(t), "own", "kept")
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), PerRPCCredentials(oauth.NewStaticToken("s3cret"))); err != nil {
		t.Fatal(err)
	}
	_, md := svc.last(t)
	if got := mdValue(md, "authorization"); got != "Bearer s3cret" {
		t.Errorf("authorization %q, want the call option's bearer token", got)
	}
	if got := mdValue(md, "x-tenant"); got != "blue" {
		t.Errorf("x-tenant %q, want the dial option's metadata (lower-cased key)", got)
	}
	if got := mdValue(md, "own"); got != "kept" {
		t.Errorf("own %q: the call's metadata was lost", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := "https://" + addr + "/test.v1.Test"; len(rec.uri) != 1 || rec.uri[0] != want {
		t.Errorf("uri %q, want [%q]", rec.uri, want)
	}
	if rec.ri.Method != "/test.v1.Test/Unary" || rec.ri.AuthInfo == nil || rec.ri.AuthInfo.AuthType() != "tls" {
		t.Errorf("RequestInfo %+v", rec.ri)
	}
	if got := credsURI("example.com:443", "/pkg.Svc/M"); got != "https://example.com/pkg.Svc" {
		t.Errorf("credsURI drops the default port: got %q", got)
	}
}

func TestPerRPCCredentialsRequiringSecurityRefusedOverPlaintext(t *testing.T) {
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService)
	_, c := dial(t, addr) // insecure
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), PerRPCCredentials(oauth.NewStaticToken("s3cret")))
	wantCode(t, err, codes.Unauthenticated)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "insecure connection") {
		t.Errorf("message %q does not say the connection is insecure", msg)
	}
	if n := svc.calls.Load(); n != 0 {
		t.Errorf("the server saw %d calls", n)
	}
	// Credentials that do not require security go over plaintext.
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), PerRPCCredentials(&recordingCreds{md: map[string]string{"k": "v"}})); err != nil {
		t.Fatal(err)
	}
	if _, md := svc.last(t); mdValue(md, "k") != "v" {
		t.Errorf("metadata of credentials without RequireTransportSecurity lost: %v", md)
	}
	// As a dial option, the channel itself is refused.
	_, err = newTestClient(addr, WithPerRPCCredentials(oauth.NewStaticToken("s3cret")))
	if !errors.Is(err, ErrCredentialsRequireTransportSecurity) {
		t.Errorf("NewClient with insecure transport and secure per-RPC credentials: %v, want ErrCredentialsRequireTransportSecurity", err)
	}
}

func TestPerRPCCredentialsErrorFailsCall(t *testing.T) {
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService)
	_, c := dial(t, addr)
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{errors.New("token endpoint down"), codes.Unauthenticated},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{status.Error(codes.Unavailable, "later"), codes.Unavailable},
		// gRFC A54: codes a control plane may not produce become INTERNAL.
		{status.Error(codes.NotFound, "gone"), codes.Internal},
		// An error whose status is OK still fails the call: it must not
		// go out without the credentials.
		{okStatusError{}, codes.Internal},
	} {
		var p peer.Peer
		_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), PerRPCCredentials(&recordingCreds{err: tc.err}), Peer(&p))
		wantCode(t, err, tc.want)
		if p.Addr == nil || p.Addr.String() != addr {
			t.Errorf("rpc.Peer not filled when the call failed after a connection was picked: %v", &p)
		}
	}
	if n := svc.calls.Load(); n != 0 {
		t.Errorf("the server saw %d calls", n)
	}
}

func TestRefreshingTokenSentAndRefreshed(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService, serverTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}}))
	var fetches atomic.Int32
	src := oauth.TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		switch fetches.Add(1) {
		case 1: // already within the refresh margin: the next call refreshes
			return "tok-1", time.Now().Add(oauth.RefreshMargin / 2), nil
		default:
			return "tok-2", time.Now().Add(time.Hour), nil
		}
	})
	_, c := dial(t, addr, clientTLS(&tls.Config{RootCAs: ca.Pool}), WithPerRPCCredentials(oauth.NewTokenSource(src)))
	for i, want := range []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-2"} {
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
			t.Fatal(err)
		}
		if _, md := svc.last(t); mdValue(md, "authorization") != want {
			t.Errorf("call %d sent %q, want %q", i, mdValue(md, "authorization"), want)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d token fetches, want 2 (the third call reuses the fresh token)", n)
	}
}

func TestInsecureCredentialsBothSides(t *testing.T) {
	svc := newPeerRecorder()
	_, addr := startServer(t, &svc.testService, Creds(insecure.NewCredentials()))
	var p peer.Peer
	_, c := dial(t, addr, WithTransportCredentials(insecure.NewCredentials()))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), Peer(&p)); err != nil {
		t.Fatal(err)
	}
	if p.AuthInfo == nil || p.AuthInfo.AuthType() != "insecure" || p.Addr.String() != addr {
		t.Errorf("client Peer %v", &p)
	}
	sp, _ := svc.last(t)
	if sp.AuthInfo == nil || sp.AuthInfo.AuthType() != "insecure" {
		t.Errorf("server peer %v", sp)
	}
}

// TestPeerFromContextAllocatesNothing: the server's stream context
// answers peer.FromContext from the connection's one Peer.
func TestPeerFromContextAllocatesNothing(t *testing.T) {
	allocs := make(chan float64, 1)
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		allocs <- testing.AllocsPerRun(20, func() {
			if p, ok := peer.FromContext(ctx); !ok || p == nil {
				panic("no peer")
			}
		})
		return in, nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	if n := <-allocs; n != 0 {
		t.Errorf("peer.FromContext in a handler allocates %v times", n)
	}
}

func TestNewClientWithoutTransportCredentialsFails(t *testing.T) {
	cc, err := NewClient("127.0.0.1:1")
	if err == nil {
		cc.Close()
		t.Fatal("NewClient without transport credentials succeeded")
	}
	if !errors.Is(err, ErrNoTransportSecurity) {
		t.Errorf("error %v, want ErrNoTransportSecurity", err)
	}
	if !strings.Contains(err.Error(), "rpc.WithTransportCredentials(insecure.NewCredentials())") {
		t.Errorf("error %q does not say how to choose plaintext", err)
	}
}

// TestTLSServerNameIsWithAuthorityOverAddressServerName: the name TLS
// verifies is WithAuthority's when set, whatever ServerName the
// resolver gives the address (as in grpc-go); without WithAuthority it
// is the address's ServerName.
func TestTLSServerNameIsWithAuthorityOverAddressServerName(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	_, addr := startServer(t, &testService{}, serverTLS(&tls.Config{Certificates: []tls.Certificate{ca.Server()}}))
	st := &resolver.State{Addresses: []resolver.Address{{Addr: addr, ServerName: "elsewhere.example"}}}

	_, _, c := manualClient(t, st, clientTLS(&tls.Config{RootCAs: ca.Pool}), WithAuthority("localhost"))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("with WithAuthority naming the server: %v", err)
	}
	_, _, c = manualClient(t, st, clientTLS(&tls.Config{RootCAs: ca.Pool}))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(err.Error(), "elsewhere.example") {
		t.Errorf("error %q does not name the address's ServerName", err)
	}
}

// TestPerRPCCredentialsURIIsTheConnectionsAuthority: the uri given to
// GetRequestMetadata names the authority of the connection the call
// uses, as grpc-go's: the address's ServerName when the resolver gives
// one (and WithAuthority does not override it), so that a token's
// audience matches the :authority the server sees.
func TestPerRPCCredentialsURIIsTheConnectionsAuthority(t *testing.T) {
	_, addr := startServer(t, &testService{})
	rec := &recordingCreds{}
	st := &resolver.State{Addresses: []resolver.Address{{Addr: addr, ServerName: "backend-1.example:443"}}}
	_, _, c := manualClient(t, st, WithPerRPCCredentials(rec))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := "https://backend-1.example/test.v1.Test"; len(rec.uri) != 1 || rec.uri[0] != want {
		t.Errorf("uri %q, want [%q]", rec.uri, want)
	}
}

// ctxIgnoringTLS are TLS credentials whose client handshake ignores its
// context, as third-party credentials may.
type ctxIgnoringTLS struct {
	credentials.TransportCredentials
	cfg *tls.Config
}

func (c ctxIgnoringTLS) ClientHandshake(_ context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn := tls.Client(raw, c.cfg)
	if err := conn.Handshake(); err != nil {
		return nil, nil, err
	}
	return conn, credentials.TLSInfo{State: conn.ConnectionState()}, nil
}

// TestConnectTimeoutBoundsHandshakeThatIgnoresContext: the connect
// timeout ends a handshake even when the credentials ignore their
// context (the raw connection is closed, as grpc-go does), so a server
// that never answers the ClientHello fails the attempt instead of
// holding it, and ClientConn.Close, for ever.
func TestConnectTimeoutBoundsHandshakeThatIgnoresContext(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	creds := ctxIgnoringTLS{credentials.NewTLS(nil), &tls.Config{ServerName: "localhost", NextProtos: []string{"h2"}}}
	cc, c := dial(t, lis.Addr().String(), WithTransportCredentials(creds),
		WithConnectParams(ConnectParams{Backoff: BackoffConfig{BaseDelay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond}, MinConnectTimeout: 50 * time.Millisecond}))
	t.Cleanup(func() {
		// Release a handshake the fix did not end, so that the test
		// fails instead of hanging in Close.
		lis.Close()
		<-accepted
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	closed := make(chan struct{})
	go func() { cc.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(longWait):
		t.Error("Close did not return while a handshake ignored its context")
	}
}
