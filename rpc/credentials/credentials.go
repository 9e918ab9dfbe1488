// Package credentials holds what secures a connection and identifies a
// caller, in the shape grpc-go users know: TransportCredentials run the
// handshake of each new connection (TLS by NewTLS and its helpers,
// plaintext by package insecure) and report the peer's AuthInfo;
// PerRPCCredentials add authentication metadata (a bearer token, for
// example) to every call.
//
// Give a client its transport credentials with
// rpc.WithTransportCredentials (a client without them is an error: plain
// text is chosen explicitly with insecure.NewCredentials()), a server
// with rpc.Creds, and per-RPC credentials with rpc.WithPerRPCCredentials
// or rpc.PerRPCCredentials.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// SecurityLevel is how well a connection protects what it carries.
type SecurityLevel int

// The security levels, from none to full.
const (
	// InvalidSecurityLevel is the zero value: the level is unknown, and
	// checks against it pass (for AuthInfo types written before levels
	// existed, as in grpc-go).
	InvalidSecurityLevel SecurityLevel = iota
	// NoSecurity: plaintext.
	NoSecurity
	// IntegrityOnly: tampering is detected, but data is readable.
	IntegrityOnly
	// PrivacyAndIntegrity: encrypted and authenticated, as TLS.
	PrivacyAndIntegrity
)

// String names the level as grpc-go does.
func (s SecurityLevel) String() string {
	switch s {
	case NoSecurity:
		return "NoSecurity"
	case IntegrityOnly:
		return "IntegrityOnly"
	case PrivacyAndIntegrity:
		return "PrivacyAndIntegrity"
	}
	return fmt.Sprintf("invalid SecurityLevel: %d", int(s))
}

// CommonAuthInfo is what every AuthInfo of this package carries; embed it
// in an AuthInfo of your own so that CheckSecurityLevel can read it.
type CommonAuthInfo struct {
	// SecurityLevel is the connection's level of protection.
	SecurityLevel SecurityLevel
}

// GetCommonAuthInfo returns c; it is how CheckSecurityLevel finds the
// level of any AuthInfo that embeds a CommonAuthInfo.
func (c CommonAuthInfo) GetCommonAuthInfo() CommonAuthInfo { return c }

// AuthInfo is what a handshake learned about the peer: for TLS a TLSInfo,
// for plaintext the insecure package's info.
type AuthInfo interface {
	// AuthType names the kind of credentials, such as "tls" or
	// "insecure".
	AuthType() string
}

// ProtocolInfo describes a TransportCredentials' protocol.
type ProtocolInfo struct {
	// ProtocolVersion is the gRPC wire protocol version.
	ProtocolVersion string
	// SecurityProtocol names the security protocol: "tls", "insecure".
	SecurityProtocol string
	// SecurityVersion is the security protocol's version.
	//
	// Deprecated: kept for grpc-go compatibility; nothing reads it.
	SecurityVersion string
	// ServerName is the name the client verifies the server against,
	// when the credentials fix one.
	ServerName string
}

// TransportCredentials secure a connection: the client and server sides
// of a handshake, run once per connection before HTTP/2 starts.
//
// Implementations must be safe for concurrent use: one value serves every
// connection of a client or server.
type TransportCredentials interface {
	// ClientHandshake secures rawConn, the client side of a new
	// connection to authority (host or host:port, the server name to
	// verify unless the credentials fix one). It must honour ctx's
	// deadline and cancellation, and return the conn to use from now on
	// and what it learned about the server. On error the caller closes
	// rawConn.
	ClientHandshake(ctx context.Context, authority string, rawConn net.Conn) (net.Conn, AuthInfo, error)
	// ServerHandshake secures rawConn, the server side of an accepted
	// connection. The server bounds it with a deadline on rawConn (its
	// ConnectionTimeout) and closes rawConn to abort it (Stop). On
	// error the caller closes rawConn.
	ServerHandshake(rawConn net.Conn) (net.Conn, AuthInfo, error)
	// Info describes the protocol.
	Info() ProtocolInfo
	// Clone returns an independent copy.
	Clone() TransportCredentials
	// OverrideServerName sets the name a client verifies the server
	// against.
	//
	// Deprecated: set the name when building the credentials (or use
	// rpc.WithAuthority); kept for grpc-go compatibility.
	OverrideServerName(string) error
}

// PerRPCCredentials add authentication metadata to each call.
type PerRPCCredentials interface {
	// GetRequestMetadata returns the metadata to send with a call. ctx is
	// the call's context (RequestInfoFromContext gives the method and
	// the connection's AuthInfo); uri is "https://authority/package.Service".
	// An error fails the call: with its status when it is a status
	// error, UNAUTHENTICATED otherwise.
	GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error)
	// RequireTransportSecurity reports whether the metadata may only be
	// sent over a connection with PrivacyAndIntegrity (TLS); elsewhere
	// the call fails with UNAUTHENTICATED before anything is sent.
	RequireTransportSecurity() bool
}

// RequestInfo describes the call a PerRPCCredentials is asked for.
type RequestInfo struct {
	// Method is the full method name, "/package.Service/Method".
	Method string
	// AuthInfo is what the handshake of the call's connection learned.
	AuthInfo AuthInfo
}

type requestInfoKey struct{}

// NewContextWithRequestInfo returns ctx carrying ri. The rpc package
// calls it before GetRequestMetadata; tests of PerRPCCredentials may too.
func NewContextWithRequestInfo(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// RequestInfoFromContext returns the RequestInfo of a GetRequestMetadata
// call's ctx.
func RequestInfoFromContext(ctx context.Context) (RequestInfo, bool) {
	ri, ok := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri, ok
}

// ErrInsufficientSecurity is wrapped by CheckSecurityLevel's errors.
var ErrInsufficientSecurity = errors.New("credentials: insufficient security level")

// CheckSecurityLevel checks that ai's connection offers at least level.
// A nil ai fails; an AuthInfo without a CommonAuthInfo, or with
// InvalidSecurityLevel, passes (as in grpc-go).
func CheckSecurityLevel(ai AuthInfo, level SecurityLevel) error {
	if ai == nil {
		return fmt.Errorf("%w: no AuthInfo (a connection without transport credentials)", ErrInsufficientSecurity)
	}
	ci, ok := ai.(interface{ GetCommonAuthInfo() CommonAuthInfo })
	if !ok {
		return nil
	}
	got := ci.GetCommonAuthInfo().SecurityLevel
	if got != InvalidSecurityLevel && got < level {
		return fmt.Errorf("%w: the connection has %v, %v is required", ErrInsufficientSecurity, got, level)
	}
	return nil
}
