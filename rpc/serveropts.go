package rpc

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
)

// ServerOption configures a Server.
type ServerOption interface {
	apply(*serverOptions)
}

type serverOptionFunc func(*serverOptions)

func (f serverOptionFunc) apply(o *serverOptions) { f(o) }

// serverOptions is what the options of NewServer add up to.
type serverOptions struct {
	tlsConfig         *tls.Config
	maxStreams        uint32
	maxRecv           int
	maxSend           int
	keepalive         keepalive.ServerParameters
	keepalivePolicy   keepalive.EnforcementPolicy
	windowSize        uint32
	connWindowSize    uint32
	readBufferSize    int
	writeBufferSize   int
	writeQuota        int32
	connWriteBudget   int64
	maxHeaderListSize uint32
	connTimeout       time.Duration
	unaryInts         []UnaryServerInterceptor
	streamInts        []StreamServerInterceptor
	logger            *slog.Logger
}

// DefaultConnectionTimeout bounds a new connection's TLS handshake and
// HTTP/2 preface.
const DefaultConnectionTimeout = 120 * time.Second

func defaultServerOptions() serverOptions {
	return serverOptions{
		maxRecv:     DefaultMaxRecvMsgSize,
		maxSend:     DefaultMaxSendMsgSize,
		connTimeout: DefaultConnectionTimeout,
		logger:      slog.Default(),
	}
}

// Creds serves TLS with cfg (ALPN "h2" is added); without it the server
// speaks plaintext HTTP/2 with prior knowledge (h2c).
func Creds(cfg *tls.Config) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.tlsConfig = cfg })
}

// MaxConcurrentStreams sets the streams each connection may have open at
// once (announced in SETTINGS and enforced), which also bounds running
// handlers per connection. The default is finite (1000).
func MaxConcurrentStreams(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxStreams = n })
}

// MaxRecvMsgSize sets the largest request message accepted, after
// decompression (4 MiB by default).
func MaxRecvMsgSize(n int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxRecv = n })
}

// MaxSendMsgSize sets the largest response message sent.
func MaxSendMsgSize(n int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxSend = n })
}

// KeepaliveParams sets server pings and connection idle and age limits.
func KeepaliveParams(p keepalive.ServerParameters) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.keepalive = p })
}

// KeepaliveEnforcementPolicy sets how often clients may ping.
func KeepaliveEnforcementPolicy(p keepalive.EnforcementPolicy) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.keepalivePolicy = p })
}

// InitialWindowSize fixes the per-stream receive window and turns
// BDP-based window growth off.
func InitialWindowSize(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.windowSize = n })
}

// InitialConnWindowSize fixes the connection receive window and turns
// BDP-based window growth off.
func InitialConnWindowSize(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.connWindowSize = n })
}

// ReadBufferSize sizes the pooled buffer each connection reads into while
// data keeps coming (default 32 KiB; an idle connection holds 512 bytes).
func ReadBufferSize(n int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.readBufferSize = n })
}

// WriteBufferSize sizes each connection writer's batch buffer (default
// 32 KiB; taken from a pool while writing, none while idle).
func WriteBufferSize(n int) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.writeBufferSize = n })
}

// WriteQuota bounds the bytes each stream may have queued for its
// connection's writer but not yet written (default 1 MiB): a send past it
// blocks until earlier messages are written. A lower quota bounds the
// memory of many streams to slow clients, at some cost in streaming
// throughput.
func WriteQuota(n int32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.writeQuota = n })
}

// ConnWriteBudget bounds the bytes all the streams of one connection
// together may have queued for its writer but not yet written to the
// socket (default 32 MiB, transport.DefaultConnWriteBudget): a send past
// it blocks, honouring the call's context, until the writer catches up,
// first come first served across the streams. It bounds the memory a
// client that grants no flow-control window, or never reads its socket,
// can make one connection hold (the budget plus one message). 0 keeps
// the default.
func ConnWriteBudget(n int64) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.connWriteBudget = n })
}

// MaxHeaderListSize bounds the request header lists accepted.
func MaxHeaderListSize(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxHeaderListSize = n })
}

// ConnectionTimeout bounds a new connection's TLS handshake and preface.
func ConnectionTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.connTimeout = d })
}

// UnaryInterceptor adds a unary server interceptor; interceptors run in
// the order they were added, the first outermost.
func UnaryInterceptor(i UnaryServerInterceptor) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.unaryInts = append(o.unaryInts, i) })
}

// ChainUnaryInterceptor adds several unary server interceptors.
func ChainUnaryInterceptor(is ...UnaryServerInterceptor) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.unaryInts = append(o.unaryInts, is...) })
}

// StreamInterceptor adds a stream server interceptor; interceptors run in
// the order they were added, the first outermost.
func StreamInterceptor(i StreamServerInterceptor) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.streamInts = append(o.streamInts, i) })
}

// ChainStreamInterceptor adds several stream server interceptors.
func ChainStreamInterceptor(is ...StreamServerInterceptor) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.streamInts = append(o.streamInts, is...) })
}

// Logger sets the server's logger (handler panics, connection errors).
func Logger(l *slog.Logger) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.logger = l })
}
