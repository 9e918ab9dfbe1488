package interop_test

// The interop cases with our client against our server, in process, over
// loopback TCP, plaintext and TLS; and our client against grpc-go's
// interop server (a separate process), for what that server implements. The matrix of
// separate processes (test/interop/matrix) runs the same cases across
// implementations.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/test/interop/cases"
	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
	"github.com/h2rpc/h2rpc/test/interop/service"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if grpcGoServer.dir != "" {
			os.RemoveAll(grpcGoServer.dir)
		}
	}))
}

// caseTimeout bounds one case; the soak cases bound themselves tighter.
const caseTimeout = 60 * time.Second

// serverName is the name in the test certificate, which the client checks
// through --server_host_override, as the interop client does with
// grpc-go's test certificate.
const serverName = "foo.test.h2rpc.example"

// testCerts returns a server TLS config with a certificate for serverName
// signed by a new CA, and a client TLS config that trusts that CA.
func testCerts(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "h2rpc interop test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: serverName},
		DNSNames:     []string{serverName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: roots, ServerName: serverName}
	return server, client
}

// startH2rpcServer serves our TestService on a loopback port.
func startH2rpcServer(t *testing.T, opts ...rpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(opts...)
	service.Register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// grpcGoServer is grpc-go's interop server binary, built once.
var grpcGoServer struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildGrpcGoServer builds google.golang.org/grpc/interop/server. It runs
// as its own process: its grpc.testing package and ours register the same
// proto names, so they cannot be linked into one binary.
func buildGrpcGoServer(t *testing.T) string {
	t.Helper()
	grpcGoServer.once.Do(func() {
		dir, err := os.MkdirTemp("", "h2rpc-interop-test-")
		if err != nil {
			grpcGoServer.err = err
			return
		}
		grpcGoServer.dir = dir
		path := filepath.Join(dir, "grpc-go-interop-server")
		out, err := exec.Command("go", "build", "-o", path, "google.golang.org/grpc/interop/server").CombinedOutput()
		if err != nil {
			grpcGoServer.err = fmt.Errorf("go build google.golang.org/grpc/interop/server: %v\n%s", err, out)
			return
		}
		grpcGoServer.path = path
	})
	if grpcGoServer.err != nil {
		t.Fatal(grpcGoServer.err)
	}
	return grpcGoServer.path
}

// listeningLine is the line grpc-go's interop server logs (at INFO) once
// it listens.
var listeningLine = regexp.MustCompile(`interop server listening on \S*:(\d+)`)

// startGrpcGoServer runs grpc-go's interop server on a free port and
// returns its loopback address.
func startGrpcGoServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(buildGrpcGoServer(t), "--port=0")
	cmd.Env = append(os.Environ(), "GRPC_GO_LOG_SEVERITY_LEVEL=info", "GRPC_GO_LOG_VERBOSITY_LEVEL=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	port := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case p := <-port:
		return net.JoinHostPort("127.0.0.1", p)
	case <-exited:
		t.Fatal("grpc-go's interop server exited before listening")
	case <-time.After(caseTimeout):
		t.Fatal("grpc-go's interop server did not say it listens")
	}
	return ""
}

