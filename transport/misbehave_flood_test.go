package transport

// Raw-peer tests of what a peer can make the server queue, buffer or run:
// control-frame floods, rapid reset, tiny and padded DATA frames.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// controlQueued reports the control items queued in c's controlbuf.
func controlQueued(c *http2Conn) int {
	n, _ := c.cb.Len()
	return n
}

// maxControlBound is what a flood may make a connection queue: the
// controlbuf throttle stops the reader once MaxQueuedControl items wait;
// the frame being handled when it engages may add one or two more.
const maxControlBound = controlbuf.MaxQueuedControl + 4

// socketBufferSize is the kernel buffer size of flood tests' sockets:
// small enough that a side that stops reading soon pushes back on the
// other, large enough (several loopback MSS) that TCP still moves data
// briskly once it reads again.
const socketBufferSize = 128 << 10

// shrinkBuffers sets a TCP connection's kernel buffers to
// socketBufferSize, which also stops the kernel from growing them.
func shrinkBuffers(c net.Conn) (net.Conn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if err := tc.SetReadBuffer(socketBufferSize); err != nil {
		return nil, err
	}
	if err := tc.SetWriteBuffer(socketBufferSize); err != nil {
		return nil, err
	}
	return c, nil
}

// newSmallBufferServer is newTestServer whose connections have small
// socket buffers: what the server writes to a peer that does not read
// backs up into loopy at once.
func newSmallBufferServer(t testing.TB, cfg ServerConfig, handler func(*ServerStream)) *testServer {
	t.Helper()
	return newTestServerWith(t, cfg, handler, shrinkBuffers)
}

// flood writes n frames (batch per write) from a goroutine until done or
// a write fails (the connection closed or the test ended).
type flood struct {
	sent atomic.Int64
	stop atomic.Bool // ends the flood after the batch being written
	done chan struct{}
	err  error // set before done is closed
}

func startFlood(p *rawPeer, n, batch int, frame func(fr *http2.Framer, i int) error) *flood {
	f := &flood{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for i := 0; i < n && !f.stop.Load(); i += batch {
			err := p.write(func(fr *http2.Framer) error {
				for j := i; j < min(i+batch, n); j++ {
					if err := frame(fr, j); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				f.err = err
				return
			}
			f.sent.Store(int64(min(i+batch, n)))
		}
	}()
	return f
}

// wait waits for the flood to end and returns its write error.
func (f *flood) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-f.done:
		return f.err
	case <-time.After(longWait):
		t.Fatalf("flood stuck at %d frames", f.sent.Load())
		return nil
	}
}

// watch samples sample() while the flood runs, until it is done or has
// made no progress for stall (it is blocked: the server stopped reading).
// It returns the largest sample and whether the flood stalled.
func (f *flood) watch(stall time.Duration, sample func() int) (maxSeen int, stalled bool) {
	last, since := int64(-1), time.Now()
	for {
		maxSeen = max(maxSeen, sample())
		select {
		case <-f.done:
			return max(maxSeen, sample()), false
		case <-time.After(200 * time.Microsecond):
		}
		if n := f.sent.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > stall {
			return maxSeen, true
		}
	}
}

// normalClientWorks checks that a new, well-behaved client connection to
// ts is served while another connection misbehaves.
func normalClientWorks(t *testing.T, ts *testServer) {
	t.Helper()
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	resp, _, err := unary(rawCtx(t), c, echoMethod, []byte("hello"), nil)
	if err != nil || string(resp) != "hello" {
		t.Fatalf("RPC on a second connection: %q, %v", resp, err)
	}
	c.Close(nil)
}

// ---- 6. control-frame floods ----

