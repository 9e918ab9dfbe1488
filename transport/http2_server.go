package transport

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/peer"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Server defaults.
const (
	// DefaultMaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS a
	// server announces. grpc-go announces no limit; an unbounded number of
	// streams (and handler goroutines) per connection is a denial-of-service
	// hazard, so we pick a finite one that still allows wide fan-in.
	DefaultMaxConcurrentStreams = 1000

	// drainPingTimeout bounds the wait for the PING ack that ends step one
	// of a graceful GOAWAY.
	drainPingTimeout = 5 * time.Second
)

// ServerConfig configures a server connection.
type ServerConfig struct {
	// MaxConcurrentStreams is announced to the client and enforced; it
	// also bounds running handlers. 0 means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// Keepalive and KeepalivePolicy configure server pings, connection
	// age and idleness, and ping-flood enforcement.
	Keepalive       keepalive.ServerParameters
	KeepalivePolicy keepalive.EnforcementPolicy
	// InitialWindowSize and InitialConnWindowSize set fixed receive
	// windows and turn BDP window growth off; 0 keeps the dynamic default.
	InitialWindowSize     uint32
	InitialConnWindowSize uint32
	// ReadBufferSize is the size of the pooled buffer the connection's
	// reader uses while data keeps coming (DefaultReadBufferSize when 0),
	// WriteBufferSize that of loopy's write buffer (DefaultWriteBufferSize
	// when 0).
	ReadBufferSize  int
	WriteBufferSize int
	// WriteQuota bounds the bytes one stream may have queued for the
	// connection's writer but not yet written; a Write past it blocks
	// until the writer catches up. 0 means DefaultWriteQuota (1 MiB).
	// Lower it to bound the memory of many streams whose peers read
	// slowly, at some cost in streaming throughput.
	WriteQuota int32
	// ConnWriteBudget bounds the bytes all the streams of the connection
	// together may have queued for the writer but not yet written to the
	// socket; a Write past it blocks, honouring its context, until the
	// writer catches up. 0 means DefaultConnWriteBudget (32 MiB). It
	// bounds the memory a peer that grants no window, or never reads,
	// can make the connection hold.
	ConnWriteBudget int64
	// MaxHeaderListSize bounds received header lists.
	MaxHeaderListSize uint32
	// PrefaceTimeout bounds the wait for the client preface and the
	// client's first SETTINGS frame, from the start of the transport;
	// past it the connection is closed. 0 means DefaultPrefaceTimeout
	// (10 s). The transport owns the connection's read deadline.
	PrefaceTimeout time.Duration
	// HeaderBlockTimeout bounds the time from a HEADERS frame without
	// END_HEADERS to the end of its header block; past it the connection
	// is closed with GOAWAY. 0 means DefaultHeaderBlockTimeout (10 s), a
	// negative value no limit.
	HeaderBlockTimeout time.Duration
	// TCPKeepalive is the idle time before the OS probes the TCP
	// connection with keepalives, and their interval: 0 means
	// DefaultTCPKeepalive, a negative value turns OS keepalive off.
	TCPKeepalive time.Duration
	// Logger receives transport logs; slog.Default() when nil.
	Logger *slog.Logger
	// InTapHandle, when set, admits or refuses each new request stream
	// before a handler runs for it (rpc.InTapHandle). It runs on the
	// reader goroutine, once the request headers were checked and before
	// the stream waits for a handler slot, so it must be quick: ctx is
	// the stream's context (metadata, deadline), and the context it
	// returns, derived from ctx, is the one the handler gets. An error
	// refuses the stream with a trailers-only response: the error's
	// status, or PERMISSION_DENIED with its text if it has none (as
	// grpc-go), then RST_STREAM(NO_ERROR) if the client's side is still
	// open. Other streams of the connection carry on.
	InTapHandle func(ctx context.Context, s *ServerStream) (context.Context, error)
	// AuthInfo is what the transport credentials' handshake (run by the
	// caller before NewServerTransport) learned about the client; every
	// stream's Peer carries it. nil without transport credentials.
	AuthInfo credentials.AuthInfo

	// answerLinger overrides answeredLinger (tests).
	answerLinger time.Duration
}

