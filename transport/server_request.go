package transport

// How a request's HEADERS become a ServerStream: the request header
// fields checked and collected, the stream opened with its context
// (deadline, lazily decoded metadata), and the trailers-only answer to a
// request that is refused.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// requestHeaders collects the gRPC request headers of a new stream.
type requestHeaders struct {
	method, scheme, path, authority string
	contentType, timeout            string
	encoding, accept                string
	// md lists the custom metadata fields, as received (a -bin value
	// still in base64, checked already): an MD is built from them only
	// if the handler asks (ServerStream.IncomingMD).
	md        []hpack.HeaderField
	userAgent string
	// contentLength is the request's content-length, or -1 without one
	// (gRPC clients normally send none).
	contentLength int64
	err           error
	// malformed: an undefined or repeated pseudo-header (RFC 9113 §8.3).
	malformed bool
}

// pseudo sets a request pseudo-header, which may appear only once.
func (rq *requestHeaders) pseudo(v *string, value string) {
	if *v != "" {
		rq.malformed = true
	}
	*v = value
}

func (rq *requestHeaders) field(f hpack.HeaderField) {
	switch f.Name {
	case ":method":
		rq.pseudo(&rq.method, f.Value)
	case ":scheme":
		rq.pseudo(&rq.scheme, f.Value)
	case ":path":
		rq.pseudo(&rq.path, f.Value)
	case ":authority":
		rq.pseudo(&rq.authority, f.Value)
	case "content-type":
		rq.contentType = f.Value
	case "grpc-timeout":
		rq.timeout = f.Value
	case "grpc-encoding":
		rq.encoding = f.Value
	case "grpc-accept-encoding":
		rq.accept = f.Value
	case "host":
		if rq.authority == "" {
			rq.authority = f.Value
		}
	case "user-agent":
		// Reserved for senders, but handlers see it, as in grpc-go.
		rq.userAgent = f.Value
	case "content-length":
		// RFC 9113 §8.1.1: the body must be exactly this long. A value
		// that is not a number, or a second one that differs, makes the
		// request malformed.
		n, ok := parseContentLength(f.Value)
		if !ok || rq.contentLength >= 0 && n != rq.contentLength {
			rq.malformed = true
			return
		}
		rq.contentLength = n
	default:
		if f.Name[0] == ':' {
			// RFC 9113 §8.3: an undefined pseudo-header makes the
			// request malformed.
			rq.malformed = true
			return
		}
		if isReservedHeader(f.Name) {
			return
		}
		if err := checkMetadataField(f.Name, f.Value); err != nil && rq.err == nil {
			rq.err = err
		}
		rq.md = append(rq.md, f)
	}
}

