package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/internal/testhook"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// DefaultUserAgent is sent when ConnectOptions.UserAgent is empty.
const DefaultUserAgent = "h2rpc-go/0.1"

// drainStreamID is the stream id past which a client connection takes
// no new streams: about three quarters of the 2^31 ids (as grpc-go), so
// streams queued when the connection starts draining still get ids while
// new calls go to a fresh connection.
const drainStreamID = 3<<29 + 1

// ConnectOptions configure a client connection.
type ConnectOptions struct {
	// UserAgent is prepended to the user-agent header.
	UserAgent string
	// Authority is the :authority of requests; the dialed address when empty.
	Authority string
	// TransportCredentials, when set, run their client handshake on the
	// new connection (with ctx, and Authority as the server's name) and
	// the connection keeps the AuthInfo they return; "tls" credentials
	// make the requests' :scheme "https". When nil the connection is
	// plaintext HTTP/2 with prior knowledge (h2c) and has no AuthInfo.
	TransportCredentials credentials.TransportCredentials
	// Dialer replaces the TCP dialer.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// Keepalive configures client keepalive pings.
	Keepalive keepalive.ClientParameters
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
}

// http2Client is the client side of an HTTP/2 connection.
type http2Client struct {
	http2Conn
	scheme    string
	authority string
	userAgent string

	lastStreamID atomic.Uint32 // largest stream id loopy assigned
	quota        streamQuota   // stream slots under the peer's MAX_CONCURRENT_STREAMS

	goAway      event // GOAWAY received
	draining    bool  // guarded by mu: no new streams (GOAWAY, GracefulClose, ids running out)
	goAwayRecvd bool  // guarded by mu: GOAWAY received; loopy opens no more streams
	// pending counts streams NewStream queued that loopy has neither
	// given an id nor dropped; guarded by mu. A draining connection
	// closes only once they, too, are done.
	pending int
	// closedByUs is set (under mu) when Close began: open streams end
	// CANCELLED, and ending the last of them does not close the
	// connection before Close's GOAWAY is written.
	closedByUs   bool
	closeErr     error // guarded by mu: Close's err, once closedByUs
	goAwayReason GoAwayReason
	goAwayDebug  string
	kpCancel     context.CancelFunc
	kpDone       chan struct{} // closed when the keepalive goroutine ends; nil without one

	// Watch's callbacks and the events they wait for; guarded by mu.
	onGoAway, onClosed func()
	wentAway, wasShut  bool // GOAWAY or close happened; close happened
}

// Authority is the :authority of the connection's requests (and the
// name its handshake verified, unless the credentials fixed one).
func (t *http2Client) Authority() string { return t.authority }

// NewClientTransport dials addr and sets up an HTTP/2 client connection.
func NewClientTransport(ctx context.Context, addr string, opts ConnectOptions) (ClientTransport, error) {
	t, err := newHTTP2Client(ctx, addr, opts)
	if err != nil {
		// Not a nil *http2Client inside a non-nil interface.
		return nil, err
	}
	return t, nil
}