// http2Server is the server side of an HTTP/2 connection.
type http2Server struct {
	http2Conn
	maxStreams uint32
	slots      chan struct{} // one per running handler
	enforcer   *keepalive.Enforcer

	maxSeen    atomic.Uint32 // largest client stream id seen
	handle     func(*ServerStream)
	handleCtx  context.Context
	draining   bool   // guarded by mu: a final GOAWAY was queued
	goAwayID   uint32 // guarded by mu: last stream id of the final GOAWAY
	drainOnce  sync.Once
	drainDebug string
	drainTimer *time.Timer             // guarded by mu: Drain's wait for the PING ack; stopped on close
	idleSince  atomic.Int64            // unix nanos when the last stream closed
	kp         *keepalive.ServerTimers // guarded by mu; nil without keepalive
	// ending counts streams that left streams (their handler finished)
	// whose trailers loopy has not written yet: until then the client
	// sees them open, so they still count toward MAX_CONCURRENT_STREAMS
	// (RFC 9113 §5.1.2). endWritten and endOrphaned, made once per
	// connection, are the trailers' callbacks that count them out.
	ending      atomic.Int32
	endWritten  func()
	endOrphaned func(error)
	// answerLinger is how long a stream answered by answerHTTP waits for
	// the rest of its request once the answer is out.
	answerLinger time.Duration
	// inTap is ServerConfig.InTapHandle.
	inTap func(ctx context.Context, s *ServerStream) (context.Context, error)
	// peer is the Peer of every stream of the connection: one per
	// connection, so that handlers get it without an allocation per RPC.
	peer *peer.Peer
}

// NewServerTransport runs the server side of HTTP/2 on conn: it reads
// the client preface (with a timeout) and sends our SETTINGS. A *tls.Conn
// must have completed its handshake and negotiated "h2".
func NewServerTransport(conn net.Conn, cfg ServerConfig) (ServerTransport, error) {
	return newHTTP2Server(conn, cfg)
}

func newHTTP2Server(conn net.Conn, cfg ServerConfig) (*http2Server, error) {
	if err := setTCPOptions(conn, cfg.TCPKeepalive, serverUserTimeout(cfg.Keepalive)); err != nil {
		conn.Close()
		return nil, err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			conn.Close()
			return nil, fmt.Errorf("transport: client negotiated ALPN protocol %q, want \"h2\"", p)
		}
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	t := &http2Server{
		maxStreams: cfg.MaxConcurrentStreams,
		slots:      make(chan struct{}, cfg.MaxConcurrentStreams),
		enforcer:   keepalive.NewEnforcer(cfg.KeepalivePolicy),

		answerLinger: cmp.Or(cfg.answerLinger, answeredLinger),
		inTap:        cfg.InTapHandle,
	}
	t.endWritten = func() { t.ending.Add(-1) }
	t.endOrphaned = func(error) { t.ending.Add(-1) }
	cc := connConfig{
		readBufferSize:     cfg.ReadBufferSize,
		writeBufferSize:    cfg.WriteBufferSize,
		writeQuota:         cfg.WriteQuota,
		maxHeaderListSize:  cfg.MaxHeaderListSize,
		streamWindow:       cfg.InitialWindowSize,
		connWindow:         cfg.InitialConnWindowSize,
		headerBlockTimeout: cfg.HeaderBlockTimeout,
		logger:             cfg.Logger,
		connWriteBudget:    cfg.ConnWriteBudget,
		// Every DATA frame we send forgives the client's ping strikes:
		// a receiving client pings (BDP, keepalive) once per round trip,
		// and a single message may take many round trips to send.
		onDataWritten: t.enforcer.Reset,
	}
	cc.fill()
	t.init(t, false, conn, &cc)
	t.authInfo = cfg.AuthInfo
	t.peer = &peer.Peer{Addr: conn.RemoteAddr(), LocalAddr: conn.LocalAddr(), AuthInfo: cfg.AuthInfo}
	t.idleSince.Store(time.Now().UnixNano())

	// RFC 9113 §3.4: the client preface comes first, then its SETTINGS
	// (read by the reader, which clears the deadline).
	if cfg.PrefaceTimeout <= 0 {
		cfg.PrefaceTimeout = DefaultPrefaceTimeout
	}
	t.tl.startPreface(cfg.PrefaceTimeout)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(t.br, preface); err != nil {
		conn.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %w", ErrPrefaceTimeout, err)
		}
		return nil, fmt.Errorf("transport: reading the client preface: %w", err)
	}
	if !bytes.Equal(preface, []byte(http2.ClientPreface)) {
		conn.Close()
		return nil, fmt.Errorf("transport: bad client preface %q", preface)
	}

	ss, inc := t.initialSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: t.maxStreams})
	if err := writePreamble(conn, false, ss, inc); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: writing server SETTINGS: %w", err)
	}
	t.startLoopy()
	if kp := cfg.Keepalive.Effective(); kp.MaxConnectionIdle != keepalive.Infinity || kp.MaxConnectionAge != keepalive.Infinity || kp.Time != keepalive.Infinity {
		// Timers, not a goroutine: an idle connection stays cheap.
		// closeAllStreams stops them; if the connection closed already
		// (loopy failed), it found none to stop.
		timers := keepalive.StartServerTimers(kp, &t.act, serverKeepalive{t})
		t.mu.Lock()
		t.kp = timers
		t.mu.Unlock()
		if t.closing.Load() {
			timers.Stop()
		}
	}
	return t, nil
}

