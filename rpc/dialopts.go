package rpc

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// DialOption configures a ClientConn.
type DialOption interface {
	apply(*dialOptions)
}

type dialOptionFunc func(*dialOptions)

func (f dialOptionFunc) apply(o *dialOptions) { f(o) }

// dialOptions is what the options of NewClient add up to.
type dialOptions struct {
	creds              credentials.TransportCredentials
	perRPCCreds        []credentials.PerRPCCredentials
	authority          string
	userAgent          string
	dialer             func(ctx context.Context, addr string) (net.Conn, error)
	keepalive          keepalive.ClientParameters
	windowSize         uint32
	connWindowSize     uint32
	readBufferSize     int
	writeBufferSize    int
	writeQuota         int32
	tcpKeepalive       time.Duration
	maxHeaderListSize  uint32
	headerBlockTimeout time.Duration
	backoff            BackoffConfig
	minConnectTimeout  time.Duration
	unaryInts          []UnaryClientInterceptor
	streamInts         []StreamClientInterceptor
	callOptions        []CallOption
	logger             *slog.Logger
	connWriteBudget    int64
	channel            channelOptions
	svcCfg             svcConfigOptions // methodconfig.go, retry.go
}

func defaultDialOptions() dialOptions {
	return dialOptions{
		backoff:           DefaultBackoffConfig,
		minConnectTimeout: DefaultMinConnectTimeout,
		logger:            slog.Default(),
		channel:           defaultChannelOptions(),
	}
}

// WithTransportCredentials sets the credentials that secure every
// connection of the channel: credentials.NewTLS (and its helpers) for
// TLS, insecure.NewCredentials() for plaintext HTTP/2 with prior
// knowledge (h2c). A client must set them: there is no default
// (NewClient fails with ErrNoTransportSecurity). The TLS
// server name is the channel's authority (WithAuthority, or the target's
// host, or the address's resolver.Address.ServerName) unless the
// credentials fix one.
func WithTransportCredentials(creds credentials.TransportCredentials) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.creds = creds })
}

// WithPerRPCCredentials adds credentials whose metadata every call of the
// channel sends (after those of earlier WithPerRPCCredentials options,
// and before a call's own PerRPCCredentials). Credentials that
// RequireTransportSecurity make NewClient fail when the transport
// credentials are insecure (ErrCredentialsRequireTransportSecurity).
func WithPerRPCCredentials(creds credentials.PerRPCCredentials) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.perRPCCreds = append(o.perRPCCreds, creds) })
}

// WithAuthority sets the :authority of requests and the name TLS
// verifies the server against, on every connection of the channel. By
// default it is an address's resolver.Address.ServerName on that
// address's connection, else the target's endpoint ("localhost" for
// Unix sockets), as in grpc-go.
func WithAuthority(a string) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.authority = a })
}

// WithUserAgent prepends ua to the user-agent header.
func WithUserAgent(ua string) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.userAgent = ua })
}

// WithContextDialer replaces the TCP dialer.
func WithContextDialer(d func(ctx context.Context, addr string) (net.Conn, error)) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.dialer = d })
}

// WithKeepaliveParams turns client keepalive pings on.
func WithKeepaliveParams(p keepalive.ClientParameters) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.keepalive = p })
}

// WithInitialWindowSize fixes the per-stream receive window and turns
// BDP-based window growth off.
func WithInitialWindowSize(n uint32) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.windowSize = n })
}

// WithInitialConnWindowSize fixes the connection receive window and turns
// BDP-based window growth off.
func WithInitialConnWindowSize(n uint32) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.connWindowSize = n })
}

// WithReadBufferSize sizes the pooled buffer the connection reads into
// while data keeps coming (default 32 KiB; an idle connection holds 512
// bytes).
func WithReadBufferSize(n int) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.readBufferSize = n })
}

// WithWriteBufferSize sizes the connection writer's batch buffer
// (default 32 KiB; taken from a pool while writing, none while idle).
func WithWriteBufferSize(n int) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.writeBufferSize = n })
}

// WithWriteQuota bounds the bytes each call's stream may have queued for
// the connection's writer but not yet written (default 1 MiB): a send
// past it blocks until earlier messages are written. A lower quota bounds
// the memory of many streams to slow servers, at some cost in streaming
// throughput.
func WithWriteQuota(n int32) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.writeQuota = n })
}

