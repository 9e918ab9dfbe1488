package transport

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/flowcontrol"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/credentials"
)

// Connection tunables.
const (
	// DefaultReadBufferSize is the size of the large pooled buffer a
	// connection reads into while data arrives in bulk (see connReader);
	// an idle connection holds only a small buffer.
	DefaultReadBufferSize = 32 << 10
	// DefaultWriteBufferSize is the size of loopy's write buffer.
	DefaultWriteBufferSize = 32 << 10

	// maxEmptyDataFrames is how many DATA frames in a row with no payload
	// and no END_STREAM a peer may send before the connection is closed
	// with ENHANCE_YOUR_CALM (CVE-2019-9518: empty frames cost us work and
	// the peer nothing).
	maxEmptyDataFrames = 100

	// bodyBudgetPerConn bounds the memory a peer can make a connection's
	// readers allocate for message bodies it announced but has not sent:
	// the most a connection lets in flight once BDP estimation has grown
	// its windows all the way. Past it, bodies are allocated as their
	// bytes arrive.
	bodyBudgetPerConn = int64(flowcontrol.MaxBDPWindow)

	// goAwayWriteTimeout bounds how long a connection that is closing with
	// an error waits for loopy to write the GOAWAY before closing the socket.
	goAwayWriteTimeout = time.Second

	// lingerTimeout and lingerMaxBytes bound the drain of a connection
	// closed for an error after its GOAWAY (see linger).
	lingerTimeout  = 250 * time.Millisecond
	lingerMaxBytes = 1 << 20
)

// sideHandler is the part of frame handling that differs between client
// and server; http2Conn calls it from the reader goroutine.
type sideHandler interface {
	// operateHeaders handles a complete header block.
	operateHeaders(b *headerBlock) error
	// recvEndStream handles END_STREAM on a DATA frame.
	recvEndStream(s *stream)
	// handleRSTStream ends a known stream that was reset with code: by
	// the peer's RST_STREAM, or by us (local) for a stream error we found.
	handleRSTStream(s *stream, code http2.ErrCode, local bool)
	// handleGoAway handles a GOAWAY frame.
	handleGoAway(f goAwayFrame) error
	// handlePing handles a non-BDP PING (ack or not).
	handlePing(ack bool, data [8]byte) error
	// maxStreamID is the largest stream id that is not idle.
	maxStreamID() uint32
	// closeAllStreams fails every stream once the connection is gone.
	closeAllStreams(err error)
	// closed runs once after the connection closed (Done is closed),
	// outside close, so it may call close again.
	closed()
}

// connConfig is what both sides configure the same way.
type connConfig struct {
	readBufferSize    int
	writeBufferSize   int
	writeQuota        int32
	connWriteBudget   int64
	maxHeaderListSize uint32
	// streamWindow and connWindow are the receive windows we start with;
	// 0 means the HTTP/2 default with BDP-driven growth.
	streamWindow uint32
	connWindow   uint32
	// headerBlockTimeout bounds an open header block (timelimits.go);
	// 0 means DefaultHeaderBlockTimeout, negative no limit.
	headerBlockTimeout time.Duration
	logger             *slog.Logger
	// onDataWritten is called by loopy after each DATA frame it writes.
	onDataWritten func()
}