func newHTTP2Client(ctx context.Context, addr string, opts ConnectOptions) (*http2Client, error) {
	var conn net.Conn
	var err error
	if opts.Dialer != nil {
		conn, err = opts.Dialer(ctx, addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	if err := setTCPOptions(conn, opts.TCPKeepalive, clientUserTimeout(opts.Keepalive)); err != nil {
		conn.Close()
		return nil, err
	}
	scheme := "http"
	var authInfo credentials.AuthInfo
	if creds := opts.TransportCredentials; creds != nil {
		authority := opts.Authority
		if authority == "" {
			authority = addr
		}
		proto := creds.Info().SecurityProtocol
		// Credentials should honour ctx; those that do not still end
		// with it, as in grpc-go: the raw connection is closed under
		// them. Otherwise the connect timeout would not hold, and a
		// server that never answers would keep the attempt for ever.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		sconn, ai, err := creds.ClientHandshake(ctx, authority, conn)
		if !stop() {
			// ctx ended, and the connection is closed: a handshake
			// that still succeeded is no use.
			switch {
			case err == nil:
				err = ctx.Err()
			case !errors.Is(err, ctx.Err()):
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("transport: %s handshake with %s: %w", proto, addr, err)
		}
		if proto == "tls" {
			scheme = "https"
		}
		conn, authInfo = sconn, ai
	}
	return newClientOnConn(ctx, conn, addr, scheme, authInfo, opts)
}

// newClientOnConn runs the client side on an established connection and
// waits, until ctx ends, for the server's first SETTINGS: only then is the
// connection READY (gRPC connectivity semantics). A connection that closes
// or fails before is a failed attempt, and is closed.
func newClientOnConn(ctx context.Context, conn net.Conn, addr, scheme string, authInfo credentials.AuthInfo, opts ConnectOptions) (*http2Client, error) {
	t := &http2Client{
		scheme:    scheme,
		authority: opts.Authority,
	}
	if t.authority == "" {
		t.authority = addr
	}
	t.userAgent = DefaultUserAgent
	if opts.UserAgent != "" {
		t.userAgent = opts.UserAgent + " " + DefaultUserAgent
	}
	cfg := connConfig{
		readBufferSize:     opts.ReadBufferSize,
		writeBufferSize:    opts.WriteBufferSize,
		writeQuota:         opts.WriteQuota,
		maxHeaderListSize:  opts.MaxHeaderListSize,
		streamWindow:       opts.InitialWindowSize,
		connWindow:         opts.InitialConnWindowSize,
		headerBlockTimeout: opts.HeaderBlockTimeout,
		logger:             opts.Logger,
		connWriteBudget:    opts.ConnWriteBudget,
	}
	cfg.fill()
	t.init(t, true, conn, &cfg)
	t.authInfo = authInfo
	if n := testhook.ClientStreamsBeforeDrain.Load(); n > 0 {
		t.loopy.SetFirstStreamID(drainStreamID - 2*uint32(n-1))
	}

	ss, inc := t.initialSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	if err := writePreamble(conn, true, ss, inc); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: writing the client preface: %w", err)
	}
	// The keepalive's cancel is set before the reader and loopy start:
	// either may close the connection at once (closeAllStreams reads
	// kpCancel), and a keepalive started after that would run forever.
	if kp := opts.Keepalive.Effective(); kp.Time != keepalive.Infinity {
		var kctx context.Context
		kctx, t.kpCancel = context.WithCancel(context.Background())
		t.kpDone = make(chan struct{})
		go func() {
			defer close(t.kpDone)
			keepalive.RunClient(kctx, kp, &t.act, clientKeepalive{t})
		}()
	}
	t.startLoopy()
	go t.reader()
	if err := t.awaitSettings(ctx, addr); err != nil {
		return nil, err
	}
	return t, nil
}

// awaitSettings waits for the server's first SETTINGS frame. It fails,
// having closed the connection, when the connection closes first or ctx
// ends.
func (t *http2Client) awaitSettings(ctx context.Context, addr string) error {
	// One channel: gotSettings also fires when the connection closes
	// (closed), so Done's channel is not made for every connection.
	var err error
	select {
	case <-t.gotSettings.wait():
	case <-ctx.Done():
		err = fmt.Errorf("transport: no SETTINGS from %s before the connect deadline: %w", addr, ctx.Err())
		t.close(err)
	}
	if t.settingsSeen.Load() {
		// The server's SETTINGS count even when the connection died just
		// after them: it was READY.
		return nil
	}
	<-t.done.wait()
	if err == nil {
		// http2Conn's closeErr, the cause (http2Client's own closeErr is
		// Close's argument, nil here).
		err = fmt.Errorf("transport: connection to %s closed before the server's SETTINGS arrived: %w", addr, t.http2Conn.closeErr)
	}
	return err
}

// clientKeepalive adapts the client to keepalive.ClientConn.
type clientKeepalive struct{ t *http2Client }

func (k clientKeepalive) ActiveStreams() int { return k.t.activeStreams() }
func (k clientKeepalive) Ping()              { k.t.Ping() }
func (k clientKeepalive) Close(err error) {
	k.t.close(&ConnectionError{Code: http2.ErrCodeNo, Desc: "keepalive ping not acknowledged", Err: err})
}

func (t *http2Client) reader() {
	err := t.readLoop()
	t.mu.Lock()
	byUs, closeErr := t.closedByUs, t.closeErr
	t.mu.Unlock()
	if byUs {
		// Close shut our side after its GOAWAY; the server closing
		// its side is the end Close waits for.
		t.close(closeErr)
		return
	}
	t.fatal(err)
}

// GoAway is closed when the server sends GOAWAY.
func (t *http2Client) GoAway() <-chan struct{} { return t.goAway.wait() }

// GoAwayReason reports the reason of the server's GOAWAY.
func (t *http2Client) GoAwayReason() (GoAwayReason, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.goAwayReason, t.goAwayDebug
}

// Watch registers goAway and closed, each called once: goAway when the
// connection stops taking new streams for good (the server sent GOAWAY,
// its stream ids are running out, or the connection closed), closed once the connection has closed (Done
// is closed). They run on the goroutine that saw the event, with no lock
// held, so they may call the transport (GracefulClose, Close). An event
// that happened before Watch calls its function at once. Watch may be
// called once per transport.
func (t *http2Client) Watch(goAway, closed func()) {
	t.mu.Lock()
	wentAway, wasShut := t.wentAway, t.wasShut
	if !wentAway {
		t.onGoAway = goAway
	}
	if !wasShut {
		t.onClosed = closed
	}
	t.mu.Unlock()
	if wentAway {
		goAway()
	}
	if wasShut {
		closed()
	}
}

// fireGoAway calls Watch's goAway, once.
func (t *http2Client) fireGoAway() {
	t.mu.Lock()
	f := t.onGoAway
	t.onGoAway, t.wentAway = nil, true
	t.mu.Unlock()
	if f != nil {
		f()
	}
}

// closed calls Watch's functions that are still due.
func (t *http2Client) closed() {
	t.gotSettings.fire() // wakes a NewClientTransport still waiting
	t.fireGoAway()
	t.mu.Lock()
	f := t.onClosed
	t.onClosed, t.wasShut = nil, true
	t.mu.Unlock()
	if f != nil {
		f()
	}
}

// Close closes the connection: open streams end with CANCELLED, each
// reset with RST_STREAM(CANCEL) so the server's handlers see the cancel,
// then a GOAWAY is written and the socket closed (best effort: loopy gets
// goAwayWriteTimeout to write them). err is the connection's Err.
func (t *http2Client) Close(err error) {
	if err == nil {
		err = ErrConnClosing
	}
	if t.closing.Load() {
		t.close(err)
		return
	}
	t.mu.Lock()
	t.draining, t.closedByUs, t.closeErr = true, true, err
	ss := make([]*ClientStream, 0, t.streams.len())
	for _, sp := range t.streams.all() {
		ss = append(ss, sp.cs)
	}
	t.mu.Unlock()
	st := closedStatus(err)
	for _, s := range ss {
		s.closeStream(st, true, http2.ErrCodeCancel)
	}
	// A client's GOAWAY names the last server-initiated stream: none.
	if t.cb.Put(&controlbuf.GoAway{Code: http2.ErrCodeNo, CloseConn: true}) == nil {
		timer := time.NewTimer(goAwayWriteTimeout)
		select {
		case <-t.loopyDone.wait():
			// Closing a socket with unread bytes makes the kernel
			// reset it, which can destroy the resets and the GOAWAY
			// before the server reads them: shut our side and let the
			// reader take what the server still sends until it closes
			// its side (bounded by lingerTimeout).
			if cw, ok := t.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				timer.Reset(lingerTimeout)
				select {
				case <-t.done.wait():
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
		timer.Stop()
	}
	t.close(err)
}

// closedStatus is the status of streams ended by Close(err).
func closedStatus(err error) *status.Status {
	return statusErrorf(codes.Canceled, "transport: connection closed by the client: %s", errorText(err))
}

// GracefulClose lets open streams finish (streams NewStream queued
// included), refuses new ones, then closes.
func (t *http2Client) GracefulClose() {
	t.mu.Lock()
	t.draining = true
	n := t.streams.len() + t.pending
	t.mu.Unlock()
	if n == 0 {
		t.close(fmt.Errorf("%w: closed gracefully", ErrConnClosing))
	}
}

func (t *http2Client) maxStreamID() uint32 { return t.lastStreamID.Load() }

// errDraining is NewStream's error on a connection that takes no new
// streams: nothing was sent, so the call may go to another connection.
var errDraining = status.Error(codes.Unavailable, "transport: the connection is draining")

// admitStream is NewStream's check that the connection takes one more
// stream, which it then counts as pending. A connection whose stream ids
// passed drainStreamID starts draining here, as if the server had sent
// GOAWAY: Watch's goAway runs (the channel moves to a new connection),
// the streams already taken finish, then the connection closes.
func (t *http2Client) admitStream() error {
	t.mu.Lock()
	if t.draining {
		t.mu.Unlock()
		return errDraining
	}
	if t.lastStreamID.Load() < drainStreamID {
		t.pending++
		t.mu.Unlock()
		return nil
	}
	t.draining = true
	t.mu.Unlock()
	t.logger.Debug("h2rpc: stream ids running out, draining the connection", "last", t.lastStreamID.Load(), "remote", t.RemoteAddr())
	t.fireGoAway()
	t.GracefulClose()
	return errDraining
}

// unadmitStream undoes admitStream for a stream that was not queued.
func (t *http2Client) unadmitStream() {
	t.mu.Lock()
	t.pending--
	t.mu.Unlock()
}

// ClientStream is one RPC's stream on a client connection.
type ClientStream struct {
	stream
	t          *http2Client
	method     string
	headerDone chan struct{} // closed when response headers arrived or the stream ended

	// Written before headerDone or done is closed, read after.
	header       metadata.MD // nil when the response headers had no metadata
	trailer      metadata.MD // nil when the trailers had no metadata
	gotTrailer   bool        // trailers (or a trailers-only response) arrived
	st           *status.Status
	recvEncode   string
	unprocessed  atomic.Bool
	headerRecvd  bool // reader only
	trailersOnly bool

	// Items handed to loopy once each, kept here so that opening and
	// ending the stream allocate nothing for them: open by NewStream,
	// cleanup by endStream (after it won the finished flag).
	open    controlbuf.HeaderFrame
	cleanup controlbuf.CleanupStream
	// fieldsBuf holds the request's header fields when they fit; it
	// belongs to open (loopy) once NewStream queued it.
	fieldsBuf [12]hpack.HeaderField
}

// NewStream opens a stream: it waits (in order, honouring ctx) for a
// stream slot under the server's MAX_CONCURRENT_STREAMS, then queues the
// request HEADERS and returns. A waiter whose ctx is done leaves with
// ctx's status, having queued nothing.
func (t *http2Client) NewStream(ctx context.Context, hdr *CallHdr) (*ClientStream, error) {
	if err := t.quota.acquire(ctx, &t.done); err != nil {
		if err == errQuotaConnDone {
			return nil, status.Error(codes.Unavailable, "transport: the connection is closed")
		}
		return nil, status.FromContextError(err).Err()
	}
	s, err := t.newStream(ctx, hdr)
	if err != nil {
		t.quota.release()
		return nil, err
	}
	return s, nil
}

// newStream is NewStream once it holds a slot; on error the caller gives
// the slot back, otherwise the stream's end does.
func (t *http2Client) newStream(ctx context.Context, hdr *CallHdr) (*ClientStream, error) {
	s := &ClientStream{t: t, method: hdr.Method, headerDone: make(chan struct{})}
	s.cs = s
	s.init(&t.http2Conn, ctx, t.streamWindow.Load())
	fields, err := t.appendRequestFields(s.fieldsBuf[:0], ctx, hdr)
	if err != nil {
		return nil, err
	}
	s.ls.Init(0, &s.wq)
	hf := &s.open
	*hf = controlbuf.HeaderFrame{
		Stream: &s.ls,
		Fields: fields,
		Opener: (*clientOpener)(s),
	}
	if err := t.admitStream(); err != nil {
		return nil, err
	}
	if err := t.cb.Put(hf); err != nil {
		t.unadmitStream()
		return nil, status.Error(codes.Unavailable, "transport: "+errorText(err))
	}
	// A cancelled or expired context resets the stream.
	s.watch(ctx, func() {
		s.closeStream(status.FromContextError(ctx.Err()), true, http2.ErrCodeCancel)
	})
	return s, nil
}

// requestFields builds the request HEADERS (gRPC over HTTP/2, "Requests").
func (t *http2Client) requestFields(ctx context.Context, hdr *CallHdr) ([]hpack.HeaderField, error) {
	return t.appendRequestFields(nil, ctx, hdr)
}

// appendRequestFields is requestFields appending to dst, which is used
// when it has room for them all.
func (t *http2Client) appendRequestFields(dst []hpack.HeaderField, ctx context.Context, hdr *CallHdr) ([]hpack.HeaderField, error) {
	authority := t.authority
	if hdr.Host != "" {
		authority = hdr.Host
	}
	fields := dst[:0]
	n := 10 + hdr.Metadata.Len()
	if hdr.PreviousAttempts > 0 {
		n++
	}
	if cap(dst) < n {
		fields = make([]hpack.HeaderField, 0, n)
	}
	fields = append(fields,
		hpack.HeaderField{Name: ":method", Value: "POST"},
		hpack.HeaderField{Name: ":scheme", Value: t.scheme},
		hpack.HeaderField{Name: ":path", Value: hdr.Method},
		hpack.HeaderField{Name: ":authority", Value: authority},
		hpack.HeaderField{Name: "content-type", Value: contentTypeFor(hdr.ContentSubtype)},
		hpack.HeaderField{Name: "user-agent", Value: t.userAgent},
		hpack.HeaderField{Name: "te", Value: "trailers"},
	)
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return nil, status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
		}
		fields = append(fields, hpack.HeaderField{Name: "grpc-timeout", Value: encodeTimeout(d)})
	}
	if hdr.SendCompress != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-encoding", Value: hdr.SendCompress})
	}
	if hdr.AcceptCompress != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-accept-encoding", Value: hdr.AcceptCompress})
	}
	if hdr.PreviousAttempts > 0 {
		fields = append(fields, hpack.HeaderField{Name: "grpc-previous-rpc-attempts", Value: strconv.Itoa(hdr.PreviousAttempts)})
	}
	if err := validateMetadata(hdr.Metadata); err != nil {
		// As grpc-go: the call fails before anything is sent.
		return nil, status.Error(codes.Internal, err.Error())
	}
	return appendMetadata(fields, hdr.Metadata), nil
}

