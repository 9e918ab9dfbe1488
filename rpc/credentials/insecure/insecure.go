// Package insecure provides plaintext TransportCredentials: HTTP/2 with
// prior knowledge (h2c), no encryption, no authentication. Clients must
// ask for it explicitly, with
// rpc.WithTransportCredentials(insecure.NewCredentials()).
package insecure

import (
	"context"
	"net"

	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// NewCredentials returns credentials that leave connections plaintext.
// Their AuthInfo reports NoSecurity, so per-RPC credentials that require
// transport security refuse to run over them.
func NewCredentials() credentials.TransportCredentials { return insecureTC{} }

type insecureTC struct{}

func (insecureTC) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, info{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (insecureTC) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, info{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (insecureTC) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}

func (insecureTC) Clone() credentials.TransportCredentials { return insecureTC{} }

func (insecureTC) OverrideServerName(string) error { return nil }

// info is the AuthInfo of a plaintext connection.
type info struct {
	credentials.CommonAuthInfo
}

// AuthType returns "insecure".
func (info) AuthType() string { return "insecure" }
