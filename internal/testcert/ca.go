package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a throwaway certificate authority that issues leaves for tests.
type CA struct {
	// Cert is the CA's certificate, Pool a pool that trusts only it.
	Cert *x509.Certificate
	Pool *x509.CertPool

	t      testing.TB
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewCA makes a CA valid for an hour either side of now. It fails t if a
// step fails.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	ca := &CA{t: t, key: key}
	ca.serial.Store(1)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(ca.Cert)
	return ca
}

// Leaf describes a leaf certificate to issue.
type Leaf struct {
	// CommonName is the subject's common name.
	CommonName string
	// DNSNames, IPs and URIs are the subject alternative names.
	DNSNames []string
	IPs      []net.IP
	URIs     []*url.URL
	// Client makes a client certificate (ExtKeyUsageClientAuth); the
	// default is a server certificate.
	Client bool
	// NotBefore and NotAfter bound the validity; zero means an hour
	// either side of now.
	NotBefore, NotAfter time.Time
}

// Issue signs a leaf described by l with a fresh key. Every leaf of a CA
// has its own serial number (Leaf.SerialNumber), in issue order.
func (ca *CA) Issue(l Leaf) tls.Certificate {
	ca.t.Helper()
	key := newKey(ca.t)
	usage := x509.ExtKeyUsageServerAuth
	if l.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: l.CommonName},
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
		URIs:         l.URIs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		ca.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// Server issues a server leaf for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server() tls.Certificate {
	ca.t.Helper()
	return ca.Issue(Leaf{CommonName: "server", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
}

// Client issues a client leaf named name.
func (ca *CA) Client(name string) tls.Certificate {
	ca.t.Helper()
	return ca.Issue(Leaf{CommonName: name, Client: true})
}

// Expired returns l issued so that it expired an hour ago.
func (ca *CA) Expired(l Leaf) tls.Certificate {
	ca.t.Helper()
	l.NotBefore, l.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	return ca.Issue(l)
}

// PEM encodes cert's chain and key as PEM blocks.
func PEM(t testing.TB, cert tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