// WithConnWriteBudget bounds the bytes all the calls on one connection
// together may have queued for its writer but not yet written to the
// socket (default 32 MiB, transport.DefaultConnWriteBudget): a send past
// it blocks, honouring the call's context, until the writer catches up,
// first come first served across the calls. It bounds the memory a
// server that grants no flow-control window, or never reads its socket,
// can make one connection hold (the budget plus one message). 0 keeps
// the default.
func WithConnWriteBudget(n int64) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.connWriteBudget = n })
}

// WithTCPKeepalive sets the idle time after which the OS probes the
// connection's TCP socket with keepalives, and their interval (default
// 15 s, transport.DefaultTCPKeepalive); a negative d turns OS keepalive
// off. It applies to the TCP socket under any dialer, WithContextDialer's
// too. (When keepalive pings are on, the socket's TCP_USER_TIMEOUT is
// also set to their Timeout.)
func WithTCPKeepalive(d time.Duration) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.tcpKeepalive = d })
}

// WithMaxHeaderListSize bounds the response header lists accepted (decoded
// size, RFC 9113 §6.5.2); the default is transport.DefaultMaxHeaderListSize
// (16 KiB). A call whose response headers or trailers are over it fails
// with RESOURCE_EXHAUSTED and the connection carries on; a header block
// over max(1 MiB, 4n) encoded closes the connection.
func WithMaxHeaderListSize(n uint32) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.maxHeaderListSize = n })
}

// WithHeaderBlockTimeout bounds the time from a response HEADERS frame
// without END_HEADERS to the CONTINUATION frame that ends its header
// block (default 10 s, transport.DefaultHeaderBlockTimeout): nothing else
// may be read on the connection meanwhile, so a server slower than that
// is disconnected with GOAWAY ENHANCE_YOUR_CALM. A negative value sets no
// limit.
func WithHeaderBlockTimeout(d time.Duration) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.headerBlockTimeout = d })
}

// WithBackoff replaces the reconnect backoff.
func WithBackoff(bc BackoffConfig) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.backoff = bc })
}

// ConnectParams are the reconnect parameters of WithConnectParams, as
// grpc-go's of the same name.
type ConnectParams struct {
	// Backoff is the backoff between failed connection attempts.
	Backoff BackoffConfig
	// MinConnectTimeout is the least time one connection attempt gets
	// (DefaultMinConnectTimeout when 0).
	MinConnectTimeout time.Duration
}

// WithConnectParams sets the reconnect backoff and the least time one
// connection attempt gets. A zero Backoff field keeps its default.
func WithConnectParams(p ConnectParams) DialOption {
	return dialOptionFunc(func(o *dialOptions) {
		bc, def := p.Backoff, DefaultBackoffConfig
		if bc.BaseDelay == 0 {
			bc.BaseDelay = def.BaseDelay
		}
		if bc.Multiplier == 0 {
			bc.Multiplier = def.Multiplier
		}
		if bc.MaxDelay == 0 {
			bc.MaxDelay = def.MaxDelay
		}
		o.backoff = bc
		o.minConnectTimeout = p.MinConnectTimeout
		if o.minConnectTimeout == 0 {
			o.minConnectTimeout = DefaultMinConnectTimeout
		}
	})
}

// WithMinConnectTimeout sets the least time one connection attempt gets.
func WithMinConnectTimeout(d time.Duration) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.minConnectTimeout = d })
}

// WithUnaryInterceptor adds a unary client interceptor; interceptors run
// in the order they were added, the first outermost.
func WithUnaryInterceptor(i UnaryClientInterceptor) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.unaryInts = append(o.unaryInts, i) })
}

// WithChainUnaryInterceptor adds several unary client interceptors.
func WithChainUnaryInterceptor(is ...UnaryClientInterceptor) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.unaryInts = append(o.unaryInts, is...) })
}

// WithStreamInterceptor adds a stream client interceptor; interceptors
// run in the order they were added, the first outermost.
func WithStreamInterceptor(i StreamClientInterceptor) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.streamInts = append(o.streamInts, i) })
}

// WithChainStreamInterceptor adds several stream client interceptors.
func WithChainStreamInterceptor(is ...StreamClientInterceptor) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.streamInts = append(o.streamInts, is...) })
}

// WithDefaultCallOptions applies opts to every call before the call's own.
func WithDefaultCallOptions(opts ...CallOption) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.callOptions = append(o.callOptions, opts...) })
}

// WithLogger sets the logger of the connection and its transports.
func WithLogger(l *slog.Logger) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.logger = l })
}