// serverKeepalive adapts the server to keepalive.ServerConn.
type serverKeepalive struct{ t *http2Server }

func (k serverKeepalive) ActiveStreams() int { return k.t.activeStreams() }
func (k serverKeepalive) Ping()              { k.t.Ping() }
func (k serverKeepalive) Drain(reason string) {
	k.t.Drain(reason)
}
func (k serverKeepalive) IdleSince() time.Time { return time.Unix(0, k.t.idleSince.Load()) }
func (k serverKeepalive) Close(err error) {
	k.t.close(&ConnectionError{Code: http2.ErrCodeNo, Desc: "keepalive", Err: err})
}

// HandleStreams reads the connection until it closes, calling handle for
// each new stream on the reader goroutine: handle must start the handler
// on a goroutine (or a worker) of its own and return at once. It returns
// once the connection is closed and its loopy and keepalive goroutines
// are gone.
func (t *http2Server) HandleStreams(ctx context.Context, handle func(*ServerStream)) {
	t.handle = handle
	if ctx == nil {
		ctx = context.Background()
	}
	// The connection's peer is in every stream's context from the start,
	// the InTapHandle's included (as in grpc-go): admission may be per
	// client.
	t.handleCtx = peer.NewContext(ctx, t.peer)
	err := t.readLoop()
	t.fatal(err)
	<-t.loopyDone.wait()
	t.mu.Lock()
	kp := t.kp
	t.mu.Unlock()
	if kp != nil {
		<-kp.Done()
	}
}

// Close closes the connection at once.
func (t *http2Server) Close(err error) {
	if err == nil {
		err = ErrConnClosing
	}
	t.close(err)
}

// Drain starts a graceful close (gRPC "graceful shutdown"): a GOAWAY with
// the largest stream id and a PING; when the PING is acknowledged (or
// after a timeout) the real GOAWAY names the last stream processed, open
// streams finish, and the connection closes.
func (t *http2Server) Drain(reason string) {
	t.drainOnce.Do(func() {
		t.drainDebug = reason
		t.cb.Put(&controlbuf.GoAway{Code: http2.ErrCodeNo, HeadsUp: true, DebugData: []byte(reason)})
		timer := time.AfterFunc(drainPingTimeout, t.finalGoAway)
		t.mu.Lock()
		t.drainTimer = timer
		t.mu.Unlock()
		if t.closing.Load() {
			// The connection closed meanwhile: closeAllStreams may
			// have run before the timer was set.
			timer.Stop()
		}
	})
}

// finalGoAway sends step two of a graceful GOAWAY, once.
func (t *http2Server) finalGoAway() {
	t.mu.Lock()
	if t.draining {
		t.mu.Unlock()
		return
	}
	t.draining = true
	t.goAwayID = t.maxSeen.Load()
	id := t.goAwayID
	t.mu.Unlock()
	t.cb.Put(&controlbuf.GoAway{Code: http2.ErrCodeNo, LastStreamID: id, DebugData: []byte(t.drainDebug)})
}

func (t *http2Server) maxStreamID() uint32 { return t.maxSeen.Load() }

