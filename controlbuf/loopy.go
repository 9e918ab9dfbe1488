package controlbuf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 limits loopy applies to the peer's settings (RFC 9113 §6.5.2).
const (
	// defaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE until the peer says
	// otherwise, and the smallest value it may say.
	defaultMaxFrameSize = 1 << 14
	// maxMaxFrameSize is the largest SETTINGS_MAX_FRAME_SIZE allowed.
	maxMaxFrameSize = 1<<24 - 1
	// maxStreamID is the largest stream id (31 bits, RFC 9113 §5.1.1).
	maxStreamID = 1<<31 - 1
	// headerBufRetain is the capacity of the header encoding buffer kept
	// between header blocks; a larger one, grown by a big block, is
	// released.
	headerBufRetain = 16 << 10
	// minBatchSize: with fewer bytes than this buffered and nothing else
	// queued, loopy yields the processor once before flushing (drain).
	minBatchSize = 1 << 10
)

// Config configures a Loopy.
type Config struct {
	// Client selects the client side: loopy assigns stream ids and holds
	// opening HEADERS back under the peer's MAX_CONCURRENT_STREAMS.
	Client bool
	// Conn is where frames are written, usually the net.Conn. Loopy is
	// its only writer.
	Conn io.Writer
	// Buffer is the queue loopy drains.
	Buffer *Buffer
	// WriteBufferSize is the size of loopy's write buffer; 0 means
	// DefaultWriteBufferSize (32 KiB).
	WriteBufferSize int
	// BDP, when non-nil, is told when a BDP ping is written.
	BDP *flowcontrol.BDPEstimator
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// OnSettingsApplied, when set, is called on the loopy goroutine for
	// each peer setting after loopy applied it (the transport mirrors
	// MAX_CONCURRENT_STREAMS and the like).
	OnSettingsApplied func(http2.Setting)
	// OnStreamError, when set, is called on the loopy goroutine when loopy
	// itself reset a stream: the peer pushed the stream's send window past
	// 2^31-1 (err wraps flowcontrol.ErrFlowControl, RST_STREAM
	// FLOW_CONTROL_ERROR was written). The stream is already removed from
	// loopy; the transport should fail it.
	OnStreamError func(streamID uint32, err error)
	// OnDataWritten, when set, is called on the loopy goroutine after
	// each DATA frame is written to the write buffer. A server forgives
	// the client's ping strikes with it: a client is expected to ping
	// (BDP pings, keepalive) while it receives data, and one message can
	// take many round trips to send.
	OnDataWritten func()
	// WriteBudget, when set, is the connection's budget of queued
	// message bytes (see flowcontrol.WriteBudget): loopy gives back the
	// bytes of DataFrames marked Budgeted once it wrote them to Conn, and
	// at once those of such frames it drops unsent (their stream was
	// cleaned up or reset).
	WriteBudget *flowcontrol.WriteBudget
}

// Loopy is the writer of one HTTP/2 connection: the only goroutine that
// writes to Conn. It drains the Buffer, keeps the send-side flow control,
// encodes headers with an HPACK encoder of its own, sends the streams' data
// round-robin (one frame per stream per turn) and flushes its write buffer
// only when the Buffer is empty or the write buffer is full.
type Loopy struct {
	cfg  Config
	buf  *Buffer
	w    frameWriter
	log  *slog.Logger
	enc  *hpack.Encoder
	hbuf headerBuf // enc's output

	out     *flowcontrol.OutFlow
	streams map[uint32]*Stream // open (client) or registered (server) streams
	active  streamList         // streams with something writable, round-robin
	held    queue[*Stream]     // client: streams whose opening HEADERS wait for a slot

	nextID    uint32 // client: id of the next stream to open
	maxPeerID uint32 // server: highest registered stream id
	draining  bool   // a final GOAWAY was written

	// The peer's settings.
	maxFrame      int    // SETTINGS_MAX_FRAME_SIZE
	maxHeaderList uint64 // SETTINGS_MAX_HEADER_LIST_SIZE
	maxConcurrent uint32 // SETTINGS_MAX_CONCURRENT_STREAMS
}