// clientOpener is a ClientStream as the controlbuf.Opener of its opening
// HEADERS; a type of its own keeps the methods off ClientStream's API.
type clientOpener ClientStream

func (o *clientOpener) InitStream(id uint32) error { return (*ClientStream)(o).initStream(id) }
func (o *clientOpener) Orphaned(err error)         { (*ClientStream)(o).orphaned(err) }

// initStream runs on loopy when it assigns the stream its id.
func (s *ClientStream) initStream(id uint32) error {
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	// Dropped now, the stream is orphaned, which counts it off pending.
	if t.goAwayRecvd || t.closing.Load() {
		return errors.New("transport: the connection is going away")
	}
	if s.finished.Load() {
		return errors.New("transport: the stream is already closed")
	}
	s.id.Store(id)
	// BDP may have grown the window since NewStream read it: growWindow
	// raised only the streams in the map, and the server gives this one
	// the window of our latest SETTINGS.
	s.fc.RaiseLimit(t.streamWindow.Load())
	t.streams.set(id, &s.stream)
	t.lastStreamID.Store(id)
	t.pending--
	t.act.StreamStarted()
	return nil
}

// orphaned runs when the stream's HEADERS will never be written.
func (s *ClientStream) orphaned(err error) {
	t := s.t
	t.mu.Lock()
	t.pending--
	done := t.draining && t.streams.len()+t.pending == 0
	t.mu.Unlock()
	if done && !t.closing.Load() {
		// A draining connection's last stream never opened (it was
		// closed already, or is failed below).
		defer t.close(fmt.Errorf("%w: drained", ErrConnClosing))
	}
	st := status.New(codes.Unavailable, "transport: stream not started: "+errorText(err))
	if errors.Is(err, controlbuf.ErrHeaderListTooLarge) {
		st = status.New(codes.Internal, "transport: "+errorText(err))
	} else {
		s.unprocessed.Store(true)
	}
	s.closeStream(st, false, 0)
}

