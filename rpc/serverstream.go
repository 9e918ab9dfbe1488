package rpc

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/internal/peerkey"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// serverStream is the ServerStream handlers see.
type serverStream struct {
	ctx      context.Context // &sctx
	sctx     streamContext
	s        *transport.ServerStream
	srv      *Server
	codec    codec.Codec
	recvComp codec.Compressor // the request's grpc-encoding; nil for identity
	reader   msgReader
	recvd    int  // messages received
	oneReq   bool // the method takes exactly one request message
	flags    msgFlags

	mu         sync.Mutex       // guards what follows
	sendComp   codec.Compressor // for responses; nil for identity
	headerSent bool             // SendHeader or SendMsg ran: the encoding is fixed
}

// serverStreamKey keys the serverStream in a handler's context, for
// SetHeader, SendHeader and SetTrailer.
type serverStreamKey struct{}

var _ ServerStream = (*serverStream)(nil)

// newServerStream negotiates codec and compression for ss. On failure it
// returns the status to end the stream with.
func (s *Server) newServerStream(ss *transport.ServerStream) (*serverStream, *status.Status) {
	c := codec.GetCodec(ss.ContentSubtype())
	if c == nil {
		return nil, status.Newf(codes.Internal, "rpc: no codec registered for content-subtype %q", ss.ContentSubtype())
	}
	st := &serverStream{s: ss, srv: s, codec: c}
	if enc := ss.RecvCompress(); enc != "" && enc != "identity" {
		comp := codec.GetCompressor(enc)
		if comp == nil {
			// gRPC "Compression": UNIMPLEMENTED, naming what we accept.
			ss.SetAcceptCompress(codec.AcceptEncodingHeader())
			return nil, status.Newf(codes.Unimplemented, "rpc: compressor %q is not installed (grpc-encoding)", enc)
		}
		st.recvComp = comp
		// Answer in kind: the client can decompress what it sent.
		st.sendComp = comp
		ss.SetSendCompress(enc)
	}
	st.reader.init(ss)
	st.sctx = streamContext{Context: ss.Context(), st: st}
	st.ctx = &st.sctx
	return st, nil
}

// streamContext is a handler's context: the transport stream's context
// with the serverStream (serverStreamKey), its msgFlags (msgFlagsKey)
// and the connection's *peer.Peer (peerkey.Key, for peer.FromContext)
// as values. It is one value in the serverStream rather than two
// context.WithValue layers. Done, Err and Deadline are the embedded
// context's, so the context package still sees the cancelCtx beneath it
// and derived contexts need no goroutine.
type streamContext struct {
	context.Context
	st *serverStream
}

func (c *streamContext) Value(key any) any {
	switch key.(type) {
	case serverStreamKey:
		return c.st
	case msgFlagsKey:
		return &c.st.flags
	case transportStreamKey:
		// A pointer in an interface: no allocation.
		return (*transportStream)(c.st)
	case peerkey.Key:
		// One Peer per connection: no allocation per RPC.
		return c.st.s.Peer()
	}
	return c.Context.Value(key)
}

func (c *streamContext) String() string { return "rpc.serverStreamContext" }

// Context is the RPC's context.
func (st *serverStream) Context() context.Context { return st.ctx }

// SetHeader adds header metadata.
func (st *serverStream) SetHeader(md metadata.MD) error { return st.s.SetHeader(md) }

// SendHeader sends the header metadata now.
func (st *serverStream) SendHeader(md metadata.MD) error {
	st.mu.Lock()
	st.headerSent = true
	st.mu.Unlock()
	return st.s.WriteHeader(md)
}

// SetTrailer adds trailer metadata.
func (st *serverStream) SetTrailer(md metadata.MD) { st.s.SetTrailer(md) }

// SendMsg encodes and sends a response message, compressed when the
// stream has an encoding and SetMessageCompression did not turn that off.
func (st *serverStream) SendMsg(m any) error {
	st.mu.Lock()
	comp := st.sendComp
	st.headerSent = true
	st.mu.Unlock()
	if st.flags.sendPlain.Load() {
		comp = nil
	}
	return sendMsg(st.codec, comp, m, st.srv.opts.maxSend, st.s.Write)
}

// RecvMsg receives and decodes a request message; io.EOF when the client
// is done. For a method that takes one request (unary, server-streaming)
// it also waits for the client to end its side after that message, and
// fails (cardinalityCode) if the client sent none or more than one.
func (st *serverStream) RecvMsg(m any) error {
	err := st.reader.recv(st.codec, st.recvComp, m, st.srv.opts.maxRecv)
	if err == nil {
		st.recvd++
		st.flags.recvCompressed.Store(st.reader.p.Compressed())
		if st.oneReq && st.recvd == 1 {
			return st.recvEnd()
		}
		return nil
	}
	if err == errEOF && st.oneReq && st.recvd == 0 {
		// The client ended its side without the one request message.
		return status.Error(cardinalityCode, "rpc: cardinality violation: the client sent no request message for a non-client-streaming RPC")
	}
	return err
}