// newTestClient is rpc.NewClient with this package's default test
// transport credentials (plaintext), which a test's own
// WithTransportCredentials overrides; every h2rpc client of the package's
// tests is made here.
func newTestClient(target string, opts ...rpc.DialOption) (*rpc.ClientConn, error) {
	return rpc.NewClient(target, append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
}

// clientTLSOption and serverTLSOption are the TLS options of the
// package's tests.
func clientTLSOption(cfg *tls.Config) rpc.DialOption {
	return rpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

func serverTLSOption(cfg *tls.Config) rpc.ServerOption { return rpc.Creds(credentials.NewTLS(cfg)) }

// runCases runs every case with our client against addr.
func runCases(t *testing.T, addr string, lenient bool, opts ...rpc.DialOption) {
	t.Helper()
	dial := func() (*rpc.ClientConn, error) { return newTestClient(addr, opts...) }
	cc, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	for _, name := range cases.Names {
		t.Run(name, func(t *testing.T) {
			soak := cases.DefaultSoakConfig()
			soak.ServerAddr = addr
			// Under the race detector a large call can take longer
			// than the default second.
			soak.PerIterationMaxAcceptableLatency = 10 * time.Second
			soak.OverallTimeout = 30 * time.Second
			env := &cases.Env{
				Conn:               cc,
				Dial:               dial,
				Soak:               soak,
				Logf:               t.Logf,
				LenientCompression: lenient,
			}
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			if err := cases.Run(ctx, name, env); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

func TestH2rpcClientH2rpcServerPlaintext(t *testing.T) {
	runCases(t, startH2rpcServer(t), false)
}

func TestH2rpcClientH2rpcServerTLS(t *testing.T) {
	serverTLS, clientTLS := testCerts(t)
	addr := startH2rpcServer(t, serverTLSOption(serverTLS))
	runCases(t, addr, false, clientTLSOption(clientTLS), rpc.WithAuthority(serverName))
}

// TestH2rpcClientGrpcGoServer runs the cases against grpc-go's interop
// server, which implements neither CompressedRequest nor
// CompressedResponse and registers no gzip decompressor: the compression
// cases run leniently (see cases.Env.LenientCompression).
func TestH2rpcClientGrpcGoServer(t *testing.T) {
	runCases(t, startGrpcGoServer(t), true)
}

// TestStrictCompressionCasesFailWithoutTheFeatures checks that the
// compression cases do check what they must: against grpc-go's server,
// which lacks the features, each of them fails unless lenient.
func TestStrictCompressionCasesFailWithoutTheFeatures(t *testing.T) {
	addr := startGrpcGoServer(t)
	cc, err := newTestClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, name := range []string{"client_compressed_unary", "server_compressed_unary", "client_compressed_streaming", "server_compressed_streaming"} {
		ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
		err := cases.Run(ctx, name, &cases.Env{Conn: cc})
		cancel()
		if err == nil {
			t.Errorf("%s passed against a server without the compression features", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestUnknownCase(t *testing.T) {
	if err := cases.Run(context.Background(), "no_such_case", &cases.Env{}); err == nil {
		t.Error("Run of an unknown case succeeded")
	}
}

func TestParseAdditionalMetadata(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"k:v", []string{"k", "v"}, false},
		{"k1:v1;k2:v:2;k3-bin:", []string{"k1", "v1", "k2", "v:2", "k3-bin", ""}, false},
		{"novalue", nil, true},
		{"k:v;", nil, true},
	} {
		got, err := cases.ParseAdditionalMetadata(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseAdditionalMetadata(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestAdditionalMetadata checks that the metadata of
// --additional_metadata reaches the server on unary and streaming calls.
func TestAdditionalMetadata(t *testing.T) {
	addr := startH2rpcServer(t)
	kv, err := cases.ParseAdditionalMetadata(service.InitialMetadataKey + ":extra;" + service.TrailingMetadataKey + ":\x01")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := newTestClient(addr, cases.WithAdditionalMetadata(kv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	// The server echoes the two keys, which shows they arrived.
	var header, trailer metadata.MD
	tc := testpb.NewTestServiceClient(cc)
	if _, err := tc.EmptyCall(ctx, &testpb.Empty{}, rpc.Header(&header), rpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get(service.InitialMetadataKey); !slices.Equal(got, []string{"extra"}) {
		t.Errorf("echoed header %q, want [extra]", got)
	}
	if got := trailer.Get(service.TrailingMetadataKey); !slices.Equal(got, []string{"\x01"}) {
		t.Errorf("echoed trailer %q, want [\\x01]", got)
	}
	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get(service.InitialMetadataKey); !slices.Equal(got, []string{"extra"}) {
		t.Errorf("stream: echoed header %q, want [extra]", got)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("stream: Recv after CloseSend = %v, want io.EOF", err)
	}
}
