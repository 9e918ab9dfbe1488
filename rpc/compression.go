package rpc

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Compression is chosen per stream and applied per message. The stream's
// encoding (grpc-encoding) names the one algorithm its compressed messages
// use; each message's prefix then says whether that message is compressed
// (gRPC over HTTP2, "Compressed-Flag"), so one stream may mix compressed
// and uncompressed messages.
//
// The encoding of a client's requests is chosen with the UseCompressor
// call option. A server answers in the encoding of the request by default;
// a handler may choose another one with SetSendCompressor, among those the
// client accepts (ClientSupportedCompressors).
//
// Every message sent on a stream with an encoding is compressed unless
// SetMessageCompression turned that off; RecvCompressed and the
// ResponseCompressed call option tell whether a received message arrived
// compressed.

// msgFlags is the per-message compression state of one stream, shared by
// the functions below through the stream's context. The sending and the
// receiving side may run on different goroutines.
type msgFlags struct {
	sendPlain      atomic.Bool // SetMessageCompression(false): send uncompressed
	recvCompressed atomic.Bool // the last message received was compressed
}

// msgFlagsKey keys a stream's *msgFlags in its context: a server handler's
// context or a ClientStream's. The innermost stream wins, so a client
// stream opened with a handler's context has its own.
type msgFlagsKey struct{}

func withMsgFlags(ctx context.Context, f *msgFlags) context.Context {
	return context.WithValue(ctx, msgFlagsKey{}, f)
}

func msgFlagsFrom(ctx context.Context) *msgFlags {
	f, _ := ctx.Value(msgFlagsKey{}).(*msgFlags)
	return f
}

// SetMessageCompression turns compression of the messages sent after it
// on the stream of ctx on (the default) or off, so one stream may send some
// messages compressed and others not. It changes nothing on a stream
// without an encoding (the messages of such a stream are never
// compressed), and it does not change the stream's grpc-encoding header.
//
// ctx is a server handler's context (for a streaming handler,
// stream.Context()) or a client stream's Context(); a unary client call
// compresses its request according to UseCompressor alone. The setting
// applies from the next SendMsg (for a unary handler, to its response). It
// fails with INTERNAL when ctx is neither.
func SetMessageCompression(ctx context.Context, enabled bool) error {
	f := msgFlagsFrom(ctx)
	if f == nil {
		return status.Error(codes.Internal, "rpc: SetMessageCompression: not a server handler's or a client stream's context")
	}
	f.sendPlain.Store(!enabled)
	return nil
}

// RecvCompressed reports whether the message last received on the stream
// of ctx had its compressed flag set: for a unary handler, the request;
// for a streaming handler or a client stream, the message the last
// successful RecvMsg returned. It is false before any message and when
// ctx is neither a server handler's context nor a client stream's
// Context(). For the response of a unary call, use the ResponseCompressed
// call option.
func RecvCompressed(ctx context.Context) bool {
	f := msgFlagsFrom(ctx)
	return f != nil && f.recvCompressed.Load()
}

// ResponseCompressed stores in *compressed, after each response message
// the call receives, whether that message had its compressed flag set.
// For a unary call, *compressed tells about the response once the call
// returns without error.
func ResponseCompressed(compressed *bool) CallOption {
	return callOptionFunc(func(ci *callInfo) { ci.recvCompressed = compressed })
}

// SetSendCompressor makes the server compress the response messages of the
// RPC of a handler's ctx with the named compressor (registered in package
// codec), announcing it in the response's grpc-encoding header; "" or
// "identity" sends them uncompressed. Without it, a server answers in the
// encoding of the request.
//
// It must be called before the response headers are sent (by SendHeader
// or the first response message) and fails with INTERNAL afterwards, when
// ctx is not a handler's context, or when the compressor is not
// registered. It fails with INVALID_ARGUMENT when the client did not
// announce it accepts name: neither its grpc-accept-encoding nor the
// encoding of its request lists it.
func SetSendCompressor(ctx context.Context, name string) error {
	st, ok := ctx.Value(serverStreamKey{}).(*serverStream)
	if !ok {
		return status.Error(codes.Internal, "rpc: SetSendCompressor: not a server handler's context")
	}
	var comp codec.Compressor
	if name != "" && name != codec.Identity {
		comp = codec.GetCompressor(name)
		if comp == nil {
			return status.Errorf(codes.Internal, "rpc: SetSendCompressor: compressor %q is not registered", name)
		}
		if !st.clientAccepts(name) {
			return status.Errorf(codes.InvalidArgument, "rpc: SetSendCompressor: the client does not accept compressor %q", name)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.headerSent {
		return status.Error(codes.Internal, "rpc: SetSendCompressor after the headers were sent")
	}
	st.sendComp = comp
	if comp == nil {
		name = ""
	}
	st.s.SetSendCompress(name)
	return nil
}

// ClientSupportedCompressors returns the compressors the client of a
// handler's ctx accepts for responses: those of its grpc-accept-encoding
// header, in its order, then its request's encoding if that is not among
// them. It fails with INTERNAL when ctx is not a handler's context.
func ClientSupportedCompressors(ctx context.Context) ([]string, error) {
	st, ok := ctx.Value(serverStreamKey{}).(*serverStream)
	if !ok {
		return nil, status.Error(codes.Internal, "rpc: ClientSupportedCompressors: not a server handler's context")
	}
	return st.clientCompressors(), nil
}

// clientCompressors lists what the client accepts, as
// ClientSupportedCompressors documents.
func (st *serverStream) clientCompressors() []string {
	var out []string
	for _, n := range strings.Split(st.s.AcceptCompress(), ",") {
		if n = strings.TrimSpace(n); n != "" && n != codec.Identity {
			out = append(out, n)
		}
	}
	if enc := st.s.RecvCompress(); enc != "" && enc != codec.Identity && !containsString(out, enc) {
		out = append(out, enc)
	}
	return out
}

// clientAccepts reports whether the client accepts responses compressed
// with name.
func (st *serverStream) clientAccepts(name string) bool {
	return containsString(st.clientCompressors(), name)
}