// Method is the full method name of the stream.
func (s *ClientStream) Method() string { return s.method }

// Write sends a message (prefix and bytes) on the stream. Once the
// stream has ended (the server's status arrived, or it was reset or
// cancelled) it returns io.EOF at once: reads give the status.
func (s *ClientStream) Write(prefix, data []byte, opts WriteOptions) error {
	return s.write(prefix, data, opts, s.writeFailure)
}

// writeFailure is the error of a write on a stream that ended: io.EOF,
// as in grpc-go, once the stream's status is there for reads.
func (s *ClientStream) writeFailure() error {
	<-s.done
	return io.EOF
}

// CloseSend ends the client's half of the stream.
func (s *ClientStream) CloseSend() error {
	return s.Write(nil, nil, WriteOptions{Last: true})
}

// failure is the error of an operation on a stream that ended.
func (s *ClientStream) failure() error {
	<-s.done
	if s.st.Code() == codes.OK {
		return io.EOF
	}
	return s.st.Err()
}

// Header waits for the response headers and returns them. On a
// trailers-only response it returns the trailers' metadata; on failure the
// stream's status error.
func (s *ClientStream) Header() (metadata.MD, error) {
	if s.waitHeaders() {
		return orEmpty(s.header), nil
	}
	if s.trailersOnly {
		return orEmpty(s.trailer), nil
	}
	if s.st.Code() != codes.OK {
		return nil, s.st.Err()
	}
	return metadata.MD{}, nil
}