func (c *connConfig) fill() {
	if c.readBufferSize <= 0 {
		c.readBufferSize = DefaultReadBufferSize
	}
	if c.writeBufferSize <= 0 {
		c.writeBufferSize = DefaultWriteBufferSize
	}
	if c.writeQuota <= 0 {
		c.writeQuota = DefaultWriteQuota
	}
	if c.connWriteBudget <= 0 {
		c.connWriteBudget = DefaultConnWriteBudget
	}
	if c.maxHeaderListSize == 0 {
		c.maxHeaderListSize = DefaultMaxHeaderListSize
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.headerBlockTimeout == 0 {
		c.headerBlockTimeout = DefaultHeaderBlockTimeout
	}
}

// http2Conn is what the client and server transports share: the socket,
// the reader, the control buffer and loopy, connection flow control and BDP.
type http2Conn struct {
	side   sideHandler
	client bool
	conn   net.Conn
	br     *connReader
	fr     frameReader
	cb     *controlbuf.Buffer
	loopy  *controlbuf.Loopy
	trIn   *flowcontrol.TrInFlow
	bdp    *flowcontrol.BDPEstimator
	act    keepalive.Activity
	hb     *headerBlock
	tl     timeLimits // preface and header block time limits
	logger *slog.Logger
	// authInfo is what the transport credentials' handshake learned
	// about the peer; nil without transport credentials. Set before the
	// connection's goroutines start, never changed.
	authInfo credentials.AuthInfo

	// streamWindow is the receive window of new streams; BDP grows it.
	streamWindow atomic.Uint32
	// writeQuota is each stream's write quota.
	writeQuota int32
	// budget bounds the message bytes all streams together have queued
	// for loopy and loopy has not yet written to the socket.
	budget flowcontrol.WriteBudget

	// bodyBudget is how many bytes of message bodies the connection's
	// streams may still allocate before the bytes arrived (see
	// stream.ReserveBody).
	bodyBudget atomic.Int64

	closing   atomic.Bool // close has begun
	done      event       // the connection is closed
	loopyDone event       // loopy returned
	closeOnce sync.Once
	closeErr  error // set before done is closed

	mu      sync.Mutex
	streams streamMap

	sawSettings bool // reader only: the peer's first SETTINGS arrived
	// gotSettings fires when the peer's first SETTINGS arrived
	// (settingsSeen is then true: a client is READY) or, on a client,
	// when the connection closed.
	gotSettings  event
	settingsSeen atomic.Bool
	emptyData    int // reader only: empty DATA frames in a row
}

func (c *http2Conn) init(side sideHandler, client bool, conn net.Conn, cfg *connConfig) {
	c.side = side
	c.client = client
	c.conn = conn
	c.logger = cfg.logger
	c.br = newConnReader(conn, cfg.readBufferSize)
	c.fr.br = c.br
	c.cb = controlbuf.NewBuffer()
	c.bodyBudget.Store(bodyBudgetPerConn)
	c.hb = newHeaderBlock(cfg.maxHeaderListSize)
	c.tl.init(conn, cfg.headerBlockTimeout)
	c.fr.tl = &c.tl
	c.writeQuota = cfg.writeQuota
	// No done channel: a writer waiting for the budget also watches its
	// stream's done, which closes when the connection does (and an idle
	// connection should not make c.done's channel).
	c.budget.Init(cfg.connWriteBudget, nil)

	sw, cw := cfg.streamWindow, cfg.connWindow
	dynamic := sw == 0 && cw == 0
	if sw == 0 {
		sw = flowcontrol.DefaultWindowSize
	}
	if cw == 0 {
		cw = sw
	}
	if cw < flowcontrol.DefaultWindowSize {
		cw = flowcontrol.DefaultWindowSize
	}
	c.streamWindow.Store(sw)
	c.trIn = flowcontrol.NewTrInFlow(cw)
	if dynamic {
		c.bdp = flowcontrol.NewBDPEstimator(sw, c.growWindow)
	}
	c.loopy = controlbuf.NewLoopy(controlbuf.Config{
		Client:          client,
		Conn:            conn,
		Buffer:          c.cb,
		WriteBufferSize: cfg.writeBufferSize,
		BDP:             c.bdp,
		Logger:          cfg.logger,
		OnDataWritten:   cfg.onDataWritten,
		WriteBudget:     &c.budget,
		// A client's stream quota follows the peer's
		// MAX_CONCURRENT_STREAMS.
		OnSettingsApplied: c.settingApplied,
		// Loopy resets a stream itself when the peer overflows its
		// window with WINDOW_UPDATE; the stream must end here too.
		OnStreamError: func(id uint32, err error) {
			if s := c.lookup(id); s != nil {
				c.side.handleRSTStream(s, http2.ErrCodeFlowControl, true)
			}
		},
	})
}

// initialSettings lists the SETTINGS we announce, plus the connection
// window increment to send after them (0 for none).
func (c *http2Conn) initialSettings(extra ...http2.Setting) ([]http2.Setting, uint32) {
	ss := append([]http2.Setting{{ID: http2.SettingMaxHeaderListSize, Val: c.hb.limit}}, extra...)
	if w := c.streamWindow.Load(); w != flowcontrol.DefaultWindowSize {
		ss = append(ss, http2.Setting{ID: http2.SettingInitialWindowSize, Val: w})
	}
	var inc uint32
	if l := c.trIn.Limit(); l > flowcontrol.DefaultWindowSize {
		inc = l - flowcontrol.DefaultWindowSize
	}
	return ss, inc
}

// startLoopy runs the writer goroutine.
func (c *http2Conn) startLoopy() {
	go func() {
		defer c.loopyDone.fire()
		err := c.loopy.Run()
		if errors.Is(err, controlbuf.ErrDrained) {
			c.close(fmt.Errorf("%w: drained", ErrConnClosing))
			return
		}
		if errors.Is(err, controlbuf.ErrConnClosing) {
			// A GOAWAY that closes the connection was written: fatal,
			// which queued it, lingers and closes.
			return
		}
		var ce *ConnectionError
		if !errors.As(err, &ce) {
			err = &ConnectionError{Code: http2.ErrCodeInternal, Desc: "writer stopped", Err: err}
		}
		c.close(err)
	}()
}

// growWindow is the BDP estimator's callback (reader goroutine): the
// receive windows grow to n, announced with SETTINGS_INITIAL_WINDOW_SIZE
// (which grows every open stream's window at the peer by the difference,
// RFC 9113 §6.9.2, so the streams' accounting only moves its limit) and a
// connection WINDOW_UPDATE.
func (c *http2Conn) growWindow(n uint32) {
	c.mu.Lock()
	for _, s := range c.streams.all() {
		s.fc.RaiseLimit(n)
	}
	c.streamWindow.Store(n)
	c.mu.Unlock()
	c.cb.Put(&controlbuf.OutgoingSettings{Settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: n}}})
	c.cb.AddConnWindow(c.trIn.SetLimit(n))
}

