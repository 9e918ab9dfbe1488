package controlbuf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Test timeouts: long for what must happen, short for what must not.
const (
	longTimeout  = 10 * time.Second
	shortTimeout = 50 * time.Millisecond
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memConn is an in-memory connection that never blocks the writer: loopy
// writes into it, the test's peer reads from it. It counts Write calls.
type memConn struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	closed  bool
	failErr error // Write fails with it when set
	wake    chan struct{}
}

func newMemConn() *memConn { return &memConn{wake: make(chan struct{}, 1)} }

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.failErr != nil {
		err := c.failErr
		c.mu.Unlock()
		return 0, err
	}
	c.buf.Write(p)
	c.writes++
	c.mu.Unlock()
	c.signal()
	return len(p), nil
}

func (c *memConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.buf.Len() > 0 {
			n, _ := c.buf.Read(p)
			c.mu.Unlock()
			return n, nil
		}
		if c.closed {
			c.mu.Unlock()
			return 0, io.EOF
		}
		c.mu.Unlock()
		<-c.wake
	}
}

func (c *memConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *memConn) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
}

func (c *memConn) Writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *memConn) fail(err error) {
	c.mu.Lock()
	c.failErr = err
	c.mu.Unlock()
}

// frame is a copy of one frame the peer read.
type frame struct {
	Type      http2.FrameType
	Flags     http2.Flags
	StreamID  uint32
	Data      []byte // DATA payload, PING data, GOAWAY debug data, raw header fragment
	Fields    []hpack.HeaderField
	Code      http2.ErrCode
	LastID    uint32
	Increment uint32
	Settings  []http2.Setting
}

func (f frame) String() string {
	return fmt.Sprintf("%v stream=%d flags=%#x len=%d", f.Type, f.StreamID, f.Flags, len(f.Data))
}

// peer reads frames from a memConn with an http2.Framer. In meta mode the
// framer merges HEADERS and CONTINUATION (ReadMetaHeaders); in raw mode
// each frame is reported as is and a header block's fields are attached
// to its last frame.
type peer struct {
	t      *testing.T
	frames chan frame
	done   chan struct{}
	err    error // read error that ended the reader; valid after done
}

func newPeer(t *testing.T, conn *memConn, raw bool) *peer {
	p := &peer{t: t, frames: make(chan frame, 1<<14), done: make(chan struct{})}
	fr := http2.NewFramer(nil, conn)
	dec := hpack.NewDecoder(4096, nil)
	if !raw {
		fr.ReadMetaHeaders = dec
	}
	go func() {
		defer close(p.done)
		defer close(p.frames)
		var block []byte
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				p.err = err
				return
			}
			c := frame{Type: f.Header().Type, Flags: f.Header().Flags, StreamID: f.Header().StreamID}
			endBlock := false
			switch f := f.(type) {
			case *http2.DataFrame:
				c.Data = bytes.Clone(f.Data())
			case *http2.MetaHeadersFrame:
				c.Fields = append([]hpack.HeaderField(nil), f.Fields...)
			case *http2.HeadersFrame:
				c.Data = bytes.Clone(f.HeaderBlockFragment())
				block = append(block[:0], c.Data...)
				endBlock = f.HeadersEnded()
			case *http2.ContinuationFrame:
				c.Data = bytes.Clone(f.HeaderBlockFragment())
				block = append(block, c.Data...)
				endBlock = f.HeadersEnded()
			case *http2.RSTStreamFrame:
				c.Code = f.ErrCode
			case *http2.GoAwayFrame:
				c.LastID, c.Code, c.Data = f.LastStreamID, f.ErrCode, bytes.Clone(f.DebugData())
			case *http2.WindowUpdateFrame:
				c.Increment = f.Increment
			case *http2.SettingsFrame:
				_ = f.ForeachSetting(func(s http2.Setting) error {
					c.Settings = append(c.Settings, s)
					return nil
				})
			case *http2.PingFrame:
				c.Data = bytes.Clone(f.Data[:])
			}
			if endBlock {
				fields, err := dec.DecodeFull(block)
				if err != nil {
					p.err = err
					return
				}
				c.Fields = fields
			}
			p.frames <- c
		}
	}()
	return p
}

// next returns the next frame, failing the test if none comes in time.
func (p *peer) next() frame {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatalf("connection ended (%v) while a frame was expected", p.err)
		}
		return f
	case <-time.After(longTimeout):
		p.t.Fatalf("no frame within %v", longTimeout)
	}
	panic("unreachable")
}

