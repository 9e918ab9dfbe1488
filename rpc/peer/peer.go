// Package peer tells who is at the other end of an RPC: the addresses of
// its connection and what the transport credentials' handshake learned
// (AuthInfo, for TLS a credentials.TLSInfo).
//
// On a server, FromContext works on every handler's and interceptor's
// context. On a client, the rpc.Peer call option fills a Peer with the
// connection the call used.
package peer

import (
	"context"
	"fmt"
	"net"

	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/internal/peerkey"
)

// Peer is the other end of an RPC's connection.
type Peer struct {
	// Addr is the peer's address.
	Addr net.Addr
	// LocalAddr is our address on the connection.
	LocalAddr net.Addr
	// AuthInfo is what the handshake learned about the peer; nil on a
	// server without transport credentials.
	AuthInfo credentials.AuthInfo
}

// String describes the peer for logs.
func (p *Peer) String() string {
	if p == nil {
		return "Peer<nil>"
	}
	s := fmt.Sprintf("Peer{Addr: '%v', LocalAddr: '%v'", p.Addr, p.LocalAddr)
	if p.AuthInfo != nil {
		s += ", AuthInfo: '" + p.AuthInfo.AuthType() + "'"
	}
	return s + "}"
}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Peer) context.Context {
	return context.WithValue(ctx, peerkey.Key{}, p)
}

// FromContext returns the peer of ctx. On a server the Peer is shared by
// all the RPCs of a connection: read it, do not modify it.
func FromContext(ctx context.Context) (*Peer, bool) {
	p, ok := ctx.Value(peerkey.Key{}).(*Peer)
	return p, ok && p != nil
}