// recvEnd reads what follows the one request of a method that takes one:
// the end of the client's side, or else a cardinality violation.
func (st *serverStream) recvEnd() error {
	err := st.reader.recv(st.codec, st.recvComp, nil, st.srv.opts.maxRecv)
	switch err {
	case errEOF:
		return nil
	case nil:
		st.recvd++
		return status.Error(cardinalityCode, "rpc: cardinality violation: the client sent more than one request message for a non-client-streaming RPC")
	}
	return err
}

// SetHeader adds header metadata to the RPC of a handler's ctx, sent
// with the first response message, by SendHeader or with the status. It
// uses the ServerTransportStream ctx carries. An empty md is a no-op, as
// in grpc-go.
func SetHeader(ctx context.Context, md metadata.MD) error {
	if md.Len() == 0 {
		return nil
	}
	sts := ServerTransportStreamFromContext(ctx)
	if sts == nil {
		return status.Error(codes.Internal, "rpc: SetHeader: not a server handler's context")
	}
	return sts.SetHeader(md)
}

// SendHeader sends header metadata for the RPC of a handler's ctx now,
// with what SetHeader added. It uses the ServerTransportStream ctx
// carries.
func SendHeader(ctx context.Context, md metadata.MD) error {
	sts := ServerTransportStreamFromContext(ctx)
	if sts == nil {
		return status.Error(codes.Internal, "rpc: SendHeader: not a server handler's context")
	}
	return sts.SendHeader(md)
}

// SetTrailer adds trailer metadata to the RPC of a handler's ctx, sent
// with the status. It uses the ServerTransportStream ctx carries. An
// empty md is a no-op, as in grpc-go.
func SetTrailer(ctx context.Context, md metadata.MD) error {
	if md.Len() == 0 {
		return nil
	}
	sts := ServerTransportStreamFromContext(ctx)
	if sts == nil {
		return status.Error(codes.Internal, "rpc: SetTrailer: not a server handler's context")
	}
	return sts.SetTrailer(md)
}

// Method returns the full method name, "/package.Service/Method", of the
// RPC of a handler's ctx (that of the ServerTransportStream ctx carries),
// and false if ctx is not an RPC's.
func Method(ctx context.Context) (string, bool) {
	sts := ServerTransportStreamFromContext(ctx)
	if sts == nil {
		return "", false
	}
	return sts.Method(), true
}

// processUnary runs a unary method.
func (s *Server) processUnary(ss *transport.ServerStream, svc *service, md *MethodDesc) {
	st, fail := s.newServerStream(ss)
	if fail != nil {
		ss.WriteStatus(fail)
		return
	}
	st.oneReq = true
	reply, err := s.runUnary(st, svc, md)
	if err == nil {
		err = st.SendMsg(reply)
	}
	ss.WriteStatus(statusOf(err))
}

// runUnary calls a unary handler, turning a panic into INTERNAL as guard
// does (without guard's closure: a unary call is the hot path).
func (s *Server) runUnary(st *serverStream, svc *service, md *MethodDesc) (reply any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(st.s, r)
		}
	}()
	return md.Handler(svc.impl, st.ctx, st.RecvMsg, s.unaryInt)
}

// processStream runs a streaming method of impl (nil for the
// UnknownServiceHandler).
func (s *Server) processStream(ss *transport.ServerStream, impl any, sd *StreamDesc) {
	st, fail := s.newServerStream(ss)
	if fail != nil {
		ss.WriteStatus(fail)
		return
	}
	st.oneReq = !sd.ClientStreams
	err := s.guard(ss, func() error {
		if s.streamInt != nil {
			info := &StreamServerInfo{FullMethod: ss.Method(), IsClientStream: sd.ClientStreams, IsServerStream: sd.ServerStreams}
			return s.streamInt(impl, st, info, sd.Handler)
		}
		return sd.Handler(impl, st)
	})
	ss.WriteStatus(statusOf(err))
}

// guard runs a handler, turning a panic into INTERNAL for that RPC only.
func (s *Server) guard(ss *transport.ServerStream, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(ss, r)
		}
	}()
	return f()
}

// panicked logs a handler's panic r and returns the RPC's error.
func (s *Server) panicked(ss *transport.ServerStream, r any) error {
	s.opts.logger.Error("rpc: handler panicked", "method", ss.Method(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "rpc: handler panicked: %v", r)
}

// statusOf is the status a handler's error ends its RPC with.
func statusOf(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	return status.Convert(err)
}
