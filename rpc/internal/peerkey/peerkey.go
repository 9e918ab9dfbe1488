// Package peerkey holds the context key of package peer, so that the
// server's stream context can answer it without a context.WithValue
// layer per RPC.
package peerkey

// Key is the context key of a *peer.Peer.
type Key struct{}
