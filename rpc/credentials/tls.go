package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
)

// alpnProto is the ALPN protocol gRPC requires over TLS.
const alpnProto = "h2"

// ErrALPN is wrapped by the handshake error of a peer that did not
// negotiate ALPN "h2".
var ErrALPN = errors.New(`credentials: the peer did not negotiate ALPN "h2"`)

// TLSInfo is the AuthInfo of a TLS connection.
type TLSInfo struct {
	// State is the connection's TLS state: the peer's certificates, and
	// VerifiedChains when they were verified (always on a client; on a
	// server when ClientAuth asks for verification).
	State tls.ConnectionState
	CommonAuthInfo
	// SPIFFEID is the peer's SPIFFE ID: its leaf certificate's URI SAN
	// when that is its only URI SAN and a valid workload SPIFFE ID
	// ("spiffe://trust-domain/path"); nil otherwise, as in grpc-go.
	SPIFFEID *url.URL
}

// AuthType returns "tls".
func (TLSInfo) AuthType() string { return "tls" }

// tlsCreds are the TransportCredentials of NewTLS.
type tlsCreds struct {
	config *tls.Config // ours: NextProtos has "h2"; never changed after NewTLS
}

// NewTLS returns TLS credentials from c, for a client or a server. c is
// cloned, and "h2" is added to its NextProtos; a handshake whose peer
// does not negotiate "h2" fails (ErrALPN). On a client, an empty
// ServerName is taken from the connection's authority.
//
// For mutual TLS, a server sets ClientAuth to
// tls.RequireAndVerifyClientCert and ClientCAs to the pool of client
// CAs; a client sets Certificates (or GetClientCertificate). Handlers see
// the client's verified chains in peer.FromContext's TLSInfo.
//
// For certificates that rotate without a restart, set GetCertificate
// (server) or GetClientCertificate (client), for example to a
// FileReloader's methods; for CAs that rotate, a server sets
// GetConfigForClient (whose configs get "h2" too: return one that has
// it already to keep it uncopied, and TLS session resumption working).
// They run on every handshake: new connections use the newest
// certificate, established ones keep theirs.
func NewTLS(c *tls.Config) TransportCredentials {
	var cfg *tls.Config
	if c == nil {
		cfg = &tls.Config{}
	} else {
		cfg = c.Clone()
	}
	withH2(cfg)
	if get := cfg.GetConfigForClient; get != nil {
		// The config the callback returns replaces cfg for the
		// handshake: it needs "h2" as much as cfg does.
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if err != nil || c == nil || slices.Contains(c.NextProtos, alpnProto) {
				return c, err
			}
			c = c.Clone() // the callback's config is not ours to change
			withH2(c)
			return c, nil
		}
	}
	return &tlsCreds{config: cfg}
}

// withH2 puts "h2" first in c's NextProtos unless it is there already.
func withH2(c *tls.Config) {
	if !slices.Contains(c.NextProtos, alpnProto) {
		c.NextProtos = append([]string{alpnProto}, c.NextProtos...)
	}
}

// NewClientTLSFromCert returns client TLS credentials that trust the CAs
// in cp (the system roots when nil) and, when serverNameOverride is not
// empty, verify the server against that name instead of the authority.
func NewClientTLSFromCert(cp *x509.CertPool, serverNameOverride string) TransportCredentials {
	return NewTLS(&tls.Config{ServerName: serverNameOverride, RootCAs: cp})
}

// NewClientTLSFromFile is NewClientTLSFromCert with the CAs read from
// the PEM file certFile.
func NewClientTLSFromFile(certFile, serverNameOverride string) (TransportCredentials, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("credentials: reading CA file: %w", err)
	}
	cp := x509.NewCertPool()
	if !cp.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("credentials: no PEM certificate in %s", certFile)
	}
	return NewClientTLSFromCert(cp, serverNameOverride), nil
}

// NewServerTLSFromCert returns server TLS credentials that present cert.
func NewServerTLSFromCert(cert *tls.Certificate) TransportCredentials {
	return NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})
}

// NewServerTLSFromFile returns server TLS credentials that present the
// PEM certificate chain in certFile with the private key in keyFile.
func NewServerTLSFromFile(certFile, keyFile string) (TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("credentials: loading key pair: %w", err)
	}
	return NewServerTLSFromCert(&cert), nil
}

func (c *tlsCreds) Info() ProtocolInfo {
	return ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2", ServerName: c.config.ServerName}
}

func (c *tlsCreds) Clone() TransportCredentials { return NewTLS(c.config) }

// OverrideServerName must not run while handshakes do.
func (c *tlsCreds) OverrideServerName(name string) error {
	c.config.ServerName = name
	return nil
}

func (c *tlsCreds) ClientHandshake(ctx context.Context, authority string, rawConn net.Conn) (net.Conn, AuthInfo, error) {
	cfg := c.config.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(authority)
		if err != nil {
			host = authority // no port
		}
		cfg.ServerName = host
	}
	conn := tls.Client(rawConn, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, nil, err
	}
	return handshaken(conn)
}

func (c *tlsCreds) ServerHandshake(rawConn net.Conn) (net.Conn, AuthInfo, error) {
	conn := tls.Server(rawConn, c.config)
	if err := conn.Handshake(); err != nil {
		return nil, nil, err
	}
	return handshaken(conn)
}

// handshaken checks ALPN and builds the TLSInfo of a finished handshake.
func handshaken(conn *tls.Conn) (net.Conn, AuthInfo, error) {
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != alpnProto {
		return nil, nil, fmt.Errorf("%w (negotiated %q)", ErrALPN, st.NegotiatedProtocol)
	}
	return conn, TLSInfo{
		State:          st,
		CommonAuthInfo: CommonAuthInfo{SecurityLevel: PrivacyAndIntegrity},
		SPIFFEID:       spiffeID(st),
	}, nil
}

// spiffeID returns the SPIFFE ID of the peer's leaf certificate: its
// URI SAN when it has exactly one (an X509-SVID has exactly one, as
// grpc-go checks) and it is a workload's SPIFFE ID, "spiffe://" + a
// trust domain + a path, with no port, user, query or fragment, at most
// 2048 bytes long. Otherwise nil.
func spiffeID(st tls.ConnectionState) *url.URL {
	if len(st.PeerCertificates) == 0 || len(st.PeerCertificates[0].URIs) != 1 {
		return nil
	}
	u := st.PeerCertificates[0].URIs[0]
	if u == nil || u.Scheme != "spiffe" || u.Opaque != "" || u.User != nil ||
		u.Host == "" || len(u.Host) > 255 || strings.Contains(u.Host, ":") ||
		u.Path == "" || strings.HasSuffix(u.Path, "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		len(u.String()) > 2048 {
		return nil
	}
	return u
}