// waitHeaders waits until the response headers arrived (true) or the
// stream ended without them (false, and s.done is closed).
func (s *ClientStream) waitHeaders() bool {
	select {
	case <-s.headerDone:
		return true
	case <-s.done:
	}
	// Both may be closed: headers that arrived count.
	select {
	case <-s.headerDone:
		return true
	default:
		return false
	}
}

// RecvCompress waits for the response headers and returns the server's
// grpc-encoding; it fails with the stream's status error if the stream
// ended without response headers.
func (s *ClientStream) RecvCompress() (string, error) {
	if s.waitHeaders() {
		return s.recvEncode, nil
	}
	return "", s.failure()
}

// Trailer returns the trailer metadata once the stream is done (nil before).
func (s *ClientStream) Trailer() metadata.MD {
	select {
	case <-s.done:
		if s.gotTrailer {
			return orEmpty(s.trailer)
		}
		return nil
	default:
		return nil
	}
}

// orEmpty is md, or an empty MD for the caller to keep when the peer sent
// no metadata (the stream keeps nil then, rather than an empty map per
// header block).
func orEmpty(md metadata.MD) metadata.MD {
	if md == nil {
		return metadata.MD{}
	}
	return md
}

// Status waits for the stream to end and returns its final status.
func (s *ClientStream) Status() *status.Status {
	<-s.done
	return s.st
}