// expect returns the next frame and checks its type and stream.
func (p *peer) expect(typ http2.FrameType, streamID uint32) frame {
	p.t.Helper()
	f := p.next()
	if f.Type != typ || f.StreamID != streamID {
		p.t.Fatalf("got frame %v, want %v on stream %d", f, typ, streamID)
	}
	return f
}

// harness runs a Loopy over a memConn, with a peer reading the frames.
type harness struct {
	t      *testing.T
	buf    *Buffer
	conn   *memConn
	peer   *peer
	loopy  *Loopy
	runErr chan error
	result *error // Run's result once received
	pingN  uint64
}

type harnessOpts struct {
	raw     bool // peer reads raw frames
	noStart bool // call start yourself
}

func newHarness(t *testing.T, cfg Config, o harnessOpts) *harness {
	h := &harness{t: t, buf: NewBuffer(), conn: newMemConn(), runErr: make(chan error, 1)}
	cfg.Buffer = h.buf
	cfg.Conn = h.conn
	h.loopy = NewLoopy(cfg)
	h.peer = newPeer(t, h.conn, o.raw)
	t.Cleanup(h.close)
	if !o.noStart {
		h.start()
	}
	return h
}

func (h *harness) start() {
	go func() { h.runErr <- h.loopy.Run() }()
}

func (h *harness) close() {
	h.buf.Finish(nil)
	if h.result == nil {
		select {
		case err := <-h.runErr:
			h.result = &err
		case <-time.After(longTimeout):
			h.t.Errorf("Run did not return after Finish")
		}
	}
	h.conn.Close()
	<-h.peer.done
}

// put queues items, failing the test on error.
func (h *harness) put(items ...Item) {
	h.t.Helper()
	for _, it := range items {
		if err := h.buf.Put(it); err != nil {
			h.t.Fatalf("Put(%T): %v", it, err)
		}
	}
}

// wait returns Run's result, failing the test if it does not return.
func (h *harness) wait() error {
	h.t.Helper()
	if h.result != nil {
		return *h.result
	}
	select {
	case err := <-h.runErr:
		h.result = &err
		return err
	case <-time.After(longTimeout):
		h.t.Fatalf("Run did not return within %v", longTimeout)
	}
	return nil
}

// sync puts a PING with a fresh payload and returns every frame loopy
// wrote before it. As loopy writes items in order, whatever is not among
// them was not written by the time loopy handled the ping.
func (h *harness) sync() []frame {
	h.t.Helper()
	h.pingN++
	var data [8]byte
	copy(data[:], fmt.Sprintf("sync%04d", h.pingN))
	h.put(&Ping{Data: data})
	var got []frame
	for {
		f := h.peer.next()
		if f.Type == http2.FramePing && bytes.Equal(f.Data, data[:]) {
			return got
		}
		got = append(got, f)
	}
}

// expectNothing checks that loopy wrote nothing more up to now.
func (h *harness) expectNothing() {
	h.t.Helper()
	if got := h.sync(); len(got) > 0 {
		h.t.Fatalf("unexpected frames: %v", got)
	}
}

// settings applies peer settings and reads the SETTINGS ack.
func (h *harness) settings(s ...http2.Setting) {
	h.t.Helper()
	h.put(&IncomingSettings{Settings: s})
	f := h.peer.expect(http2.FrameSettings, 0)
	if f.Flags&http2.FlagSettingsAck == 0 {
		h.t.Fatalf("got SETTINGS without ACK: %v", f)
	}
}

// register registers a server stream.
func (h *harness) register(id uint32) *Stream {
	s := NewServerStream(id, nil)
	h.put(&RegisterStream{Stream: s})
	return s
}

// readData reads DATA frames of a stream until one with END_STREAM or until
// n bytes arrived, returning the frame sizes and the bytes.
func (h *harness) readData(streamID uint32, n int) (sizes []int, data []byte) {
	h.t.Helper()
	for len(data) < n {
		f := h.peer.expect(http2.FrameData, streamID)
		sizes = append(sizes, len(f.Data))
		data = append(data, f.Data...)
		if f.Flags&http2.FlagDataEndStream != 0 {
			break
		}
	}
	return sizes, data
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func fieldsEqual(a, b []hpack.HeaderField) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// errTest is an error tests inject.
var errTest = errors.New("test error")