func (t *http2Server) handlePing(ack bool, data [8]byte) error {
	if ack {
		if data == controlbuf.GoAwayPing {
			t.finalGoAway()
		}
		return nil
	}
	if t.enforcer.OnPing(time.Now(), t.activeStreams()) {
		return connError(http2.ErrCodeEnhanceYourCalm, keepalive.TooManyPingsDebugData)
	}
	t.cb.Put(&controlbuf.Ping{Ack: true, Data: data})
	return nil
}

func (t *http2Server) handleGoAway(goAwayFrame) error {
	// The client is going away: finish what is open, accept nothing new.
	t.Drain("client_goaway")
	return nil
}

// ServerStream is one RPC's stream on a server connection.
type ServerStream struct {
	stream
	t      *http2Server
	method string
	cancel context.CancelFunc
	// contentType is the request's content-type, valid for gRPC; the
	// codec's subtype is parsed from it when asked (ContentSubtype)
	// rather than kept beside it, which would take the stream into the
	// allocator's next size class.
	contentType string
	encoding    string // the client's grpc-encoding
	accept      string // the client's grpc-accept-encoding
	authority   string
	scheme      string

	mu           sync.Mutex // guards what follows
	sendCompress string     // grpc-encoding of responses
	acceptComp   string     // grpc-accept-encoding to announce
	header       metadata.MD
	trailer      metadata.MD
	headerSent   bool
	statusSent   bool

	// Items handed to loopy once each, kept here so that a stream
	// allocates nothing for them: register by operateHeaders, headers by
	// the first writeHeaderLocked (headerSent), and trailers and cleanup
	// by finish, after it won the finished flag.
	register controlbuf.RegisterStream
	headers  controlbuf.HeaderFrame
	// fieldsBuf holds the header fields of the response headers and then
	// of the trailers, which usually fit: fieldsBuf[:fieldsUsed] belongs
	// to the queued headers, the rest to the trailers. Guarded by mu.
	fieldsBuf  [8]hpack.HeaderField
	fieldsUsed int
	trailers   controlbuf.HeaderFrame
	cleanup    controlbuf.CleanupStream

	// md is the request's custom metadata as received (see
	// requestHeaders.md), and userAgent its user-agent, which handlers
	// see as metadata too (see IncomingMD); read-only once the handler
	// has the stream.
	md        []hpack.HeaderField
	userAgent string

	// answered marks a stream that runs no handler: a request that is
	// not gRPC, answered by answerHTTP; answerOut that the answer was
	// written (see answerWritten).
	answered  bool
	answerOut atomic.Bool

	// bodyLeft is how many bytes of request body its content-length
	// still announces, -1 when there is none; used only when bodyCheck
	// is set, by the reader goroutine (see checkRequestBody).
	bodyLeft int64
}

// errStreamDone is what reads of a stream fail with once its handler sent
// the status.
var errStreamDone = status.Error(codes.Canceled, "transport: the stream is done")

// Method is the full method name, "/package.Service/Method".
func (s *ServerStream) Method() string { return s.method }

// Peer is the client of the stream's connection: its address, ours, and
// the handshake's AuthInfo. It is shared by all the streams of the
// connection and must not be modified.
func (s *ServerStream) Peer() *peer.Peer { return s.t.peer }

// ContentSubtype is the request's codec name ("" for plain application/grpc).
func (s *ServerStream) ContentSubtype() string {
	sub, _ := contentSubtype(s.contentType)
	return sub
}

// RecvCompress is the client's grpc-encoding.
func (s *ServerStream) RecvCompress() string { return s.encoding }

// AcceptCompress is the client's grpc-accept-encoding.
func (s *ServerStream) AcceptCompress() string { return s.accept }

// Authority is the request's :authority.
func (s *ServerStream) Authority() string { return s.authority }

// Scheme is the request's :scheme, "http" or "https".
func (s *ServerStream) Scheme() string { return s.scheme }

// SetHeader adds md to the response headers; it fails once they are sent.
func (s *ServerStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headerSent || s.statusSent {
		return status.Error(codes.Internal, "transport: SetHeader after the headers were sent")
	}
	s.header = metadata.Join(s.header, md)
	return nil
}