// Unprocessed reports whether the server never processed the stream (it
// was refused or above a GOAWAY's last stream id), so a retry is safe.
func (s *ClientStream) Unprocessed() bool { return s.unprocessed.Load() }

// Close ends the stream early: if it is still open it is reset with
// RST_STREAM(CANCEL) and reads fail with err's status.
func (s *ClientStream) Close(err error) {
	st := status.Convert(err)
	if err == nil {
		st = status.New(codes.Canceled, "transport: stream closed by the client")
	}
	s.closeStream(st, true, http2.ErrCodeCancel)
}

// closeStream ends the stream once: records st, fails or ends reads,
// removes it from the connection and tells loopy (with RST_STREAM when rst).
func (s *ClientStream) closeStream(st *status.Status, rst bool, code http2.ErrCode) {
	s.endStream(st, rst, code, false)
}

// endStream is closeStream; with trailers set the server ended the
// stream (with its status, or END_STREAM without one), so the messages it sent before stay readable
// whatever the status (as in grpc-go) and Read then returns io.EOF.
// Otherwise a failed stream drops its unread bytes.
func (s *ClientStream) endStream(st *status.Status, rst bool, code http2.ErrCode, trailers bool) {
	if !s.finished.CompareAndSwap(false, true) {
		return
	}
	s.ended(st, rst, code, trailers)
}

