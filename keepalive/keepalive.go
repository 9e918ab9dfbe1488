// Package keepalive holds the keepalive configuration of h2rpc connections
// and the machinery that applies it: the client and server ping loops, the
// server's connection idle and age limits, and the ping-strike enforcement of
// the server's policy on client pings.
//
// The behaviour follows the gRPC "Keepalive" document (A8 client-side
// keepalive, A9 server-side connection management) and matches grpc-go's
// defaults, so h2rpc peers and grpc-go peers agree on what is acceptable.
//
// The package knows nothing about HTTP/2 frames: a transport feeds it reads
// through an [Activity] and pings through an [Enforcer], and it acts on the
// connection through the narrow [ClientConn] and [ServerConn] interfaces.
package keepalive

import "errors"

// ErrKeepaliveTimeout is wrapped by the error given to ClientConn.Close and
// ServerConn.Close when a keepalive PING was not followed by any read from the
// peer within the configured Timeout.
var ErrKeepaliveTimeout = errors.New("keepalive: no activity within timeout after ping")

// ErrMaxConnectionAge is wrapped by the error given to ServerConn.Close when
// the connection outlived MaxConnectionAge plus MaxConnectionAgeGrace.
var ErrMaxConnectionAge = errors.New("keepalive: max connection age and grace period expired")

// TooManyPingsDebugData is the debug data of the GOAWAY ENHANCE_YOUR_CALM a
// server sends when a client pinged more often than the enforcement policy
// permits. A client receiving it should switch to
// [ClientParameters.Backoff].
const TooManyPingsDebugData = "too_many_pings"

// Reasons passed to ServerConn.Drain.
const (
	// DrainMaxIdle: the connection had no active stream for MaxConnectionIdle.
	DrainMaxIdle = "max_idle"
	// DrainMaxAge: the connection reached MaxConnectionAge.
	DrainMaxAge = "max_age"
)
