package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// testCert makes a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "h2rpc test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := testCert(t)
	_, addr := startServer(t, &testService{}, Creds(&tls.Config{Certificates: []tls.Certificate{cert}}))
	_, c := dial(t, addr, WithTLS(&tls.Config{RootCAs: pool}))
	out, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("secret")))
	if err != nil || string(out.Value) != "secret" {
		t.Fatalf("over TLS: %v, %v", out, err)
	}
	// A plaintext client cannot talk to the TLS server, and a client that
	// does not trust the certificate fails the handshake: UNAVAILABLE.
	_, plain := dial(t, addr, WithMinConnectTimeout(time.Second))
	_, err = plain.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	_, untrusting := dial(t, addr, WithTLS(&tls.Config{}))
	_, err = untrusting.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
}