func TestRawControlFlood(t *testing.T) {
	ping := func(fr *http2.Framer, i int) error { return fr.WritePing(false, [8]byte{byte(i >> 8), byte(i)}) }
	settings := func(fr *http2.Framer, i int) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 4096})
	}
	for _, tc := range []struct {
		name   string
		policy keepalive.EnforcementPolicy
		frame  func(fr *http2.Framer, i int) error
		// tooManyPings: the server ends the flood itself with GOAWAY
		// ENHANCE_YOUR_CALM "too_many_pings" (ping-strike enforcement,
		// default policy) instead of throttling it.
		tooManyPings bool
		ack          http2.FrameType // the answer to each frame
	}{
		{
			// Pings allowed at any rate: only the controlbuf throttle
			// bounds what the flood makes the server queue.
			name:   "PING throttled",
			policy: keepalive.EnforcementPolicy{MinTime: time.Nanosecond, PermitWithoutStream: true},
			frame:  ping,
			ack:    http2.FramePing,
		},
		{name: "PING default policy", frame: ping, ack: http2.FramePing, tooManyPings: true},
		{name: "SETTINGS", frame: settings, ack: http2.FrameSettings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			// At most a million frames: the server must stop reading
			// (and so the flood stall) long before.
			const n = 1000000
			ts := newSmallBufferServer(t, ServerConfig{KeepalivePolicy: tc.policy}, echoHandler)
			p := dialRawClient(t, ts.addr(), rawPeerOpts{noRead: true, smallSocket: true})
			sc := ts.conn(0)
			f := startFlood(p, n, 500, tc.frame)
			maxQueued, stalled := f.watch(300*time.Millisecond, func() int { return controlQueued(&sc.http2Conn) })
			sent := f.sent.Load()
			t.Logf("sent %d frames, stalled %v, at most %d control items queued", sent, stalled, maxQueued)
			if maxQueued > maxControlBound {
				t.Errorf("%d control items queued during the flood, want at most %d", maxQueued, maxControlBound)
			}
			// Other connections are served all along.
			normalClientWorks(t, ts)

			f.stop.Store(true)
			// Count the answers rather than keep them.
			p.skip = func(f rawFrame) bool { return f.Type == tc.ack && f.Flags.Has(http2.FlagPingAck) } // same bit for SETTINGS
			p.startReader()
			if tc.tooManyPings {
				if stalled {
					t.Errorf("flood stalled after %d frames; want the connection closed", sent)
				}
				g := expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
				if string(g.Data) != keepalive.TooManyPingsDebugData {
					t.Errorf("GOAWAY debug data %q, want %q", g.Data, keepalive.TooManyPingsDebugData)
				}
				if acks := p.skipped.Load(); acks != keepalive.MaxPingStrikes+1 {
					t.Errorf("%d pings answered, want %d", acks, keepalive.MaxPingStrikes+1)
				}
				f.wait(t)
				return
			}
			// The server stopped reading: with the socket buffers full
			// the flood could not go on.
			if !stalled {
				t.Fatalf("the flood of %d frames never stalled: the server read on without bound", sent)
			}
			// Once the peer reads, the server reads again: every frame
			// is answered and the connection still serves RPCs.
			if err := f.wait(t); err != nil {
				t.Fatalf("flood: %v", err)
			}
			sent = f.sent.Load()
			if tc.ack == http2.FrameSettings {
				sent++ // the SETTINGS after the preface
			}
			pollUntil(t, fmt.Sprintf("all %d frames to be answered", sent), func() bool { return p.skipped.Load() == sent })
			p.unaryOK(1, echoMethod)
			p.expectNone(anyGoAway(), 0)
		})
	}
}

func TestRawPingEnforcement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream bool // pings while a stream is open
	}{
		{name: "no stream"},
		{name: "open stream", stream: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, h, p := startRaw(t, ServerConfig{KeepalivePolicy: keepalive.EnforcementPolicy{MinTime: time.Hour}})
			if tc.stream {
				openBlocked(t, p, h, 1)
			}
			// The first ping is free, then MaxPingStrikes are forgiven.
			for i := range keepalive.MaxPingStrikes + 1 {
				p.must(p.writePing([8]byte{byte(i)}))
				p.expect(isPingAck())
			}
			p.expectNone(anyGoAway(), shortWait)
			p.must(p.writePing([8]byte{9}))
			g := expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
			if string(g.Data) != keepalive.TooManyPingsDebugData {
				t.Errorf("GOAWAY debug data %q, want %q", g.Data, keepalive.TooManyPingsDebugData)
			}
			p.expectNone(isPingAck(), 0)
			if tc.stream {
				if e := h.waitEnded(t); status.Code(e.readErr) != codes.Unavailable {
					t.Errorf("handler Read: %v, want UNAVAILABLE", e.readErr)
				}
			}
		})
	}
}