// ended is endStream after the caller won the stream's finished flag:
// what it wrote to the stream before is published to the readers of
// Header, Trailer and Status by the close of done.
func (s *ClientStream) ended(st *status.Status, rst bool, code http2.ErrCode, trailers bool) {
	s.unwatch()
	s.st = st
	t := s.t
	t.mu.Lock()
	if id := s.id.Load(); id != 0 && t.streams.get(id) == &s.stream {
		t.streams.delete(id)
	}
	left, draining := t.streams.len()+t.pending, t.draining && !t.closedByUs
	t.mu.Unlock()
	s.cleanup = controlbuf.CleanupStream{Stream: &s.ls, StreamID: s.id.Load(), RST: rst, Code: code}
	t.cb.Put(&s.cleanup)
	// After the cleanup is queued: the HEADERS of a stream that takes
	// the slot reach loopy behind it.
	t.quota.release()
	close(s.done)
	// Readers wake only now: a Read that ends with the final status (or
	// io.EOF) finds Status, Trailer and Header ready.
	if st.Code() == codes.OK || trailers {
		s.rb.close(io.EOF)
	} else {
		s.rb.abort(st.Err())
	}
	if draining && left == 0 && !t.closing.Load() {
		t.close(fmt.Errorf("%w: drained", ErrConnClosing))
	}
}

// operateHeaders handles response headers and trailers.
func (t *http2Client) operateHeaders(b *headerBlock) error {
	id := b.streamID
	if id%2 == 0 {
		return connError(http2.ErrCodeProtocol, "HEADERS on server-initiated stream %d", id)
	}
	if id > t.lastStreamID.Load() {
		return connError(http2.ErrCodeProtocol, "HEADERS on idle stream %d", id)
	}
	sp := t.lookup(id)
	if sp == nil {
		return nil // a stream we already closed
	}
	s := sp.cs
	if err := b.blockError(); err != nil {
		c := codes.Internal
		if errors.Is(err, errHeaderListTooLarge) {
			c = codes.ResourceExhausted
		}
		s.closeStream(statusErrorf(c, "transport: bad response headers: %v", err), true, http2.ErrCodeProtocol)
		return nil
	}
	var rh responseHeaders
	var md metadata.MD // made for the first metadata field
	for _, f := range b.fields {
		if err := rh.field(f, &md); err != nil {
			s.closeStream(statusErrorf(codes.Internal, "transport: %v", err), true, http2.ErrCodeProtocol)
			return nil
		}
	}
	trailersOnly := false
	if !s.headerRecvd {
		s.headerRecvd = true
		if !b.endStream {
			// Response headers: the messages follow.
			if st := rh.headersCheck(); st != nil {
				s.closeStream(st, true, http2.ErrCodeCancel)
				return nil
			}
			s.header = md
			s.recvEncode = rh.encoding
			close(s.headerDone)
			return nil
		}
		trailersOnly = true
	} else if !b.endStream {
		s.closeStream(statusErrorf(codes.Internal, "transport: trailers without END_STREAM"), true, http2.ErrCodeProtocol)
		return nil
	}
	s.recvDone.Store(true)
	// The trailer fields are written only by the winner of the stream's
	// end: a stream a cancel ended meanwhile is read by Header and Trailer
	// already.
	if !s.finished.CompareAndSwap(false, true) {
		return nil
	}
	s.trailersOnly = trailersOnly
	s.trailer = md
	s.gotTrailer = true
	s.ended(rh.status(), !s.sendDone.Load(), http2.ErrCodeNo, true)
	return nil
}

// recvEndStream: the server ended the stream with DATA, without trailers.
// The messages it sent before stay readable (the stream ends as after
// trailers), then the status is INTERNAL.
func (t *http2Client) recvEndStream(sp *stream) {
	sp.recvDone.Store(true)
	sp.cs.endStream(statusErrorf(codes.Internal, "transport: server closed the stream without sending trailers"), !sp.sendDone.Load(), http2.ErrCodeNo, true)
}

