package rpc

import (
	"log/slog"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/tap"
)

// ServerOption configures a Server.
type ServerOption interface {
	apply(*serverOptions)
}

type serverOptionFunc func(*serverOptions)

func (f serverOptionFunc) apply(o *serverOptions) { f(o) }

// serverOptions is what the options of NewServer add up to.
type serverOptions struct {
	creds              credentials.TransportCredentials
	maxStreams         uint32
	maxRecv            int
	maxSend            int
	keepalive          keepalive.ServerParameters
	keepalivePolicy    keepalive.EnforcementPolicy
	windowSize         uint32
	connWindowSize     uint32
	readBufferSize     int
	writeBufferSize    int
	writeQuota         int32
	tcpKeepalive       time.Duration
	maxHeaderListSize  uint32
	connTimeout        time.Duration
	prefaceTimeout     time.Duration
	headerBlockTimeout time.Duration
	unaryInts          []UnaryServerInterceptor
	streamInts         []StreamServerInterceptor
	logger             *slog.Logger
	connWriteBudget    int64
	unknownStream      *StreamDesc
	waitForHandlers    bool
	inTap              tap.ServerInHandle
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

// Creds sets the credentials that secure every accepted connection, for
// example credentials.NewTLS or credentials.NewServerTLSFromFile; their
// handshake runs within ConnectionTimeout. Without Creds the server
// speaks plaintext HTTP/2 with prior knowledge (h2c), and handlers see a
// nil peer AuthInfo; insecure.NewCredentials() is the same plaintext with
// an AuthInfo of NoSecurity.
func Creds(c credentials.TransportCredentials) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.creds = c })
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

// TCPKeepalive sets the idle time after which the OS probes each
// accepted connection's TCP socket with keepalives, and their interval
// (default 15 s, transport.DefaultTCPKeepalive); a negative d turns OS
// keepalive off. (Unless server keepalive pings are turned off, the
// socket's TCP_USER_TIMEOUT is also set to their Timeout.)
func TCPKeepalive(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.tcpKeepalive = d })
}

// MaxHeaderListSize bounds the request header lists accepted (decoded size,
// RFC 9113 §6.5.2); the default is transport.DefaultMaxHeaderListSize
// (16 KiB). A request whose headers or trailers are over it fails with
// RESOURCE_EXHAUSTED and the connection carries on; a header block over
// max(1 MiB, 4n) encoded closes the connection.
func MaxHeaderListSize(n uint32) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.maxHeaderListSize = n })
}

// ConnectionTimeout bounds a new connection's TLS handshake, HTTP/2
// preface and first SETTINGS frame together (default 120 s, as grpc-go);
// PrefaceTimeout bounds the last two more tightly.
func ConnectionTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.connTimeout = d })
}

// PrefaceTimeout bounds the time a new connection's client has, after the
// TLS handshake (or the accept, in plaintext), to send the HTTP/2 client
// preface and its first SETTINGS frame (default 10 s,
// transport.DefaultPrefaceTimeout); a client slower than that is
// disconnected.
func PrefaceTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.prefaceTimeout = d })
}

// HeaderBlockTimeout bounds the time from a HEADERS frame without
// END_HEADERS to the CONTINUATION frame that ends its header block
// (default 10 s, transport.DefaultHeaderBlockTimeout): nothing else may
// be read on the connection meanwhile, so a client slower than that is
// disconnected with GOAWAY ENHANCE_YOUR_CALM. A negative value sets no
// limit.
func HeaderBlockTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.headerBlockTimeout = d })
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

// UnknownServiceHandler sets a handler for RPCs to services or methods
// that are not registered, instead of failing them with UNIMPLEMENTED (the
// default, without this option): a proxy, or a server that forwards what
// it does not know. The handler runs as a bidirectional streaming method
// whose srv is nil; the stream interceptors run around it, and
// rpc.Method(stream.Context()) names the method called. The error it
// returns is the RPC's status. Messages are decoded with the codec the
// request's content-type names, so a proxy that passes messages through
// as bytes registers a codec (codec.RegisterCodec) that does so.
func UnknownServiceHandler(streamHandler StreamHandler) ServerOption {
	return serverOptionFunc(func(o *serverOptions) {
		o.unknownStream = &StreamDesc{
			StreamName:    "unknown_service_handler",
			Handler:       streamHandler,
			ServerStreams: true,
			ClientStreams: true,
		}
	})
}

// WaitForHandlers makes Stop wait until every running handler has
// returned. By default (false), as in grpc-go, Stop returns once the
// listeners and connections are closed, while handlers that do not
// watch their context may still run. GracefulStop always waits for the
// RPCs in flight, so for their handlers.
func WaitForHandlers(w bool) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.waitForHandlers = w })
}

// InTapHandle sets a hook that admits or refuses each new RPC before its
// handler starts, such as a per-client rate limit: see tap.ServerInHandle.
// It runs on the connection's reader goroutine for every stream, after
// the request headers were checked and before the stream waits for a
// handler slot (MaxConcurrentStreams), so a refusal costs no goroutine
// and no wait. There is none by default; setting it again replaces it.
func InTapHandle(h tap.ServerInHandle) ServerOption {
	return serverOptionFunc(func(o *serverOptions) { o.inTap = h })
}