// ---- 7. rapid reset (CVE-2023-44487) ----

func TestRawRapidReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lazy handlers ignore their context until released: the
		// reader must stop at MaxConcurrentStreams running handlers.
		lazy bool
	}{
		{name: "handlers watch their context"},
		{name: "handlers ignore their context", lazy: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testRapidReset(t, tc.lazy) })
	}
}

func testRapidReset(t *testing.T, lazy bool) {
	noLeaks(t)
	const (
		pairs      = 10000
		maxStreams = 100
	)
	var running, maxRunning, started, finished atomic.Int64
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseAll()
	ts := newTestServer(t, ServerConfig{MaxConcurrentStreams: maxStreams}, func(s *ServerStream) {
		if s.Method() != blockMethod {
			echoHandler(s)
			return
		}
		started.Add(1)
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		if lazy {
			<-release
		} else {
			<-s.Context().Done()
		}
		running.Add(-1)
		finished.Add(1)
		s.WriteStatus(status.FromContextError(s.Context().Err()))
	})
	p := dialRawClient(t, ts.addr(), rawPeerOpts{})
	p.expect(isType(http2.FrameSettings))
	sc := ts.conn(0)
	base := runtime.NumGoroutine()

	f := startFlood(p, 2*pairs, 200, func(fr *http2.Framer, i int) error {
		id := uint32(2*(i/2) + 1)
		if i%2 == 0 {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.encode(reqFields(blockMethod)), EndHeaders: true})
		}
		return fr.WriteRSTStream(id, http2.ErrCodeCancel)
	})
	var maxGoroutines, maxQueued int
	sample := func() int {
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
		maxQueued = max(maxQueued, controlQueued(&sc.http2Conn))
		return 0
	}
	if lazy {
		// The reader waits for a handler slot: the flood goes no
		// further than the socket buffers take.
		f.watch(300*time.Millisecond, sample)
		pollUntil(t, "MaxConcurrentStreams handlers", func() bool { return running.Load() == maxStreams })
		time.Sleep(shortWait)
		sample()
		if n := started.Load(); n != maxStreams {
			t.Errorf("%d handlers started while %d were running", n, maxStreams)
		}
		f.stop.Store(true)
		releaseAll()
	} else {
		f.watch(longWait, sample)
	}
	if err := f.wait(t); err != nil {
		t.Fatalf("flood: %v", err)
	}
	sent := f.sent.Load() / 2
	pollUntil(t, "all handlers to finish", func() bool {
		return running.Load() == 0 && started.Load() == finished.Load() && sc.activeStreams() == 0 &&
			started.Load()+int64(countRST(p, http2.ErrCodeRefusedStream)) >= sent
	})
	refused := countRST(p, http2.ErrCodeRefusedStream)
	t.Logf("%d pairs sent, %d handlers ran (at most %d at once), %d streams refused; at most %d goroutines (%d before), %d control items queued",
		sent, started.Load(), maxRunning.Load(), refused, maxGoroutines, base, maxQueued)
	if m := maxRunning.Load(); m > maxStreams {
		t.Errorf("%d handlers ran at once, want at most MaxConcurrentStreams = %d", m, maxStreams)
	}
	if maxGoroutines > base+maxStreams+20 {
		t.Errorf("%d goroutines during the flood (%d before)", maxGoroutines, base)
	}
	if maxQueued > maxControlBound {
		t.Errorf("%d control items queued, want at most %d", maxQueued, maxControlBound)
	}
	// The connection is not closed: it still serves RPCs.
	p.unaryOK(uint32(2*sent+1), echoMethod)
	p.expectNone(anyGoAway(), 0)
}