// parseContentLength parses a content-length value: decimal digits only
// (RFC 9110 §8.6), small enough for an int64.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// operateHeaders opens a stream for a request, or ends one on trailers.
func (t *http2Server) operateHeaders(b *headerBlock) error {
	id := b.streamID
	if id%2 == 0 {
		return connError(http2.ErrCodeProtocol, "client opened even stream id %d", id)
	}
	if sp := t.lookup(id); sp != nil {
		if sp.recvDone.Load() {
			// RFC 9113 §5.1: half-closed (remote) takes no more HEADERS.
			t.streamError(id, http2.ErrCodeStreamClosed, errors.New("HEADERS after END_STREAM"))
			return nil
		}
		if err := b.blockError(); err != nil {
			// Request trailers over the limit, or malformed: only their
			// stream fails. ENHANCE_YOUR_CALM for a list too large, which
			// a gRPC client reads as RESOURCE_EXHAUSTED, the status of
			// request headers over the limit.
			code := http2.ErrCodeProtocol
			if errors.Is(err, errHeaderListTooLarge) {
				code = http2.ErrCodeEnhanceYourCalm
			}
			t.streamError(id, code, err)
			return nil
		}
		// Request trailers: gRPC sends none, but they end the stream.
		if !b.endStream {
			t.streamError(id, http2.ErrCodeProtocol, errors.New("second HEADERS without END_STREAM"))
			return nil
		}
		if sp.bodyCheck && sp.ss.bodyLeft > 0 {
			t.streamError(id, http2.ErrCodeProtocol, errContentLength)
			return nil
		}
		t.recvEndStream(sp)
		return nil
	}
	t.mu.Lock()
	ignore := t.draining && id > t.goAwayID
	open := uint32(t.streams.len())
	t.mu.Unlock()
	if ignore {
		// RFC 9113 §6.8: streams above our GOAWAY's last id are ignored.
		t.maxSeen.Store(max(id, t.maxSeen.Load()))
		return nil
	}
	if id <= t.maxSeen.Load() {
		if t.cb.RecentlyReset(id) {
			// RFC 9113 §5.1: frames on a stream we reset, which the
			// client may have sent before our RST_STREAM reached it
			// (trailers of a refused request), are ignored; the block
			// was decoded, so the HPACK state is kept.
			return nil
		}
		// RFC 9113 §5.1.1: a new stream's id must be larger than every
		// id the client used; "an endpoint that receives an unexpected
		// stream identifier MUST respond with a connection error of type
		// PROTOCOL_ERROR". A closed stream cannot be told apart from one
		// never opened (implicitly closed by a larger id), so both are
		// treated so, as x/net and grpc-go do.
		return connError(http2.ErrCodeProtocol, "HEADERS opening stream %d, not above the last stream id %d", id, t.maxSeen.Load())
	}
	t.maxSeen.Store(id)
	if err := b.blockError(); err != nil {
		if errors.Is(err, errHeaderListTooLarge) {
			t.earlyAbort(id, 200, status.New(codes.ResourceExhausted, fmt.Sprintf("transport: %v", err)))
			return nil
		}
		t.cb.Put(&controlbuf.ResetStream{StreamID: id, Code: http2.ErrCodeProtocol})
		return nil
	}
	if open+uint32(max(t.ending.Load(), 0)) >= t.maxStreams {
		// RFC 9113 §5.1.2: over the announced limit. Streams count
		// until our END_STREAM or RST_STREAM for them is written:
		// open ones (a handler runs, or answerHTTP waits for the
		// request's end) and finished ones whose trailers wait for
		// loopy.
		t.cb.Put(&controlbuf.ResetStream{StreamID: id, Code: http2.ErrCodeRefusedStream})
		return nil
	}

	rq := requestHeaders{contentLength: -1}
	var mdBuf [4]hpack.HeaderField
	rq.md = mdBuf[:0]
	for _, f := range b.fields {
		rq.field(f)
	}
	if rq.err != nil {
		t.earlyAbort(id, 200, status.New(codes.Internal, fmt.Sprintf("transport: bad request headers: %v", rq.err)))
		return nil
	}
	if rq.malformed || rq.path == "" || rq.method == "" || rq.scheme == "" ||
		b.endStream && rq.contentLength > 0 {
		// RFC 9113 §8.3.1: a malformed request.
		t.cb.Put(&controlbuf.ResetStream{StreamID: id, Code: http2.ErrCodeProtocol})
		return nil
	}
	// Not a gRPC request: a real HTTP answer. The content-type is checked
	// first, as grpc-go does.
	_, ok := contentSubtype(rq.contentType)
	if !ok {
		t.answerHTTP(id, &rq, b.endStream, &answerUnsupportedMediaType,
			status.New(codes.Internal, fmt.Sprintf("transport: invalid gRPC request content-type %q", rq.contentType)))
		return nil
	}
	if rq.method != "POST" {
		t.answerHTTP(id, &rq, b.endStream, &answerMethodNotAllowed,
			status.New(codes.Internal, fmt.Sprintf("transport: method %q is not POST", rq.method)))
		return nil
	}
	var timeout time.Duration
	if rq.timeout != "" {
		d, err := decodeTimeout(rq.timeout)
		if err != nil {
			t.earlyAbort(id, 200, status.New(codes.Internal, fmt.Sprintf("transport: malformed grpc-timeout: %v", err)))
			return nil
		}
		timeout = d
	}

	s := &ServerStream{
		t:           t,
		method:      rq.path,
		contentType: rq.contentType,
		encoding:    rq.encoding,
		accept:      rq.accept,
		authority:   rq.authority,
		scheme:      rq.scheme,
	}
	s.ss = s
	ctx := t.handleCtx
	if ctx == nil {
		ctx = context.Background()
	}
	s.userAgent = rq.userAgent
	if len(rq.md) > 0 {
		s.md = slices.Clone(rq.md)
	}
	ctx = metadata.NewIncomingContextFromSource(ctx, s)
	if rq.timeout != "" {
		ctx, s.cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, s.cancel = context.WithCancel(ctx)
	}
	if t.inTap != nil {
		// InTapHandle (rpc.InTapHandle): admission before the stream
		// takes a handler slot, so that refusing costs no wait.
		tctx, err := t.inTap(ctx, s)
		if err != nil {
			s.cancel()
			t.tapRefused(id, err, b.endStream)
			return nil
		}
		ctx = tctx
	}

	// Wait for a handler slot: a client that resets streams as fast as it
	// opens them (CVE-2023-44487) cannot run more handlers than the
	// stream limit; reading stops until one finishes.
	select {
	case t.slots <- struct{}{}:
	default:
		select {
		case t.slots <- struct{}{}:
		case <-t.done.wait():
			s.cancel()
			return ErrConnClosing
		}
	}

	s.init(&t.http2Conn, ctx, t.streamWindow.Load())
	s.id.Store(id)
	s.ls.Init(id, &s.wq)
	if rq.contentLength >= 0 {
		s.bodyCheck = true
		s.bodyLeft = rq.contentLength
	}

	t.mu.Lock()
	t.streams.set(id, &s.stream)
	t.mu.Unlock()
	s.register = controlbuf.RegisterStream{Stream: &s.ls}
	t.cb.Put(&s.register)
	if b.endStream {
		t.recvEndStream(&s.stream)
	}
	if rq.timeout != "" {
		// At the deadline the client gets DEADLINE_EXCEEDED from its own
		// clock; we reset the stream if it is still open. A timer of our
		// own costs less than watching ctx (context.AfterFunc).
		s.setDeadlineTimer(time.AfterFunc(timeout, s.deadlineExceeded))
	}
	t.handle(s)
	return nil
}

