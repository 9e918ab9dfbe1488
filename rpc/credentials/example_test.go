package credentials_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/peer"
)

// A TLS server and a client that trusts its CA.
func ExampleNewTLS() {
	ca, caKey, pool := exampleCA()
	serverCert := exampleLeaf(ca, caKey, "server", false)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}})))
	echov1.RegisterEchoServer(srv, echo{})
	go srv.Serve(lis)
	defer srv.Stop()

	// The client verifies the server's certificate against pool and the
	// name of the target's host (127.0.0.1 here).
	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{Message: "over TLS"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Message)
	// Output: over TLS
}

// Mutual TLS: the server requires and verifies a client certificate, and
// its handlers see who called in peer.FromContext.
func ExampleNewTLS_mutualTLS() {
	ca, caKey, pool := exampleCA()
	serverCert := exampleLeaf(ca, caKey, "server", false)
	clientCert := exampleLeaf(ca, caKey, "alice", true)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})))
	echov1.RegisterEchoServer(srv, echo{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{clientCert},
	})))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{Message: "who am I?"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Message)
	// Output: alice
}

// Rotated certificates: a FileReloader re-reads the PEM files, and each
// new connection gets the newest certificate.
func ExampleFileReloader() {
	r, err := credentials.NewFileReloader("server.pem", "server.key", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.Creds(credentials.NewTLS(&tls.Config{GetCertificate: r.GetCertificate})))
	_ = srv // register services, Serve; call r.Reload() to rotate at once
}

// echo answers Unary with the message, or with the common name of the
// client's verified certificate when the message is "who am I?".
type echo struct {
	echov1.UnimplementedEchoServer
}

func (echo) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if in.Message == "who am I?" {
		p, _ := peer.FromContext(ctx)
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return &echov1.EchoResponse{Message: ti.State.VerifiedChains[0][0].Subject.CommonName}, nil
		}
	}
	return &echov1.EchoResponse{Message: in.Message}, nil
}

// exampleCA makes a throwaway CA and a pool that trusts it.
func exampleCA() (*x509.Certificate, *ecdsa.PrivateKey, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "example CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return ca, key, pool
}

// exampleLeaf issues a leaf for 127.0.0.1 (a server's) or a client's.
func exampleLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, client bool) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