// lookup finds an open stream.
func (c *http2Conn) lookup(id uint32) *stream {
	c.mu.Lock()
	s := c.streams.get(id)
	c.mu.Unlock()
	return s
}

// activeStreams counts open streams.
func (c *http2Conn) activeStreams() int {
	c.mu.Lock()
	n := c.streams.len()
	c.mu.Unlock()
	return n
}

// readLoop reads frames until the connection fails; it returns the reason.
func (c *http2Conn) readLoop() error {
	defer c.tl.stop()
	for {
		c.cb.Throttle()
		fh, err := c.fr.readFrameHeader()
		if err != nil {
			return c.readError(err)
		}
		c.act.Read()
		if !c.sawSettings && fh.Type != http2.FrameSettings {
			return connError(http2.ErrCodeProtocol, "first frame from the peer is %v, not SETTINGS", fh.Type)
		}
		switch fh.Type {
		case http2.FrameData:
			err = c.handleData(fh)
		case http2.FrameHeaders, http2.FrameContinuation, http2.FramePriority, http2.FrameRSTStream,
			http2.FrameSettings, http2.FramePing, http2.FrameGoAway, http2.FrameWindowUpdate:
			var p []byte
			if p, err = c.fr.payload(fh.Length); err != nil {
				err = c.readError(err)
			} else {
				err = c.handleFrame(fh, p)
			}
			c.fr.release()
		case http2.FramePushPromise:
			// We never enable push (client) and clients cannot push
			// (server): RFC 9113 §6.6, §8.4.
			err = connError(http2.ErrCodeProtocol, "PUSH_PROMISE received")
		default:
			// PRIORITY_UPDATE carries nothing a gRPC endpoint uses;
			// unknown frame types must be ignored (RFC 9113 §4.1).
			err = c.discard(int(fh.Length))
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		if !errors.As(err, &se) {
			return err
		}
		if se.StreamID > c.side.maxStreamID() && fh.Type != http2.FramePriority {
			// RFC 9113 §5.1: a frame other than HEADERS and PRIORITY on
			// an idle stream is a connection error.
			return connError(se.Code, "%v frame on idle stream %d: %v", fh.Type, se.StreamID, se.Cause)
		}
		// A malformed PRIORITY frame (one that makes its stream depend on
		// itself, §5.3.1, or is not 5 bytes long, §6.3) is a stream error
		// even on an idle stream, which it may legally name (§5.1): it is
		// answered with RST_STREAM there too, as conformance testers
		// expect, and the stream's id stays unused.
		c.streamError(se.StreamID, se.Code, se.Cause)
	}
}

// readError turns an error of the reader into the connection's error:
// a *ConnectionError as it is, anything else as a socket failure.
func (c *http2Conn) readError(err error) error {
	var ce *ConnectionError
	if errors.As(err, &ce) {
		return err
	}
	if le := c.tl.deadlineError(err); le != nil {
		return le // a time limit passed
	}
	// A socket error: no frame can be sent any more.
	return &ConnectionError{Code: http2.ErrCodeNo, Desc: "connection read failed", Err: err, socket: true}
}

// handleFrame parses and handles a frame other than DATA whose payload p
// was read whole. It returns an http2.StreamError for an error that
// resets only a stream.
func (c *http2Conn) handleFrame(fh http2.FrameHeader, p []byte) error {
	switch fh.Type {
	case http2.FrameHeaders:
		frag, prio, err := parseHeaders(fh, p)
		if err != nil {
			return err
		}
		c.hb.start(fh.StreamID, fh.Flags.Has(http2.FlagHeadersEndStream))
		if fh.Flags.Has(http2.FlagHeadersPriority) && prio.StreamDep == fh.StreamID {
			// A stream error (RFC 9113 §5.3.1), but the block is decoded
			// all the same to keep the HPACK state in step with the
			// peer's (§4.3).
			c.hb.markInvalid(errSelfDependency)
		}
		done, err := c.hb.add(frag, fh.Flags.Has(flagEndHeaders))
		if err != nil || !done {
			return err
		}
		return c.operateHeaders()
	case http2.FrameContinuation:
		done, err := c.hb.add(p, fh.Flags.Has(flagEndHeaders)) // checkOrder made sure a block is open
		if err != nil || !done {
			return err
		}
		return c.operateHeaders()
	case http2.FrameRSTStream:
		code, err := parseRSTStream(fh, p)
		if err != nil {
			return err
		}
		return c.handleRSTStream(fh.StreamID, code)
	case http2.FrameSettings:
		return c.handleSettings(fh, p)
	case http2.FramePing:
		data, err := parsePing(fh, p)
		if err != nil {
			return err
		}
		ack := fh.Flags.Has(http2.FlagPingAck)
		if ack && c.bdp != nil && data == flowcontrol.BDPPing {
			c.bdp.Calculate(data)
			return nil
		}
		return c.side.handlePing(ack, data)
	case http2.FrameWindowUpdate:
		inc, err := parseWindowUpdate(fh, p)
		if err != nil {
			return err
		}
		return c.handleWindowUpdate(fh.StreamID, inc)
	case http2.FrameGoAway:
		f, err := parseGoAway(fh, p)
		if err != nil {
			return err
		}
		return c.side.handleGoAway(f)
	case http2.FramePriority:
		// Deprecated (RFC 9113 §5.3.2): checked, then ignored.
		_, err := parsePriority(fh, p)
		return err
	}
	return nil
}

// operateHeaders hands a finished header block to the side, then lets go
// of its fields.
func (c *http2Conn) operateHeaders() error {
	if c.hb.invalid == errSelfDependency {
		// The side fails a new stream for a malformed block, but an
		// open stream must be reset here.
		if id := c.hb.streamID; c.lookup(id) != nil {
			c.hb.release()
			c.streamError(id, http2.ErrCodeProtocol, errSelfDependency)
			return nil
		}
	}
	err := c.side.operateHeaders(c.hb)
	c.hb.release()
	return err
}

// handleWindowUpdate hands the peer's WINDOW_UPDATE to loopy. Updates for
// the connection and for the streams we track coalesce, one item per
// window however many the peer sends while loopy is busy; the rest count
// as the peer's doing, so that a flood of them throttles the reader.
func (c *http2Conn) handleWindowUpdate(id, inc uint32) error {
	if id == 0 {
		c.cb.AddPeerConnWindow(inc)
		return nil
	}
	if id > c.side.maxStreamID() {
		return connError(http2.ErrCodeProtocol, "WINDOW_UPDATE on idle stream %d", id)
	}
	if s := c.lookup(id); s != nil {
		// Loopy knows the stream: a server stream is registered when it
		// is opened, a client stream has an id once loopy opened it.
		c.cb.AddPeerStreamWindow(&s.ls, inc)
		return nil
	}
	if c.client {
		// A client forgets a stream when it queues the stream's
		// cleanup: loopy will have dropped the stream by the time it
		// gets here.
		return nil
	}
	// A server forgets a stream when its handler is done, while loopy
	// may still write the response, waiting for this window.
	c.cb.Put(&controlbuf.IncomingWindowUpdate{StreamID: id, Increment: inc})
	return nil
}

func (c *http2Conn) handleRSTStream(id uint32, code http2.ErrCode) error {
	if id > c.side.maxStreamID() {
		return connError(http2.ErrCodeProtocol, "RST_STREAM on idle stream %d", id)
	}
	if s := c.lookup(id); s != nil {
		c.side.handleRSTStream(s, code, false)
		if !c.client && s.sendDone.Load() {
			// The handler's status may have ended the stream first
			// (it is still in the map while it ends), so the reset
			// above did nothing: its reply and trailers may wait in
			// loopy behind a window the peer will never grant now,
			// holding their write budget. Drop them as below; a
			// stream loopy no longer has is left alone.
			c.cb.Put(&controlbuf.CleanupStream{StreamID: id})
		}
		return nil
	}
	if c.client {
		// The stream's cleanup is queued already (see handleWindowUpdate).
		return nil
	}
	// The stream is over on our side, but loopy may still hold its last
	// frames (a response and trailers waiting for window the peer will
	// never grant now): let loopy drop them, or they stay until the
	// connection closes. A stream loopy no longer has is left alone. The
	// peer can send any number of these, for streams long gone: each
	// counts as its doing, so a flood of them throttles the reader.
	c.cb.Put(&controlbuf.CleanupStream{StreamID: id, ByPeer: true})
	return nil
}

func (c *http2Conn) handleSettings(fh http2.FrameHeader, p []byte) error {
	if fh.Flags.Has(http2.FlagSettingsAck) {
		_, err := parseSettings(fh, p, nil)
		return err
	}
	ss, err := parseSettings(fh, p, make([]http2.Setting, 0, len(p)/6))
	if err != nil {
		return err
	}
	first := !c.sawSettings
	c.sawSettings = true
	c.tl.settingsArrived()
	// Loopy applies them in order with the frames it writes, and acks.
	c.cb.Put(&controlbuf.IncomingSettings{Settings: ss})
	if first {
		c.settingsSeen.Store(true)
		// After the Put: streams opened from now on are queued behind
		// the settings.
		c.gotSettings.fire()
	}
	return nil
}

// handleData reads a DATA frame's payload from the socket straight into
// its stream's buffer (one copy), enforcing connection and stream flow
// control (RFC 9113 §6.1, §6.9).
func (c *http2Conn) handleData(fh http2.FrameHeader) error {
	if fh.StreamID == 0 {
		return connError(http2.ErrCodeProtocol, "DATA on stream 0")
	}
	length := fh.Length
	data := length
	var pad uint32
	if fh.Flags.Has(http2.FlagDataPadded) {
		if length == 0 {
			return connError(http2.ErrCodeFrameSize, "padded DATA frame without a pad length")
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return c.readError(err)
		}
		pad = uint32(b)
		if pad > length-1 {
			return connError(http2.ErrCodeProtocol, "DATA padding longer than the frame")
		}
		data = length - 1 - pad
		length-- // the pad length byte is read
	}
	endStream := fh.Flags.Has(http2.FlagDataEndStream)
	flowLen := fh.Length // flow control counts the whole payload

	if flowLen > 0 {
		inc, err := c.trIn.OnData(flowLen)
		if err != nil {
			return &ConnectionError{Code: http2.ErrCodeFlowControl, Desc: "connection window exceeded", Err: err}
		}
		c.cb.AddConnWindow(inc) // coalesces; 0 does nothing
		if c.bdp != nil && c.bdp.Add(flowLen) {
			c.cb.Put(&controlbuf.Ping{Data: flowcontrol.BDPPing})
		}
	}
	if data == 0 && !endStream {
		c.emptyData++
		if c.emptyData > maxEmptyDataFrames {
			return connError(http2.ErrCodeEnhanceYourCalm, "too many empty DATA frames")
		}
	} else {
		c.emptyData = 0
	}

	s := c.lookup(fh.StreamID)
	if s == nil || s.recvDone.Load() {
		if err := c.discard(int(length)); err != nil {
			return err
		}
		if fh.StreamID > c.side.maxStreamID() {
			return connError(http2.ErrCodeProtocol, "DATA on idle stream %d", fh.StreamID)
		}
		if s == nil && c.cb.RecentlyReset(fh.StreamID) {
			// RFC 9113 §5.1, §6.4: the peer sent it before our
			// RST_STREAM reached it; ignored, not answered. Its bytes
			// were counted against the connection window above, which
			// refunds them.
			return nil
		}
		// RFC 9113 §6.1: DATA on a stream that is not open or
		// half-closed (local) is a stream error STREAM_CLOSED.
		c.streamError(fh.StreamID, http2.ErrCodeStreamClosed, nil)
		return nil
	}
	if flowLen > 0 {
		if err := s.fc.OnData(flowLen); err != nil {
			if err := c.discard(int(length)); err != nil {
				return err
			}
			c.streamError(fh.StreamID, http2.ErrCodeFlowControl, err)
			return nil
		}
	}
	if s.bodyCheck {
		if handled, err := c.checkRequestBody(s, length, data, endStream); handled || err != nil {
			return err
		}
	}
	// Copy the payload from the read buffer into the stream, or straight
	// into the message buffer its reader posted (bytes consumed at once,
	// so refunded at once).
	direct := 0
	for rem := int(data); rem > 0; {
		p, err := c.br.next(rem)
		if err != nil {
			return c.readError(err)
		}
		k, _ := s.rb.write(p)
		direct += k
		rem -= len(p)
	}
	if pad > 0 {
		if err := c.discard(int(pad)); err != nil {
			return err
		}
	}
	// Padding is refunded at once, and so are bytes that went straight
	// into a reader's posted buffer; the rest as it is read.
	if refund := flowLen - data + uint32(direct); refund > 0 {
		if inc := s.fc.OnRead(refund); inc > 0 && !endStream {
			c.cb.AddStreamWindow(&s.ls, inc)
		}
	}
	if endStream {
		c.side.recvEndStream(s)
	}
	return nil
}

func (c *http2Conn) discard(n int) error {
	if n == 0 {
		return nil
	}
	if err := c.br.Discard(n); err != nil {
		return c.readError(err)
	}
	return nil
}

// streamError resets one stream for a stream-level protocol error
// (RFC 9113 §5.4.2); the connection carries on.
func (c *http2Conn) streamError(id uint32, code http2.ErrCode, cause error) {
	c.logger.Debug("h2rpc: stream error", "stream", id, "code", code, "cause", cause)
	if s := c.lookup(id); s != nil {
		// The side closes the stream as if the peer had reset it, and
		// sends our RST_STREAM with the code.
		c.side.handleRSTStream(s, code, true)
	}
	c.cb.Put(&controlbuf.ResetStream{StreamID: id, Code: code})
}

// fatal ends the connection because of err. A ConnectionError with a
// that did not come from the socket is announced with GOAWAY first
// (RFC 9113 §5.4.1).
func (c *http2Conn) fatal(err error) {
	var ce *ConnectionError
	if errors.As(err, &ce) && !ce.socket {
		c.logger.Debug("h2rpc: connection error", "err", err, "remote", c.conn.RemoteAddr())
		c.cb.Put(&controlbuf.GoAway{
			Code:         ce.Code,
			LastStreamID: c.side.maxStreamID(),
			DebugData:    []byte(ce.Desc),
			CloseConn:    true,
		})
		t := time.NewTimer(goAwayWriteTimeout)
		select {
		case <-c.loopyDone.wait():
			c.linger()
		case <-t.C:
		}
		t.Stop()
	}
	c.close(err)
}

// linger runs on the reader goroutine after loopy wrote a GOAWAY for a
// connection error: closing a socket that still has unread bytes makes
// the kernel send a TCP reset, which can destroy the GOAWAY before the
// peer reads it. So our side of the stream is shut first (the peer reads
// the GOAWAY, then EOF) and what the peer still sends is drained, for a
// bounded time and number of bytes.
func (c *http2Conn) linger() {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.conn, lingerMaxBytes)
}

