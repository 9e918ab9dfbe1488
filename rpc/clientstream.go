package rpc

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// maxTransparentRetries bounds how often an RPC the server never processed
// (refused stream, or above a GOAWAY's last stream id) is retried on a new
// connection without the caller seeing it ("gRPC retry design",
// transparent retry).
const maxTransparentRetries = 3

// cardinalityCode is the code of a cardinality violation: a unary or
// client-streaming response, or a unary or server-streaming request, with
// no message or more than one. We follow the gRPC status-code document
// (statuscodes.md: "Response cardinality violation" on the client,
// "Request cardinality violation" on the server), which says
// UNIMPLEMENTED; grpc-go 1.85 and grpc-java answer INTERNAL instead. Both
// are failures to a peer, so interop is unaffected.
const cardinalityCode = codes.Unimplemented

// unaryDesc describes a unary call to newClientStream.
var unaryDesc = &StreamDesc{}

// Invoke performs a unary RPC: it sends args and fills reply.
func (cc *ClientConn) Invoke(ctx context.Context, method string, args, reply any, opts ...CallOption) error {
	if cc.unaryInt != nil {
		return cc.unaryInt(ctx, method, args, reply, cc, invoke, opts...)
	}
	return invoke(ctx, method, args, reply, cc, opts...)
}

