package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serverHostOverride is the name the server certificate is issued for and
// the clients verify (--server_host_override); the clients dial 127.0.0.1,
// which the certificate also covers.
const serverHostOverride = "foo.test.example"

// certFiles are the PEM files written for a run.
type certFiles struct {
	CA   string // the test CA's certificate (clients' --ca_file)
	Cert string // the server's certificate (servers' --tls_cert_file)
	Key  string // the server's private key, PKCS #8 (servers' --tls_key_file)
}

// pemCerts is a freshly generated test CA and a server certificate it
// signed.
type pemCerts struct {
	CA, Cert, Key []byte
}

// generateCerts creates a CA and a server certificate for host, localhost,
// 127.0.0.1 and ::1, valid from an hour before now for two days.
func generateCerts(host string, now time.Time) (pemCerts, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pemCerts{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "h2rpc interop test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return pemCerts{}, fmt.Errorf("creating CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return pemCerts{}, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pemCerts{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return pemCerts{}, fmt.Errorf("creating server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return pemCerts{}, err
	}
	return pemCerts{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// writeCerts generates certificates and writes them to dir as ca.pem,
// server.pem and server.key.
func writeCerts(dir string, now time.Time) (certFiles, error) {
	c, err := generateCerts(serverHostOverride, now)
	if err != nil {
		return certFiles{}, err
	}
	f := certFiles{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "server.pem"),
		Key:  filepath.Join(dir, "server.key"),
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{f.CA, c.CA, 0o644}, {f.Cert, c.Cert, 0o644}, {f.Key, c.Key, 0o600}} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return certFiles{}, err
		}
	}
	return f, nil
}