// close closes the connection at once; the first error wins.
func (c *http2Conn) close(err error) {
	first := false
	c.closeOnce.Do(func() {
		first = true
		if err == nil {
			err = ErrConnClosing
		}
		c.closeErr = err
		c.closing.Store(true)
		c.cb.Finish(fmt.Errorf("%w: %w", ErrConnClosing, err))
		c.conn.Close()
		c.side.closeAllStreams(err)
		c.done.fire()
	})
	if first {
		c.side.closed()
	}
}

// Done is closed when the connection is closed.
func (c *http2Conn) Done() <-chan struct{} { return c.done.wait() }

// Err reports why the connection closed, once Done is closed.
func (c *http2Conn) Err() error {
	if c.done.hasFired() {
		return c.closeErr
	}
	return nil
}

// RemoteAddr is the peer's address.
func (c *http2Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// LocalAddr is our address.
func (c *http2Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// AuthInfo is what the transport credentials' handshake learned about
// the peer; nil without transport credentials.
func (c *http2Conn) AuthInfo() credentials.AuthInfo { return c.authInfo }

// ActiveStreams reports the number of open streams (keepalive).
func (c *http2Conn) ActiveStreams() int { return c.activeStreams() }

// Ping queues a keepalive PING (keepalive).
func (c *http2Conn) Ping() { c.cb.Put(&controlbuf.Ping{Data: keepalivePing}) }

// keepalivePing is the payload of keepalive pings.
var keepalivePing = [8]byte{'k', 'e', 'e', 'p', 'a', 'l', 'v', 'e'}

// writeAll writes the connection preamble (preface and SETTINGS) before
// loopy starts.
func writePreamble(w io.Writer, preface bool, ss []http2.Setting, connInc uint32) error {
	var buf preambleBuffer
	if preface {
		buf.b = append(buf.b, http2.ClientPreface...)
	}
	fr := http2.NewFramer(&buf, nil)
	if err := fr.WriteSettings(ss...); err != nil {
		return err
	}
	if connInc > 0 {
		if err := fr.WriteWindowUpdate(0, connInc); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.b)
	return err
}

type preambleBuffer struct{ b []byte }

func (p *preambleBuffer) Write(b []byte) (int, error) {
	p.b = append(p.b, b...)
	return len(b), nil
}