// countRST counts the RST_STREAM frames with code received so far.
func countRST(p *rawPeer, code http2.ErrCode) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.frames {
		if f.Type == http2.FrameRSTStream && f.Code == code {
			n++
		}
	}
	return n
}

// ---- 8. one-byte DATA frames ----

// slowReader serves a stream whose handler reads nothing until release
// is closed, then reads everything and ends with OK.
type slowReader struct {
	started chan *ServerStream
	release chan struct{}
	got     chan []byte
}

func newSlowReader() *slowReader {
	return &slowReader{started: make(chan *ServerStream, 1), release: make(chan struct{}), got: make(chan []byte, 1)}
}

func (h *slowReader) handle(s *ServerStream) {
	if s.Method() != blockMethod {
		echoHandler(s)
		return
	}
	h.started <- s
	select {
	case <-h.release:
	case <-s.Context().Done():
	}
	b, err := io.ReadAll(s)
	h.got <- b
	s.WriteStatus(status.Convert(err))
}

func TestRawOneByteDataFrames(t *testing.T) {
	const (
		window = 65535
		n      = 60000
	)
	// A fixed window turns BDP growth off: the window stays 65535.
	cfg := ServerConfig{InitialWindowSize: window, InitialConnWindowSize: window}
	setup := func(t *testing.T) (*slowReader, *rawPeer, *ServerStream) {
		noLeaks(t)
		h := newSlowReader()
		ts := newTestServer(t, cfg, h.handle)
		p := dialRawClient(t, ts.addr(), rawPeerOpts{})
		p.expect(isType(http2.FrameSettings))
		p.must(p.writeHeaders(1, false, reqFields(blockMethod)))
		s := rawRecv(t, h.started, "the handler to start")
		f := startFlood(p, n, 1000, func(fr *http2.Framer, i int) error { return fr.WriteData(1, false, []byte{byte(i)}) })
		if err := f.wait(t); err != nil {
			t.Fatalf("writing DATA: %v", err)
		}
		pollUntil(t, "the server to take every byte", func() bool { u, _ := s.BufferStats(); return u == n })
		// Packed: the memory held is the unread bytes rounded up to
		// whole chunks, not a chunk (or a frame's buffer) per frame.
		unread, held := s.BufferStats()
		if held > unread+recvChunkSize {
			t.Errorf("%d unread bytes held in %d bytes of memory", unread, held)
		}
		return h, p, s
	}
	t.Run("read", func(t *testing.T) {
		h, p, s := setup(t)
		// Nothing read: no stream WINDOW_UPDATE; the connection window
		// is refunded regardless of the application.
		p.expectNone(framePred{"stream WINDOW_UPDATE", func(f rawFrame) bool {
			return f.Type == http2.FrameWindowUpdate && f.StreamID == 1
		}}, shortWait)
		pollUntil(t, "connection WINDOW_UPDATEs for the bytes taken", func() bool { return p.sumWindowUpdates(0) >= n-window/4 })
		close(h.release)
		pollUntil(t, "the stream window to reopen", func() bool { return p.sumWindowUpdates(1) >= n-window/4 })
		p.must(p.writeData(1, true, nil))
		b := rawRecv(t, h.got, "the handler to read")
		if len(b) != n {
			t.Fatalf("handler read %d bytes, want %d", len(b), n)
		}
		for i, c := range b {
			if c != byte(i) {
				t.Fatalf("byte %d is %d, want %d", i, c, byte(i))
			}
		}
		if r := p.readResponse(1); r.field("grpc-status") != "0" {
			t.Errorf("response %+v", r.frames)
		}
		if _, held := s.BufferStats(); held != 0 {
			t.Errorf("%d bytes held after the stream ended", held)
		}
	})
	t.Run("over the window", func(t *testing.T) {
		h, p, s := setup(t)
		// Fill the stream window exactly: fine.
		p.must(p.writeData(1, false, make([]byte, window-n)))
		pollUntil(t, "the server to take every byte", func() bool { u, _ := s.BufferStats(); return u == window })
		p.expectNone(anyRST(1), shortWait)
		// One byte more is a stream FLOW_CONTROL_ERROR (RFC 9113 §6.9.1).
		// The connection window had room: the connection carries on.
		p.must(p.writeData(1, false, []byte{1}))
		p.expect(isRST(1, http2.ErrCodeFlowControl))
		if b := rawRecv(t, h.got, "the handler to read"); len(b) != 0 {
			t.Errorf("handler read %d bytes of a reset stream", len(b))
		}
		if unread, held := s.BufferStats(); unread != 0 || held != 0 {
			t.Errorf("reset stream still holds %d unread bytes in %d bytes", unread, held)
		}
		p.unaryOK(3, echoMethod)
		p.expectNone(anyGoAway(), 0)
	})
}

