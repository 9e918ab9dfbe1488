// Package transport carries gRPC streams over HTTP/2 connections.
//
// A connection is served by three goroutines: a reader that parses frames
// and hands HEADERS and DATA to their streams, one loopyWriter (package
// controlbuf) that is the only code writing to the socket, and, when
// keepalive is on, a keepalive goroutine. Application goroutines never write
// frames: they queue items on the connection's controlbuf.Buffer.
//
// ClientTransport and ServerTransport are the seams the RPC layer (package
// rpc) uses; http2Client and http2Server implement them.
//
// The transport imports the leaf packages rpc/codes, rpc/status and
// rpc/metadata for the error and metadata types it hands upward; those
// packages know nothing of transports.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// ErrConnClosing is returned for work attempted on a connection that is
// closing or closed. Errors that wrap it satisfy errors.Is(err, ErrConnClosing).
var ErrConnClosing = errors.New("transport: the connection is closing")

// ConnectionError is a connection-fatal error: the connection it happened on
// is closed (with GOAWAY carrying Code where a frame could still be sent).
type ConnectionError struct {
	// Code is the HTTP/2 error code sent or received in GOAWAY.
	Code http2.ErrCode
	// Desc says what went wrong.
	Desc string
	// Err is the underlying cause, if any (for example a socket error).
	Err error

	socket bool // the socket failed: no frame can be sent any more
}

func (e *ConnectionError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("transport: connection error: %s (%v): %v", e.Desc, e.Code, e.Err)
	}
	return fmt.Sprintf("transport: connection error: %s (%v)", e.Desc, e.Code)
}

// Unwrap returns the underlying cause.
func (e *ConnectionError) Unwrap() error { return e.Err }

// connError builds a ConnectionError.
func connError(code http2.ErrCode, format string, args ...any) *ConnectionError {
	return &ConnectionError{Code: code, Desc: fmt.Sprintf(format, args...)}
}

// CallHdr carries what a client needs to open a stream.
type CallHdr struct {
	// Method is the full method name, "/package.Service/Method".
	Method string
	// Host overrides the :authority of the connection when set.
	Host string
	// ContentSubtype is the codec name after "application/grpc+"; empty
	// means plain "application/grpc".
	ContentSubtype string
	// SendCompress names the compressor of request messages, sent as
	// grpc-encoding; empty means none.
	SendCompress string
	// AcceptCompress lists the encodings the client can decompress,
	// sent as grpc-accept-encoding; empty means none announced.
	AcceptCompress string
	// Metadata is sent as custom request headers.
	Metadata metadata.MD
	// PreviousAttempts, when above 0, is sent as
	// grpc-previous-rpc-attempts: the number of earlier attempts of the
	// same RPC (gRFC A6 retries).
	PreviousAttempts int
}

// WriteOptions control one Write.
type WriteOptions struct {
	// Last ends the writer's half of the stream with this write.
	Last bool
	// OnDone, if set, is called once loopy has written all the bytes, so
	// the caller may reuse the buffers. Until then they must not change.
	OnDone func()
}

// GoAwayReason says why a peer sent GOAWAY.
type GoAwayReason int

const (
	// GoAwayNone means no GOAWAY was received.
	GoAwayNone GoAwayReason = iota
	// GoAwayNoReason is a GOAWAY with NO_ERROR or another code that needs
	// no special handling.
	GoAwayNoReason
	// GoAwayTooManyPings is a GOAWAY with ENHANCE_YOUR_CALM and the debug
	// data "too_many_pings": the client should double its keepalive time.
	GoAwayTooManyPings
)

// ClientTransport is the client side of one HTTP/2 connection.
type ClientTransport interface {
	// NewStream opens a stream and queues its request headers. When the
	// peer's MAX_CONCURRENT_STREAMS is reached it first waits, in order,
	// for a stream slot, honouring ctx: a call whose ctx is done leaves
	// with ctx's status, having queued nothing.
	NewStream(ctx context.Context, hdr *CallHdr) (*ClientStream, error)
	// Close closes the connection at once; open streams fail with err.
	Close(err error)
	// GracefulClose stops new streams, lets open streams finish, then
	// closes the connection.
	GracefulClose()
	// Done is closed when the connection is closed or broken.
	Done() <-chan struct{}
	// GoAway is closed when the peer sends GOAWAY.
	GoAway() <-chan struct{}
	// GoAwayReason reports the reason of the peer's GOAWAY and its debug data.
	GoAwayReason() (GoAwayReason, string)
	// Watch registers goAway, called once when the connection stops
	// taking new streams for good (GOAWAY received or the connection
	// closed), and closed, called once after the connection closed. An
	// event that already happened calls its function at once. Unlike
	// waiting on GoAway and Done, it needs no goroutine per connection.
	Watch(goAway, closed func())
	// Err reports why the connection closed, once Done is closed.
	Err() error
	// RemoteAddr is the peer's address.
	RemoteAddr() net.Addr
	// LocalAddr is our address.
	LocalAddr() net.Addr
	// AuthInfo is what the transport credentials' handshake learned
	// about the server; nil without transport credentials.
	AuthInfo() credentials.AuthInfo
}

// ServerTransport is the server side of one HTTP/2 connection.
type ServerTransport interface {
	// HandleStreams reads the connection until it closes, calling handle
	// for each new stream on the reader goroutine: handle must hand the
	// stream to a goroutine (or worker) of its own and return at once. It
	// returns when the connection is done.
	HandleStreams(ctx context.Context, handle func(*ServerStream))
	// Close closes the connection at once.
	Close(err error)
	// Drain starts a graceful close: a two-step GOAWAY, then the
	// connection closes once open streams are done.
	Drain(reason string)
	// Done is closed when the connection is closed.
	Done() <-chan struct{}
	// RemoteAddr is the peer's address.
	RemoteAddr() net.Addr
	// LocalAddr is our address.
	LocalAddr() net.Addr
	// AuthInfo is what the transport credentials' handshake learned
	// about the client (ServerConfig.AuthInfo).
	AuthInfo() credentials.AuthInfo
}