// tapRefused answers a request the InTapHandle refused with err, as
// grpc-go does: a trailers-only response with err's status (or
// PERMISSION_DENIED and err's text when it has none), and RST_STREAM
// NO_ERROR if the request has not ended (endStream false), so that the
// client sends no more of it.
func (t *http2Server) tapRefused(id uint32, err error, endStream bool) {
	st, ok := status.FromError(err)
	if !ok {
		st = status.New(codes.PermissionDenied, err.Error())
	}
	t.logger.Debug("transport: InTapHandle refused a stream", "stream", id, "err", err)
	fields := []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "application/grpc"},
	}
	fields, _ = appendStatus(fields, st)
	t.cb.Put(&controlbuf.EarlyAbort{StreamID: id, Fields: fields, RST: !endStream, Code: http2.ErrCodeNo})
}

// earlyAbort answers a request we will not serve with a trailers-only
// response (HTTP status httpStatus) and resets the stream.
func (t *http2Server) earlyAbort(id uint32, httpStatus int, st *status.Status) {
	fields := []hpack.HeaderField{
		{Name: ":status", Value: fmt.Sprint(httpStatus)},
		{Name: "content-type", Value: "application/grpc"},
	}
	fields, _ = appendStatus(fields, st)
	t.cb.Put(&controlbuf.EarlyAbort{StreamID: id, Fields: fields, RST: true, Code: http2.ErrCodeNo})
}

// IncomingMD returns the request's metadata as a new MD. It implements
// metadata.Source for the stream's context. Besides the custom metadata
// it holds, as grpc-go's incoming metadata does, the request's
// ":authority", "content-type" and "user-agent": a client forwarding the
// MD as outgoing metadata (a proxy) sends none of them, since they are
// the transport's. Unlike grpc-go it leaves grpc-accept-encoding out:
// our client refuses to send grpc- keys as metadata, so forwarding it
// would fail the call.
func (s *ServerStream) IncomingMD() metadata.MD {
	md := make(metadata.MD, len(s.md)+len(visibleRequestHeaders))
	for _, k := range visibleRequestHeaders {
		if v := s.visibleHeader(k); v != "" {
			md[k] = []string{v}
		}
	}
	for _, f := range s.md {
		// Checked when the headers arrived: no error here.
		_ = decodeMetadataField(md, f.Name, f.Value)
	}
	return md
}

// visibleRequestHeaders are the request headers, reserved for the
// protocol, that handlers see in their incoming metadata, as in grpc-go.
var visibleRequestHeaders = [...]string{":authority", "content-type", "user-agent"}

// visibleHeader returns the value of one of visibleRequestHeaders in the
// request, or "" (also for any other key).
func (s *ServerStream) visibleHeader(key string) string {
	switch key {
	case ":authority":
		return s.authority
	case "content-type":
		return s.contentType
	case "user-agent":
		return s.userAgent
	}
	return ""
}

// IncomingValues returns the values of the lower-case key in the
// request's metadata, or nil. It implements metadata.Source.
func (s *ServerStream) IncomingValues(key string) []string {
	switch key {
	case ":authority", "content-type", "user-agent":
		if v := s.visibleHeader(key); v != "" {
			return []string{v}
		}
		return nil
	}
	var md metadata.MD
	for _, f := range s.md {
		if f.Name != key {
			continue
		}
		if md == nil {
			md = make(metadata.MD, 1)
		}
		_ = decodeMetadataField(md, f.Name, f.Value)
	}
	return md[key]
}