// SetTrailer adds md to the trailers.
func (s *ServerStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statusSent {
		return status.Error(codes.Internal, "transport: SetTrailer after the status was sent")
	}
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// WriteHeader sends the response headers (with md added) if they were not
// sent yet.
func (s *ServerStream) WriteHeader(md metadata.MD) error {
	s.mu.Lock()
	if s.headerSent || s.statusSent {
		s.mu.Unlock()
		return status.Error(codes.Internal, "transport: headers already sent")
	}
	s.header = metadata.Join(s.header, md)
	err := s.writeHeaderLocked()
	s.mu.Unlock()
	return err
}

// writeHeaderLocked queues the response headers. Caller holds s.mu.
func (s *ServerStream) writeHeaderLocked() error {
	if s.finished.Load() {
		return s.failure()
	}
	s.headerSent = true
	fields := s.fieldsLocked(5 + s.header.Len())
	fields = s.appendResponseHeadersLocked(fields)
	s.keepFieldsLocked(fields)
	s.t.enforcer.Reset()
	s.headers = controlbuf.HeaderFrame{Stream: &s.ls, Fields: fields}
	return s.t.cb.Put(&s.headers)
}

// fieldsLocked returns an empty slice for a header list of about n fields:
// the unused part of the stream's fieldsBuf when n fits there, a new
// array otherwise. Caller holds s.mu.
func (s *ServerStream) fieldsLocked(n int) []hpack.HeaderField {
	if free := s.fieldsBuf[s.fieldsUsed:]; n <= len(free) {
		return free[:0:len(free)]
	}
	return make([]hpack.HeaderField, 0, n)
}

// keepFieldsLocked records that the response headers' fields, handed to
// loopy, occupy the start of fieldsBuf if they still lie there (append
// moved them elsewhere if they outgrew it): the trailers take what
// follows. Caller holds s.mu.
func (s *ServerStream) keepFieldsLocked(fields []hpack.HeaderField) {
	if s.fieldsUsed == 0 && len(fields) > 0 && &fields[0] == &s.fieldsBuf[0] {
		s.fieldsUsed = len(fields)
	}
}

// appendResponseHeadersLocked appends the response header fields. Caller
// holds s.mu.
func (s *ServerStream) appendResponseHeadersLocked(fields []hpack.HeaderField) []hpack.HeaderField {
	fields = append(fields,
		hpack.HeaderField{Name: ":status", Value: "200"},
		hpack.HeaderField{Name: "content-type", Value: contentTypeFor(s.ContentSubtype())},
	)
	if s.sendCompress != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-encoding", Value: s.sendCompress})
	}
	if s.acceptComp != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-accept-encoding", Value: s.acceptComp})
	}
	return appendMetadata(fields, s.header)
}

// SetSendCompress announces the grpc-encoding of response messages; it
// must be called before the headers are sent.
func (s *ServerStream) SetSendCompress(name string) {
	s.mu.Lock()
	s.sendCompress = name
	s.mu.Unlock()
}

// SetAcceptCompress announces grpc-accept-encoding in the response
// headers (or a trailers-only response), for example to list the
// encodings the server supports when it refuses one.
func (s *ServerStream) SetAcceptCompress(list string) {
	s.mu.Lock()
	s.acceptComp = list
	s.mu.Unlock()
}

// Write sends a message (prefix and bytes), sending the headers first if
// needed.
func (s *ServerStream) Write(prefix, data []byte, opts WriteOptions) error {
	s.mu.Lock()
	if s.statusSent {
		s.mu.Unlock()
		return ErrSendClosed
	}
	if !s.headerSent {
		if err := s.writeHeaderLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	s.t.enforcer.Reset()
	return s.write(prefix, data, opts, s.failure)
}

// failure is the error of an operation on a stream that was reset.
func (s *ServerStream) failure() error {
	if err := s.ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Canceled, "transport: the stream was closed")
}

