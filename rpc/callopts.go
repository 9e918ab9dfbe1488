package rpc

import (
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/peer"
)

// Default message size limits.
const (
	// DefaultMaxRecvMsgSize is the largest message received, after
	// decompression, unless raised: 4 MiB, as in gRPC.
	DefaultMaxRecvMsgSize = 4 << 20
	// DefaultMaxSendMsgSize is the largest message sent unless lowered.
	DefaultMaxSendMsgSize = 1<<31 - 1
)

// CallOption configures one call (Invoke or NewStream).
type CallOption interface {
	apply(*callInfo)
}

// callInfo is what the call options of one call add up to.
type callInfo struct {
	header         *metadata.MD
	trailer        *metadata.MD
	recvCompressed *bool
	compressor     string
	maxRecv        int
	maxSend        int
	waitForReady   bool
	set            callInfoSet // which options were set, for the service config
	contentSubtype string
	creds          credentials.PerRPCCredentials // PerRPCCredentials; nil without
	peer           *peer.Peer                    // Peer; nil without
}

// callInfoSet records the call options a call (or WithDefaultCallOptions)
// set, where a service config must not override them or must take the
// smaller value.
type callInfoSet uint8

const (
	setWaitForReady callInfoSet = 1 << iota
	setMaxRecv
	setMaxSend
)

type callOptionFunc func(*callInfo)

func (f callOptionFunc) apply(ci *callInfo) { f(ci) }

// Header stores the server's header metadata in *md once the call has it.
func Header(md *metadata.MD) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.header = md })
}

// Trailer stores the server's trailer metadata in *md when the call ends.
func Trailer(md *metadata.MD) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.trailer = md })
}

// UseCompressor compresses request messages with the named compressor
// (registered in package codec, for example "gzip"), announced in the
// request's grpc-encoding header. On a stream, SetMessageCompression on
// the stream's Context() sends some messages uncompressed.
func UseCompressor(name string) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.compressor = name })
}

// MaxCallRecvMsgSize sets the largest response message the call accepts,
// after decompression. A service config's maxResponseMessageBytes lowers
// it, never raises it.
func MaxCallRecvMsgSize(n int) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.maxRecv, ci.set = n, ci.set|setMaxRecv })
}

// MaxCallSendMsgSize sets the largest request message the call sends. A
// service config's maxRequestMessageBytes lowers it, never raises it.
func MaxCallSendMsgSize(n int) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.maxSend, ci.set = n, ci.set|setMaxSend })
}

// WaitForReady makes the call wait for a connection instead of failing
// at once with UNAVAILABLE while the channel is not ready. It wins over a
// service config's waitForReady.
func WaitForReady(wait bool) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.waitForReady, ci.set = wait, ci.set|setWaitForReady })
}

// CallContentSubtype selects the codec by its content subtype (the part
// after "application/grpc+"), for example "proto" or "json".
func CallContentSubtype(subtype string) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.contentSubtype = subtype })
}

// StaticMethod marks a call whose method name is a compile-time constant
// (generated code passes it). It changes nothing today; it exists so that
// generated code and metrics can tell such calls apart.
func StaticMethod() CallOption {
	return callOptionFunc(func(*callInfo) {})
}

// PerRPCCredentials adds credentials whose metadata this call sends, after
// those of the channel's WithPerRPCCredentials. When they
// RequireTransportSecurity and the connection the call is given is not
// secure (PrivacyAndIntegrity, as TLS), the call fails with
// UNAUTHENTICATED before anything is sent.
func PerRPCCredentials(creds credentials.PerRPCCredentials) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.creds = creds })
}

// Peer fills *p with the connection the call used (the server's address,
// ours, and the handshake's AuthInfo) as soon as the call is given one,
// so also when the call fails after that.
func Peer(p *peer.Peer) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.peer = p })
}