// headerBuf collects the HPACK encoder's output.
type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// NewLoopy returns a Loopy for cfg; Run starts it.
func NewLoopy(cfg Config) *Loopy {
	l := &Loopy{
		cfg:           cfg,
		buf:           cfg.Buffer,
		w:             newFrameWriter(cfg.Conn, cfg.WriteBufferSize),
		log:           cfg.Logger,
		out:           flowcontrol.NewOutFlow(),
		streams:       make(map[uint32]*Stream),
		nextID:        1,
		maxFrame:      defaultMaxFrameSize,
		maxHeaderList: math.MaxUint64, // unlimited until the peer says (RFC 9113 §6.5.2)
		maxConcurrent: math.MaxUint32, // unlimited until the peer says
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.w.budget = cfg.WriteBudget
	l.enc = hpack.NewEncoder(&l.hbuf)
	return l
}

// Run drains the Buffer until one of these ends it:
//   - the Buffer was finished: the error wraps ErrClosed;
//   - writing to Conn failed: the error wraps the write error;
//   - a GoAway with CloseConn was written: the error wraps ErrConnClosing;
//   - a final GOAWAY was written and no stream remains: ErrDrained;
//   - the peer broke connection flow control or sent an invalid setting:
//     loopy wrote GOAWAY and the error wraps flowcontrol.ErrFlowControl or
//     http2.ConnectionError.
//
// On return, Run finishes the Buffer with its error and calls OnOrphaned of
// every HeaderFrame it still held. It does not close Conn.
func (l *Loopy) Run() (err error) {
	defer func() { l.shutdown(err) }()
	for {
		it, err := l.buf.Get(true)
		if err != nil {
			return err
		}
		if err := l.step(it); err != nil {
			return err
		}
		if err := l.drain(); err != nil {
			return err
		}
	}
}

// drain handles queued items and writes stream data, one frame after
// each item so data moves while control items keep coming, until there is
// nothing left to do; then it flushes.
func (l *Loopy) drain() error {
	yielded := false
	for {
		it, err := l.buf.Get(false)
		if err != nil {
			return err
		}
		if it != nil {
			if err := l.step(it); err != nil {
				return err
			}
			continue
		}
		idle, err := l.processData()
		if err != nil {
			return err
		}
		if err := l.writeErr(); err != nil {
			return err
		}
		if idle && !yielded && l.w.pending() > 0 && l.w.pending() < minBatchSize {
			// A small batch: let the producers run once before the
			// syscall, so that what usually follows at once (a request's
			// DATA after its HEADERS, a response's trailers after its
			// message) leaves in the same write.
			yielded = true
			runtime.Gosched()
			continue
		}
		if idle {
			// Nothing left to do: write what is buffered and give the
			// buffer back until the next burst.
			l.w.release()
			return l.writeErr()
		}
	}
}

// step handles one item and gives the round-robin one turn.
func (l *Loopy) step(it Item) error {
	if err := l.handle(it); err != nil {
		return err
	}
	if _, err := l.processData(); err != nil {
		return err
	}
	return l.writeErr()
}

func (l *Loopy) writeErr() error {
	if l.w.err != nil {
		return fmt.Errorf("controlbuf: writing to the connection: %w", l.w.err)
	}
	return nil
}

func (l *Loopy) handle(it Item) error {
	switch it := it.(type) {
	case *DataFrame:
		l.queueData(it)
	case *HeaderFrame:
		return l.queueHeaders(it)
	case *RegisterStream:
		l.register(it.Stream)
	case *CleanupStream:
		return l.cleanup(it, nil)
	case *EarlyAbort:
		l.earlyAbort(it)
	case *ResetStream:
		if _, ok := l.streams[it.StreamID]; ok {
			l.log.Debug("controlbuf: reset dropped, the stream's last frames are queued", "stream", it.StreamID, "code", it.Code)
			return nil
		}
		l.w.rstStream(it.StreamID, it.Code)
	case *IncomingWindowUpdate:
		return l.incomingWindowUpdate(it.StreamID, it.Increment)
	case *peerWindowDue:
		return l.peerWindowUpdate(it)
	case *OutgoingWindowUpdate:
		l.w.windowUpdate(it.StreamID, it.Increment)
	case *windowUpdateDue:
		l.windowUpdate(it)
	case *IncomingSettings:
		return l.applySettings(it.Settings)
	case *OutgoingSettings:
		l.w.settings(it.Settings)
	case *Ping:
		if !it.Ack && l.cfg.BDP != nil && it.Data == flowcontrol.BDPPing {
			l.cfg.BDP.Timesnap(it.Data)
		}
		l.w.ping(it.Ack, it.Data)
	case *GoAway:
		return l.goAway(it)
	}
	return nil
}

// applySettings applies the peer's SETTINGS (RFC 9113 §6.5.2) and writes
// the ack.
func (l *Loopy) applySettings(list []http2.Setting) error {
	for _, s := range list {
		switch s.ID {
		case http2.SettingHeaderTableSize:
			// The peer's decoder table bounds our encoder's table
			// (RFC 7541 §4.2).
			l.enc.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingMaxFrameSize:
			if s.Val < defaultMaxFrameSize || s.Val > maxMaxFrameSize {
				return l.connError(http2.ErrCodeProtocol, fmt.Errorf(
					"controlbuf: peer SETTINGS_MAX_FRAME_SIZE %d out of range: %w",
					s.Val, http2.ConnectionError(http2.ErrCodeProtocol)))
			}
			l.maxFrame = int(s.Val)
		case http2.SettingInitialWindowSize:
			if err := l.setInitialWindow(s.Val); err != nil {
				return err
			}
		case http2.SettingMaxConcurrentStreams:
			l.maxConcurrent = s.Val
		case http2.SettingMaxHeaderListSize:
			l.maxHeaderList = uint64(s.Val)
		}
		if l.cfg.OnSettingsApplied != nil {
			l.cfg.OnSettingsApplied(s)
		}
	}
	l.w.settingsAck()
	if l.cfg.Client {
		l.releaseHeld()
	}
	return nil
}

// setInitialWindow applies SETTINGS_INITIAL_WINDOW_SIZE: every stream's
// window moves by the change (RFC 9113 §6.9.2); a window pushed past
// 2^31-1 is a connection error, and a stream whose window turned positive
// goes back to the round-robin.
func (l *Loopy) setInitialWindow(v uint32) error {
	if err := l.out.SetInitialWindow(v); err != nil {
		return l.connError(http2.ErrCodeFlowControl, err)
	}
	for id, s := range l.streams {
		q := l.out.StreamQuota(&s.out)
		if q > int64(flowcontrol.MaxWindowSize) {
			return l.connError(http2.ErrCodeFlowControl, fmt.Errorf(
				"controlbuf: SETTINGS_INITIAL_WINDOW_SIZE %d takes stream %d's window to %d: %w",
				v, id, q, flowcontrol.ErrFlowControl))
		}
		if q > 0 && s.state == stateWaitingQuota {
			s.state = stateActive
			l.active.pushBack(s)
		}
	}
	return nil
}

// goAway writes a GOAWAY (RFC 9113 §6.8). A heads-up GOAWAY (last stream
// id 2^31-1) followed by a PING starts a graceful shutdown: streams the
// peer opens until it has seen it still count, and the ping's ack tells
// when the peer has. The final GOAWAY carries the real last stream id; from
// then on loopy drains.
func (l *Loopy) goAway(g *GoAway) error {
	if g.HeadsUp {
		l.w.goAway(maxStreamID, http2.ErrCodeNo, g.DebugData)
		l.w.ping(false, GoAwayPing)
		return nil
	}
	l.w.goAway(g.LastStreamID, g.Code, g.DebugData)
	if g.CloseConn {
		l.w.flush()
		if err := l.writeErr(); err != nil {
			return err
		}
		return fmt.Errorf("controlbuf: wrote GOAWAY %v: %w", g.Code, ErrConnClosing)
	}
	l.draining = true
	// Held opening HEADERS will never go out now.
	err := fmt.Errorf("controlbuf: stream not opened, GOAWAY written: %w", ErrDrained)
	l.held.clear(func(s *Stream) {
		if s.state == stateHeld {
			l.dropUnopened(s, err)
		}
	})
	return l.checkDrained()
}

// checkDrained ends Run with ErrDrained once a final GOAWAY was written
// and no stream remains.
func (l *Loopy) checkDrained() error {
	if !l.draining || len(l.streams) > 0 {
		return nil
	}
	l.w.flush()
	if err := l.writeErr(); err != nil {
		return err
	}
	return ErrDrained
}

// connError writes GOAWAY(code) for a connection error the peer caused and
// returns err for Run to end with.
func (l *Loopy) connError(code http2.ErrCode, err error) error {
	var last uint32
	if !l.cfg.Client {
		last = l.maxPeerID
	}
	l.log.Debug("controlbuf: connection error", "code", code, "err", err)
	l.w.goAway(last, code, nil)
	l.w.flush()
	return err
}

// shutdown runs when Run returns: it finishes the Buffer and orphans every
// header loopy still holds.
func (l *Loopy) shutdown(err error) {
	l.buf.Finish(err)
	closeErr := l.buf.closedErr()
	l.held.clear(func(s *Stream) {
		if s.state == stateHeld {
			l.dropUnopened(s, closeErr)
		}
	})
	for _, s := range l.streams {
		l.removeStream(s, closeErr)
	}
}

// errNotOpened is given to OnOrphaned of client headers for a stream whose
// opening HeaderFrame (with an Opener) loopy never got.
var errNotOpened = errors.New("controlbuf: headers for a client stream that was never opened")