// invoke is the unary call at the end of the interceptor chain.
func invoke(ctx context.Context, method string, req, reply any, cc *ClientConn, opts ...CallOption) error {
	for attempt := 0; ; attempt++ {
		cs, err := newClientStream(ctx, unaryDesc, cc, nil, method, cc.dopts.callOptions, opts...)
		if err != nil {
			return err
		}
		if err := cs.SendMsg(req); err != nil && err != io.EOF {
			return err
		}
		err = cs.RecvMsg(reply)
		if err != nil && cs.s.Unprocessed() && attempt < maxTransparentRetries && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// NewStream begins a streaming RPC described by desc.
func (cc *ClientConn) NewStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
	if cc.streamInt != nil {
		return cc.streamInt(ctx, desc, cc, method, newStream, opts...)
	}
	return newStream(ctx, desc, cc, method, opts...)
}

func newStream(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (ClientStream, error) {
	return newClientStream(ctx, desc, cc, nil, method, cc.dopts.callOptions, opts...)
}

// clientStream is the ClientStream of one call.
type clientStream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	desc     *StreamDesc
	ci       callInfo
	hdr      transport.CallHdr // read by the transport's NewStream only
	codec    codec.Codec
	sendComp codec.Compressor
	s        *transport.ClientStream
	reader   msgReader
	recvComp codec.Compressor
	decided  bool // recvComp is known
	gotMsg   bool // a response message arrived
	flags    msgFlags
	callEnd  callEnd         // reports the attempt's end to the balancer and the idleness count
	rs       *retryState     // nil unless the method has a retry policy (retry.go)
	throttle *retryThrottler // the channel's retry throttling, nil without

	// A stream's context watch (watchCtx); unused by unary calls,
	// which always end in finish on the caller's goroutine.
	watched   bool           // set before the watch starts
	stopWatch func() bool    // read only by the caller's goroutines
	ending    sync.WaitGroup // held by the finish that runs, for those that lose

	mu       sync.Mutex // also guards s while rs is not committed
	finished bool
	sentLast bool
}

var _ ClientStream = (*clientStream)(nil)

// newClientStream opens a call's stream. fixed, when not nil, is the
// transport the stream must use: the channel's picker, method config and
// retries are then left out (NewSubConnStream). defaults are applied
// before opts: the channel's default call options for the application's
// calls, none for the channel's own streams (health checks).
func newClientStream(ctx context.Context, desc *StreamDesc, cc *ClientConn, fixed transport.ClientTransport, method string, defaults []CallOption, opts ...CallOption) (*clientStream, error) {
	// The options apply to the stream's own callInfo: a local one would
	// escape (apply is an interface call) and cost an allocation.
	cs := &clientStream{desc: desc, ci: callInfo{maxRecv: DefaultMaxRecvMsgSize, maxSend: DefaultMaxSendMsgSize}}
	ci := &cs.ci
	for _, o := range defaults {
		o.apply(ci)
	}
	for _, o := range opts {
		o.apply(ci)
	}
	var timeout time.Duration
	var policy *serviceconfig.RetryPolicy
	if sc := cc.serviceConfig(); sc != nil && fixed == nil {
		timeout, policy = cs.applyMethodConfig(sc, method)
		cs.throttle = cc.retryThrottler()
	}
	cs.codec = codec.GetCodec(ci.contentSubtype)
	if cs.codec == nil {
		return nil, status.Errorf(codes.Internal, "rpc: no codec registered for content-subtype %q", ci.contentSubtype)
	}
	if ci.compressor != "" && ci.compressor != "identity" {
		cs.sendComp = codec.GetCompressor(ci.compressor)
		if cs.sendComp == nil {
			return nil, status.Errorf(codes.Internal, "rpc: compressor %q is not registered", ci.compressor)
		}
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	hdr := &cs.hdr
	*hdr = transport.CallHdr{
		Method:         method,
		ContentSubtype: ci.contentSubtype,
		AcceptCompress: codec.AcceptEncodingHeader(),
		Metadata:       md,
	}
	if cs.sendComp != nil {
		hdr.SendCompress = ci.compressor
	}
	switch {
	case desc == unaryDesc && timeout == 0:
		// Nobody sees a unary call's stream context: the caller's
		// context serves, with neither a cancel of its own (finish resets
		// a stream that is still open) nor the msgFlags value
		// (SetMessageCompression cannot reach a unary call).
		cs.ctx, cs.cancel = ctx, noCancel
	case desc == unaryDesc:
		// The method config's timeout; the caller's deadline stays
		// when it is earlier.
		cs.ctx, cs.cancel = context.WithTimeout(ctx, timeout)
	case timeout == 0:
		cs.ctx, cs.cancel = context.WithCancel(withMsgFlags(ctx, &cs.flags))
	default:
		cs.ctx, cs.cancel = context.WithTimeout(withMsgFlags(ctx, &cs.flags), timeout)
	}
	if policy != nil && !cc.dopts.svcCfg.disableRetry {
		cs.startRetries(cc, policy)
	}
	var s *transport.ClientStream
	var err error
	if fixed != nil {
		if err = cs.onTransport(cc, fixed, nil); err == nil {
			s, err = fixed.NewStream(cs.ctx, &cs.hdr)
		}
	} else {
		s, err = cs.newAttempt(cc)
	}
	if err != nil {
		cs.cancel()
		return nil, err
	}
	cs.s = s
	cs.reader.init(s)
	if desc != unaryDesc && fixed == nil {
		cs.watchCtx()
	}
	return cs, nil
}

// watchCtx ends the call when its context ends, so that a stream its
// user abandons (cancels its context and never reads it again) is
// counted out of the channel's idleness, reported to its balancer's
// Done, and gives its retry buffer back. context.AfterFunc runs no
// goroutine until the context ends; finish stops it.
func (cs *clientStream) watchCtx() {
	cs.watched = true
	cs.stopWatch = context.AfterFunc(cs.ctx, cs.ctxDone)
}

// ctxDone is the context watch of watchCtx.
func (cs *clientStream) ctxDone() {
	err := status.FromContextError(cs.ctx.Err()).Err()
	if rs := cs.rs; rs != nil {
		// A call not committed yet ends with its context's status.
		rs.mu.Lock()
		if !rs.committed.Load() {
			rs.fail(err)
		}
		rs.mu.Unlock()
	}
	cs.finishCall(err, true)
}

// newAttempt opens the transport stream of one attempt of the call on a
// transport the channel gives. It is the one place that asks the channel
// for a transport. When the connection began draining or failed between
// picking it and opening the stream (UNAVAILABLE), it takes no new
// streams: the channel stops using it and the attempt picks again.
func (cs *clientStream) newAttempt(cc *ClientConn) (*transport.ClientStream, error) {
	for attempt := 0; ; attempt++ {
		pr, err := cc.pick(cs.ctx, cs.ci.waitForReady, cs.hdr.Method)
		if err != nil {
			return nil, err
		}
		if pr.md != nil {
			md, _ := metadata.FromOutgoingContext(cs.ctx)
			cs.hdr.Metadata = metadata.Join(md, pr.md)
		}
		if err := cs.onTransport(cc, pr.t, pr.md); err != nil {
			pr.finish(err, nil, false)
			return nil, err
		}
		s, err := pr.t.NewStream(cs.ctx, &cs.hdr)
		if err == nil {
			// A retry: the attempt it replaces has ended, for its
			// balancer and for the idleness count.
			if prev := cs.s; prev != nil {
				cs.callEnd.finish(prev.Status().Err(), prev, false)
			}
			cs.callEnd = pr.callEnd
			return s, nil
		}
		pr.finish(err, nil, false)
		// The connection began draining or failed between picking it
		// and opening the stream (UNAVAILABLE): it takes no new
		// streams, so pick again (the pick skips it).
		if status.Code(err) == codes.Unavailable && cs.ctx.Err() == nil && attempt < maxTransparentRetries {
			pr.sc.dropReady(pr.t)
			continue
		}
		if ctxErr := cs.ctx.Err(); ctxErr != nil && status.Code(err) == codes.Unavailable {
			// The caller gave up (or the method's timeout passed)
			// while the connection refused the stream: that is what
			// happened.
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, err
	}
}

// noCancel is the cancel of a unary call's context, which has none.
func noCancel() {}

// Context is the stream's context.
func (cs *clientStream) Context() context.Context { return cs.ctx }

// Header waits for the server's header metadata. When the stream ended
// without headers because it failed, it returns nil and a nil error, as
// grpc-go does: the call's status is RecvMsg's to report.
func (cs *clientStream) Header() (metadata.MD, error) {
	if cs.rs != nil {
		if err := cs.awaitCommit(); err != nil {
			cs.finish(err)
			return nil, nil
		}
	}
	md, err := cs.s.Header()
	if err != nil {
		cs.finish(err)
		return nil, nil
	}
	if cs.ci.header != nil {
		// Once the call is finished, finish fills the option (the
		// context watch may be doing it now, on its own goroutine).
		cs.mu.Lock()
		if !cs.finished {
			*cs.ci.header = md
		}
		cs.mu.Unlock()
	}
	return md, nil
}

// Trailer returns the trailer metadata once the RPC has ended.
func (cs *clientStream) Trailer() metadata.MD { return cs.s.Trailer() }

// CloseSend ends the sending side.
func (cs *clientStream) CloseSend() error {
	cs.mu.Lock()
	if cs.sentLast {
		cs.mu.Unlock()
		return nil
	}
	cs.sentLast = true
	cs.mu.Unlock()
	if cs.rs != nil {
		cs.closeSendRetryable()
		return nil
	}
	// An error means the stream already ended; RecvMsg reports how, as
	// in grpc-go, so CloseSend itself does not fail.
	cs.s.CloseSend()
	return nil
}

// SendMsg sends a message; io.EOF means the stream ended (RecvMsg says
// how). A call that sends one message (unary, server streaming) gets nil
// instead of io.EOF.
func (cs *clientStream) SendMsg(m any) error {
	last := !cs.desc.ClientStreams
	cs.mu.Lock()
	if cs.sentLast {
		cs.mu.Unlock()
		return status.Error(codes.Internal, "rpc: SendMsg after CloseSend")
	}
	cs.sentLast = last
	cs.mu.Unlock()
	comp := cs.sendComp
	if cs.flags.sendPlain.Load() {
		comp = nil
	}
	s := cs.s
	var err error
	if cs.rs != nil && !cs.rs.committed.Load() {
		s, err = cs.sendRetryable(m, comp, last)
	} else {
		err = sendMsg(cs.codec, comp, m, cs.ci.maxSend, func(prefix, data []byte, opts transport.WriteOptions) error {
			opts.Last = last
			return s.Write(prefix, data, opts)
		})
	}
	if err == nil {
		return nil
	}
	select {
	case <-s.Done():
		// The stream is over; RecvMsg returns its status. A call that
		// sends one message reports nothing (as grpc-go): generated
		// code returns SendMsg's error before its user can call
		// RecvMsg, which would give them io.EOF instead of the status.
		if !cs.desc.ClientStreams {
			return nil
		}
		return io.EOF
	default:
	}
	cs.finish(err)
	return err
}

// RecvMsg receives a message into m: io.EOF after a clean end, the status
// error otherwise.
func (cs *clientStream) RecvMsg(m any) error {
	if cs.rs != nil {
		if err := cs.awaitCommit(); err != nil {
			cs.finish(err)
			return err
		}
	}
	if err := cs.decideRecvCompress(); err != nil {
		cs.finish(err)
		return err
	}
	err := cs.reader.recv(cs.codec, cs.recvComp, m, cs.ci.maxRecv)
	if err == errEOF {
		err = cs.end()
		if err == io.EOF && !cs.desc.ServerStreams && !cs.gotMsg {
			// OK without the one response message.
			err = status.Error(cardinalityCode, "rpc: cardinality violation: the server ended a non-server-streaming RPC with OK and no response message")
		}
		return err
	}
	if err != nil {
		cs.finish(err)
		return err
	}
	cs.gotMsg = true
	compressed := cs.reader.p.Compressed()
	cs.flags.recvCompressed.Store(compressed)
	if cs.ci.recvCompressed != nil {
		*cs.ci.recvCompressed = compressed
	}
	if cs.desc.ServerStreams {
		return nil
	}
	// A unary response is one message, then the status.
	err = cs.reader.recv(cs.codec, cs.recvComp, nil, cs.ci.maxRecv)
	if err == errEOF {
		if err := cs.end(); err != io.EOF {
			return err
		}
		return nil
	}
	if err == nil {
		err = status.Error(cardinalityCode, "rpc: cardinality violation: more than one response message for a non-server-streaming RPC")
	}
	cs.finish(err)
	return err
}

// decideRecvCompress resolves the response's grpc-encoding once.
func (cs *clientStream) decideRecvCompress() error {
	if cs.decided {
		return nil
	}
	enc, err := cs.s.RecvCompress()
	if err != nil {
		// The stream failed before headers; reading reports it.
		return nil
	}
	cs.decided = true
	if enc != "" && enc != "identity" {
		cs.recvComp = codec.GetCompressor(enc)
		if cs.recvComp == nil {
			return status.Errorf(codes.Internal, "rpc: the server used unregistered compressor %q", enc)
		}
	}
	return nil
}

// end reports the stream's final status after its last message.
func (cs *clientStream) end() error {
	st := cs.s.Status()
	if st.Code() != codes.OK {
		cs.finish(st.Err())
		return st.Err()
	}
	cs.finish(nil)
	return io.EOF
}

// finish ends the call once: reports header and trailer to call options,
// and resets the stream if it is still open.
func (cs *clientStream) finish(err error) { cs.finishCall(err, false) }

// finishCall is finish; byWatch when the context watch calls it, on a
// goroutine of its own.
func (cs *clientStream) finishCall(err error, byWatch bool) {
	cs.mu.Lock()
	if cs.finished {
		cs.mu.Unlock()
		if cs.watched {
			// The watch may be finishing the call: what it reports
			// (call options, trailer) is written once we return.
			cs.ending.Wait()
		}
		return
	}
	cs.finished = true
	if cs.watched {
		cs.ending.Add(1)
	}
	s := cs.s
	cs.mu.Unlock()
	if cs.watched && !byWatch {
		// Our cancel below must not start the watch.
		cs.stopWatch()
	}
	if cs.rs != nil {
		// Ends the retries first: a retry switching attempts is done
		// once this returns, so s and callEnd are the last attempt's.
		cs.rs.finish()
		s = cs.stream()
	}
	if err != nil {
		s.Close(err)
	}
	var received bool
	if byWatch {
		// The call's own fields belong to its user's goroutine; the
		// stream, closed now, says without waiting whether the
		// response began.
		_, herr := s.RecvCompress()
		received = herr == nil
	} else {
		received = cs.decided || cs.gotMsg
	}
	if cs.ci.header != nil && *cs.ci.header == nil {
		if md, err := s.Header(); err == nil {
			*cs.ci.header = md
		}
	}
	if cs.ci.trailer != nil {
		*cs.ci.trailer = s.Trailer()
	}
	cs.callEnd.finish(err, s, received)
	cs.cancel()
	if err == nil && cs.throttle != nil {
		// Every successful call refills the retry throttling, whatever
		// its method (gRFC A6).
		cs.throttle.success()
	}
	if cs.watched {
		cs.ending.Done()
	}
}