func (t *http2Client) handleRSTStream(sp *stream, code http2.ErrCode, local bool) {
	s := sp.cs
	if code == http2.ErrCodeRefusedStream {
		s.unprocessed.Store(true)
	}
	sp.recvDone.Store(true)
	s.closeStream(sp.resetStatus(code, resetBy(local, "server")), false, 0)
}

func (t *http2Client) handleGoAway(f goAwayFrame) error {
	debug := string(f.DebugData)
	t.mu.Lock()
	t.draining = true
	t.goAwayRecvd = true
	t.goAwayReason = GoAwayNoReason
	if f.ErrCode == http2.ErrCodeEnhanceYourCalm && debug == keepalive.TooManyPingsDebugData {
		t.goAwayReason = GoAwayTooManyPings
	}
	t.goAwayDebug = debug
	byUs := t.closedByUs // Close is closing the connection with its own error
	var refused []*ClientStream
	for id, sp := range t.streams.all() {
		if id > f.LastStreamID {
			refused = append(refused, sp.cs)
		}
	}
	t.mu.Unlock()
	t.goAway.fire()
	t.fireGoAway()
	if f.ErrCode != http2.ErrCodeNo {
		t.logger.Info("h2rpc: server sent GOAWAY", "code", f.ErrCode, "debug", debug, "remote", t.RemoteAddr())
	}
	// RFC 9113 §6.8: streams above the last id were not processed and
	// may be retried.
	for _, s := range refused {
		s.unprocessed.Store(true)
		s.closeStream(statusErrorf(codes.Unavailable, "transport: stream not processed: server sent GOAWAY (%v)", f.ErrCode), false, 0)
	}
	if !byUs && t.activeStreams() == 0 {
		t.close(fmt.Errorf("%w: server sent GOAWAY (%v)", ErrConnClosing, f.ErrCode))
	}
	return nil
}

func (t *http2Client) handlePing(ack bool, data [8]byte) error {
	if !ack {
		t.cb.Put(&controlbuf.Ping{Ack: true, Data: data})
	}
	return nil
}

func (t *http2Client) closeAllStreams(err error) {
	t.mu.Lock()
	t.draining = true
	ss := make([]*ClientStream, 0, t.streams.len())
	for _, sp := range t.streams.all() {
		ss = append(ss, sp.cs)
	}
	byUs := t.closedByUs
	t.mu.Unlock()
	st := statusErrorf(codes.Unavailable, "transport: connection closed: %s", errorText(err))
	if byUs {
		st = closedStatus(err)
	}
	for _, s := range ss {
		s.closeStream(st, false, 0)
	}
	if t.kpCancel != nil {
		t.kpCancel()
	}
}

// responseHeaders collects what a client needs from response headers and
// trailers.
type responseHeaders struct {
	contentType string
	encoding    string
	st          headerStatus // :status and the grpc-status fields
}

func (rh *responseHeaders) field(f hpack.HeaderField, md *metadata.MD) error {
	if rh.st.field(f.Name, f.Value) {
		return nil
	}
	switch f.Name {
	case "content-type":
		rh.contentType = f.Value
	case "grpc-encoding":
		rh.encoding = f.Value
	default:
		if isReservedHeader(f.Name) {
			return nil
		}
		if *md == nil {
			*md = metadata.MD{}
		}
		return decodeMetadataField(*md, f.Name, f.Value)
	}
	return nil
}

// headersCheck validates response headers that are followed by messages.
func (rh *responseHeaders) headersCheck() *status.Status {
	if rh.st.err != nil {
		return rh.st.status()
	}
	if rh.st.httpStatus != 200 {
		return statusErrorf(httpStatusToCode(rh.st.httpStatus), "transport: unexpected HTTP status %d", rh.st.httpStatus)
	}
	if _, ok := contentSubtype(rh.contentType); !ok {
		return statusErrorf(codes.Internal, "transport: unexpected response content-type %q", rh.contentType)
	}
	return nil
}

// status is the final status of trailers (or a trailers-only response).
func (rh *responseHeaders) status() *status.Status { return rh.st.status() }