// WriteStatus ends the stream with st: trailers after the messages, or a
// trailers-only response when no headers were sent. The handler is done
// once it returns; it must be called exactly once per stream, also for
// streams the client reset (then it only releases the stream's slot).
func (s *ServerStream) WriteStatus(st *status.Status) error {
	s.mu.Lock()
	if s.statusSent {
		s.mu.Unlock()
		return nil
	}
	s.statusSent = true
	defer s.releaseSlot()
	if s.finished.Load() {
		s.mu.Unlock()
		return nil
	}
	var fields []hpack.HeaderField
	if !s.headerSent {
		s.headerSent = true
		fields = s.appendResponseHeadersLocked(s.fieldsLocked(7 + s.header.Len() + s.trailer.Len()))
	} else {
		fields = s.fieldsLocked(3 + s.trailer.Len())
	}
	fields, err := appendStatus(fields, st)
	if err != nil {
		// The fields still hold grpc-status and grpc-message; only the
		// details could not be encoded.
		s.t.logger.Warn("h2rpc: dropping status details that do not encode", "method", s.method, "err", err)
	}
	fields = appendMetadata(fields, s.trailer)
	s.mu.Unlock()

	s.sendDone.Store(true)
	// RFC 9113 §8.1: a server that completes its response before the
	// request ends may send RST_STREAM(NO_ERROR).
	s.finish(errStreamDone, fields, !s.recvDone.Load(), http2.ErrCodeNo)
	return nil
}

func (s *ServerStream) releaseSlot() { <-s.t.slots }

// finish removes the stream from the connection, once, and queues for
// loopy the trailers (when trailers is not nil) followed by the stream's
// cleanup, with RST_STREAM(code) when rst.
func (s *ServerStream) finish(readErr error, trailers []hpack.HeaderField, rst bool, code http2.ErrCode) {
	if !s.finished.CompareAndSwap(false, true) {
		return
	}
	// Only the winner of finished gets here: the items are ours to fill.
	s.cleanup = controlbuf.CleanupStream{Stream: &s.ls, StreamID: s.id.Load(), RST: rst, Code: code}
	var item controlbuf.Item = &s.cleanup
	t := s.t
	if trailers != nil {
		// Written or dropped, the trailers call exactly one of OnWrite
		// and OnOrphaned.
		t.ending.Add(1)
		s.trailers = controlbuf.HeaderFrame{Stream: &s.ls, Fields: trailers, EndStream: true, Cleanup: &s.cleanup,
			OnWrite: t.endWritten, OnOrphaned: t.endOrphaned}
		item = &s.trailers
	}
	s.unwatch()
	s.rb.abort(readErr)
	t.mu.Lock()
	t.streams.delete(s.id.Load())
	if t.streams.len() == 0 {
		t.idleSince.Store(time.Now().UnixNano())
	}
	t.mu.Unlock()
	t.cb.Put(item)
	s.cancel()
	close(s.done)
}

// deadlineExceeded resets the stream when its grpc-timeout has passed.
// It runs on the timer's goroutine. The context's own timer, set first for
// the same timeout, is due no later than ours; waiting for it keeps the
// order handlers rely on: their context ends with DeadlineExceeded, never
// with the Canceled of the reset.
func (s *ServerStream) deadlineExceeded() {
	<-s.ctx.Done()
	if !errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		return
	}
	s.reset(status.New(codes.DeadlineExceeded, "transport: deadline exceeded"), true, http2.ErrCodeCancel)
}

// reset ends the stream because of a reset or deadline: the handler's
// context is cancelled and reads fail with st.
func (s *ServerStream) reset(st *status.Status, rst bool, code http2.ErrCode) {
	s.finish(st.Err(), nil, rst, code)
}

func (t *http2Server) handleRSTStream(sp *stream, code http2.ErrCode, local bool) {
	sp.recvDone.Store(true)
	sp.ss.reset(sp.resetStatus(code, resetBy(local, "client")), false, 0)
}

func (t *http2Server) recvEndStream(sp *stream) {
	sp.recvDone.Store(true)
	sp.rb.close(io.EOF)
	if sp.ss.answered {
		sp.ss.requestEnded()
	}
}

func (t *http2Server) closeAllStreams(err error) {
	t.mu.Lock()
	ss := make([]*ServerStream, 0, t.streams.len())
	for _, sp := range t.streams.all() {
		ss = append(ss, sp.ss)
	}
	kp := t.kp
	dt := t.drainTimer
	t.mu.Unlock()
	if kp != nil {
		kp.Stop()
	}
	if dt != nil {
		dt.Stop()
	}
	st := statusErrorf(codes.Unavailable, "transport: connection closed: %s", errorText(err))
	for _, s := range ss {
		s.reset(st, false, 0)
	}
}

func (t *http2Server) closed() {}