// ---- 14. padded DATA ----

func TestRawPaddedData(t *testing.T) {
	const window = 65535
	cfg := ServerConfig{InitialWindowSize: window, InitialConnWindowSize: window}
	t.Run("padding refunded", func(t *testing.T) {
		noLeaks(t)
		h := newSlowReader()
		ts := newTestServer(t, cfg, h.handle)
		p := dialRawClient(t, ts.addr(), rawPeerOpts{})
		p.expect(isType(http2.FrameSettings))
		p.must(p.writeHeaders(1, false, reqFields(blockMethod)))
		s := rawRecv(t, h.started, "the handler to start")

		// 1000 frames of one data byte and 254 bytes of padding (256
		// bytes of flow control with the pad length byte), four times
		// the window, sent as a well-behaved peer: only within the
		// windows the server opened. The handler reads nothing, so only
		// refunded padding can reopen the stream window.
		const frames, pad = 1000, 254
		streamWin, connWin := int64(window), int64(window)
		var wantData []byte
		for i := 0; i < frames; {
			if streamWin < pad+2 || connWin < pad+2 {
				u := p.expect(isType(http2.FrameWindowUpdate))
				if u.StreamID == 0 {
					connWin += int64(u.Increment)
				} else if u.StreamID == 1 {
					streamWin += int64(u.Increment)
				}
				continue
			}
			p.must(p.write(func(fr *http2.Framer) error {
				return fr.WriteDataPadded(1, false, []byte{byte(i)}, make([]byte, pad))
			}))
			wantData = append(wantData, byte(i))
			streamWin -= pad + 2
			connWin -= pad + 2
			i++
		}
		pollUntil(t, "the server to take every byte", func() bool { u, _ := s.BufferStats(); return u == frames })
		// Every byte of padding is refunded but for less than the
		// quarter window the server waits for before it sends an update.
		want := uint64(frames*(pad+1) - window/4)
		pollUntil(t, fmt.Sprintf("stream WINDOW_UPDATEs to add up to %d (the padding)", want), func() bool {
			return p.sumWindowUpdates(1) >= want
		})
		if refunded := p.sumWindowUpdates(1); refunded > frames*(pad+1) {
			t.Errorf("stream WINDOW_UPDATEs add up to %d, more than the %d bytes of padding", refunded, frames*(pad+1))
		}
		close(h.release)
		p.must(p.writeData(1, true, nil))
		if b := rawRecv(t, h.got, "the handler to read"); !bytes.Equal(b, wantData) {
			t.Errorf("handler read %d bytes %q..., want the %d data bytes without padding", len(b), b[:min(len(b), 8)], frames)
		}
		if r := p.readResponse(1); r.field("grpc-status") != "0" {
			t.Errorf("response %+v", r.frames)
		}
	})
	for _, tc := range []struct {
		name    string
		payload []byte // of a DATA frame with PADDED set
	}{
		{name: "pad length past the frame", payload: []byte{200, 'a', 'b'}},
		{name: "pad length equal to the frame", payload: []byte{2, 'a'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, h, p := startRaw(t, cfg)
			openBlocked(t, p, h, 1)
			// RFC 9113 §6.1: padding as long as the payload or longer is
			// a connection error PROTOCOL_ERROR.
			p.write(func(fr *http2.Framer) error {
				return fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, tc.payload)
			})
			expectGoAway(t, p, http2.ErrCodeProtocol)
			h.waitEnded(t)
		})
	}
}
