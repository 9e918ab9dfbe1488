package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawPeer is one end of an HTTP/2 connection driven frame by frame by a
// test: it writes whatever frames the test crafts (valid or not) with an
// http2.Framer and an HPACK encoder of its own, and a reader goroutine
// records every frame the other side sends. As a client it talks to our
// http2Server; as a server it talks to our http2Client.
//
// Writes from the test goroutine and the reader (SETTINGS acks) are
// serialized. Frames are consumed by expect in arrival order: each call
// takes the earliest frame not yet taken that matches, so frames of other
// streams (or WINDOW_UPDATEs, PING acks) never get in the way.
type rawPeer struct {
	t    testing.TB
	conn net.Conn

	wmu  sync.Mutex // guards what follows and every write to conn
	wbuf bytes.Buffer
	wfr  *http2.Framer // writes into wbuf
	enc  *hpack.Encoder
	hbuf bytes.Buffer // enc's output

	rfr           *http2.Framer // the reader goroutine's
	autoAck       bool          // ack SETTINGS from the reader goroutine
	readerStarted bool          // test goroutine only
	readerDone    chan struct{}
	acks          sync.WaitGroup // goroutines writing SETTINGS acks
	pendingAcks   atomic.Int32   // SETTINGS acks not yet written
	// skip, if set before the reader starts, drops the frames it
	// matches after counting them in skipped (a flood's answers).
	skip    func(rawFrame) bool
	skipped atomic.Int64

	mu      sync.Mutex // guards what follows
	frames  []rawFrame
	taken   []bool
	first   int           // frames before it are all taken
	rerr    error         // why the reader stopped
	changed chan struct{} // closed and replaced when frames or rerr change
}

// rawFrame is a copy of a frame the peer received (the framer reuses its
// buffers, so nothing here points into them).
type rawFrame struct {
	Type         http2.FrameType
	Flags        http2.Flags
	StreamID     uint32
	Length       uint32
	Data         []byte              // DATA payload; GOAWAY debug data
	Fields       []hpack.HeaderField // HEADERS (with CONTINUATION), decoded
	Code         http2.ErrCode       // RST_STREAM, GOAWAY
	LastStreamID uint32              // GOAWAY
	Increment    uint32              // WINDOW_UPDATE
	PingData     [8]byte             // PING
	Settings     []http2.Setting     // SETTINGS
}

func (f rawFrame) String() string {
	s := fmt.Sprintf("%v stream=%d flags=%v len=%d", f.Type, f.StreamID, f.Flags, f.Length)
	switch f.Type {
	case http2.FrameRSTStream:
		s += fmt.Sprintf(" code=%v", f.Code)
	case http2.FrameGoAway:
		s += fmt.Sprintf(" code=%v last=%d debug=%q", f.Code, f.LastStreamID, f.Data)
	case http2.FrameWindowUpdate:
		s += fmt.Sprintf(" inc=%d", f.Increment)
	case http2.FrameHeaders:
		s += fmt.Sprintf(" fields=%v", f.Fields)
	}
	return s
}

// header returns the value of the named field of a HEADERS frame.
func (f rawFrame) header(name string) string {
	for _, hf := range f.Fields {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

func (f rawFrame) endStream() bool {
	switch f.Type {
	case http2.FrameHeaders, http2.FrameData:
		return f.Flags.Has(http2.FlagHeadersEndStream) // same bit for DATA
	}
	return false
}

// Frame predicates for expect.
type framePred struct {
	desc  string
	match func(rawFrame) bool
}

func anyGoAway() framePred {
	return framePred{"GOAWAY", func(f rawFrame) bool { return f.Type == http2.FrameGoAway }}
}

func isRST(id uint32, code http2.ErrCode) framePred {
	return framePred{fmt.Sprintf("RST_STREAM %v on stream %d", code, id), func(f rawFrame) bool {
		return f.Type == http2.FrameRSTStream && f.StreamID == id && f.Code == code
	}}
}

func anyRST(id uint32) framePred {
	return framePred{fmt.Sprintf("RST_STREAM on stream %d", id), func(f rawFrame) bool {
		return f.Type == http2.FrameRSTStream && f.StreamID == id
	}}
}

func anyHeaders() framePred {
	return framePred{"HEADERS", func(f rawFrame) bool { return f.Type == http2.FrameHeaders }}
}

func onStream(id uint32) framePred {
	return framePred{fmt.Sprintf("HEADERS, DATA or RST_STREAM on stream %d", id), func(f rawFrame) bool {
		if f.StreamID != id {
			return false
		}
		switch f.Type {
		case http2.FrameHeaders, http2.FrameData, http2.FrameRSTStream:
			return true
		}
		return false
	}}
}

func isType(t http2.FrameType) framePred {
	return framePred{t.String(), func(f rawFrame) bool { return f.Type == t }}
}

func isPingAck() framePred {
	return framePred{"PING ack", func(f rawFrame) bool {
		return f.Type == http2.FramePing && f.Flags.Has(http2.FlagPingAck)
	}}
}

// rawPeerOpts configure a raw peer.
type rawPeerOpts struct {
	// settings go in the peer's first SETTINGS frame.
	settings []http2.Setting
	// noRead leaves the reader goroutine unstarted (startReader starts it
	// later): the peer reads nothing, as a flooding peer would.
	noRead bool
	// smallSocket shrinks the socket's kernel buffers, so a peer that does
	// not read pushes back on the other side quickly.
	smallSocket bool
	// noAutoAck stops the reader from acking SETTINGS.
	noAutoAck bool
}

// dialRawClient connects a raw client peer to addr: the client preface
// and SETTINGS are written, and (unless noRead) the reader is started.
func dialRawClient(t testing.TB, addr string, o rawPeerOpts) *rawPeer {
	t.Helper()
	d := net.Dialer{Timeout: longWait}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if o.smallSocket {
		if _, err := shrinkBuffers(conn); err != nil {
			conn.Close()
			t.Fatal(err)
		}
	}
	p := newRawPeer(t, conn, o)
	err = p.write(func(fr *http2.Framer) error {
		p.wbuf.WriteString(http2.ClientPreface)
		return fr.WriteSettings(o.settings...)
	})
	if err != nil {
		t.Fatalf("writing the client preface: %v", err)
	}
	if !o.noRead {
		p.startReader()
	}
	return p
}

// rawServer listens on loopback for one connection of our client.
type rawServer struct {
	ln net.Listener
}

func newRawServer(t testing.TB) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &rawServer{ln: ln}
}

func (rs *rawServer) addr() string { return rs.ln.Addr().String() }

// accept takes the next connection, reads the client preface, writes our
// SETTINGS and starts the reader.
func (rs *rawServer) accept(t testing.TB, o rawPeerOpts) *rawPeer {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := rs.ln.Accept()
		ch <- result{c, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(longWait):
		rs.ln.Close()
		<-ch
		t.Fatal("no client connection")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.SetReadDeadline(time.Now().Add(longWait))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(r.c, preface); err != nil || string(preface) != http2.ClientPreface {
		r.c.Close()
		t.Fatalf("client preface %q, %v", preface, err)
	}
	r.c.SetReadDeadline(time.Time{})
	p := newRawPeer(t, r.c, o)
	if err := p.write(func(fr *http2.Framer) error { return fr.WriteSettings(o.settings...) }); err != nil {
		t.Fatalf("writing SETTINGS: %v", err)
	}
	if !o.noRead {
		p.startReader()
	}
	return p
}

func newRawPeer(t testing.TB, conn net.Conn, o rawPeerOpts) *rawPeer {
	p := &rawPeer{
		t:          t,
		conn:       conn,
		autoAck:    !o.noAutoAck,
		readerDone: make(chan struct{}),
		changed:    make(chan struct{}),
	}
	p.wfr = http2.NewFramer(&p.wbuf, nil)
	p.wfr.AllowIllegalWrites = true // a misbehaving peer
	p.enc = hpack.NewEncoder(&p.hbuf)
	p.rfr = http2.NewFramer(nil, conn)
	p.rfr.SetMaxReadFrameSize(1<<24 - 1)
	p.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	p.rfr.MaxHeaderListSize = 1 << 20
	t.Cleanup(p.close)
	return p
}

// close closes the connection and waits for the reader.
func (p *rawPeer) close() {
	p.conn.Close()
	if p.readerStarted {
		<-p.readerDone
	}
	p.acks.Wait()
}

// startReader starts the reader goroutine (once).
func (p *rawPeer) startReader() {
	if p.readerStarted {
		return
	}
	p.readerStarted = true
	go p.readLoop()
}

func (p *rawPeer) readLoop() {
	defer close(p.readerDone)
	for {
		f, err := p.rfr.ReadFrame()
		var se http2.StreamError
		if errors.As(err, &se) {
			// A malformed header block from the other side: keep it
			// as a frame the test can see, and read on.
			p.mu.Lock()
			p.frames = append(p.frames, rawFrame{Type: http2.FrameHeaders, StreamID: se.StreamID, Code: se.Code, Data: []byte(se.Error())})
			p.taken = append(p.taken, false)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			continue
		}
		if err != nil {
			p.mu.Lock()
			p.rerr = err
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			return
		}
		rf := copyFrame(f)
		if rf.Type == http2.FrameSettings && !rf.Flags.Has(http2.FlagSettingsAck) && p.autoAck {
			// The ack goes out with the next write, or alone from a
			// goroutine of its own: not from this one, since a flood
			// may hold the write lock, blocked until the other side
			// reads, which may wait for us to read. Counted before the
			// frame is recorded, so that a test write after expect
			// (SETTINGS) carries the ack first, never in the middle of
			// a header block.
			p.pendingAcks.Add(1)
			p.acks.Add(1)
			go func() {
				defer p.acks.Done()
				p.write(nil)
			}()
		}
		if p.skip != nil && p.skip(rf) {
			p.skipped.Add(1)
			continue
		}
		p.mu.Lock()
		p.frames = append(p.frames, rf)
		p.taken = append(p.taken, false)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

func copyFrame(f http2.Frame) rawFrame {
	h := f.Header()
	rf := rawFrame{Type: h.Type, Flags: h.Flags, StreamID: h.StreamID, Length: h.Length}
	switch f := f.(type) {
	case *http2.DataFrame:
		rf.Data = bytes.Clone(f.Data())
	case *http2.MetaHeadersFrame:
		rf.Type = http2.FrameHeaders
		rf.Fields = append([]hpack.HeaderField(nil), f.Fields...)
	case *http2.RSTStreamFrame:
		rf.Code = f.ErrCode
	case *http2.GoAwayFrame:
		rf.Code = f.ErrCode
		rf.LastStreamID = f.LastStreamID
		rf.Data = bytes.Clone(f.DebugData())
	case *http2.WindowUpdateFrame:
		rf.Increment = f.Increment
	case *http2.PingFrame:
		rf.PingData = f.Data
	case *http2.SettingsFrame:
		f.ForeachSetting(func(s http2.Setting) error {
			rf.Settings = append(rf.Settings, s)
			return nil
		})
	}
	return rf
}

// ---- writing ----

// write runs f with the peer's framer (writing into a buffer) and writes
// what it produced to the connection in one call, after any pending
// SETTINGS acks. Safe from any goroutine; f may be nil.
func (p *rawPeer) write(f func(fr *http2.Framer) error) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wbuf.Reset()
	for n := p.pendingAcks.Swap(0); n > 0; n-- {
		p.wfr.WriteSettingsAck()
	}
	if f != nil {
		if err := f(p.wfr); err != nil {
			return err
		}
	}
	if p.wbuf.Len() == 0 {
		return nil
	}
	_, err := p.conn.Write(p.wbuf.Bytes())
	return err
}

// encode HPACK-encodes fields with the peer's encoder. Caller holds wmu
// (it runs inside write), so the encoder's state follows the wire order.
func (p *rawPeer) encode(fields []hpack.HeaderField) []byte {
	p.hbuf.Reset()
	for _, f := range fields {
		p.enc.WriteField(f)
	}
	return bytes.Clone(p.hbuf.Bytes())
}

// must fails the test when a write failed.
func (p *rawPeer) must(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatalf("raw peer write: %v", err)
	}
}

// writeHeaders writes a complete header block in one HEADERS frame.
func (p *rawPeer) writeHeaders(id uint32, endStream bool, fields []hpack.HeaderField) error {
	return p.write(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID:      id,
			BlockFragment: p.encode(fields),
			EndStream:     endStream,
			EndHeaders:    true,
		})
	})
}

func (p *rawPeer) writeData(id uint32, endStream bool, data []byte) error {
	return p.write(func(fr *http2.Framer) error { return fr.WriteData(id, endStream, data) })
}

func (p *rawPeer) writeRST(id uint32, code http2.ErrCode) error {
	return p.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

func (p *rawPeer) writeWindowUpdate(id, inc uint32) error {
	return p.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, inc) })
}

func (p *rawPeer) writePing(data [8]byte) error {
	return p.write(func(fr *http2.Framer) error { return fr.WritePing(false, data) })
}

// writeMsg writes one gRPC message in a DATA frame.
func (p *rawPeer) writeMsg(id uint32, endStream bool, msg []byte) error {
	return p.writeData(id, endStream, append(frameMsg(len(msg)), msg...))
}

// reqFields returns a valid gRPC request for path with extra fields after
// it (name, value pairs).
func reqFields(path string, extra ...string) []hpack.HeaderField {
	fs := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path},
		{Name: ":authority", Value: "raw.test"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fs = append(fs, hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return fs
}

// respFields returns response headers (name, value pairs) in order.
func respFields(kv ...string) []hpack.HeaderField {
	var fs []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

// ---- reading ----

// find waits up to d for the earliest frame not yet taken that matches
// and takes it when take is set. It reports false when d passed or the
// connection ended first.
func (p *rawPeer) find(pred framePred, d time.Duration, take bool) (rawFrame, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	from := 0
	for {
		p.mu.Lock()
		if from < p.first {
			from = p.first
		}
		for i := from; i < len(p.frames); i++ {
			if p.taken[i] || !pred.match(p.frames[i]) {
				continue
			}
			f := p.frames[i]
			if take {
				p.taken[i] = true
				for p.first < len(p.frames) && p.taken[p.first] {
					p.first++
				}
			}
			p.mu.Unlock()
			return f, true
		}
		from = len(p.frames)
		ended := p.rerr != nil
		ch := p.changed
		p.mu.Unlock()
		if ended {
			return rawFrame{}, false
		}
		select {
		case <-ch:
		case <-timer.C:
			return rawFrame{}, false
		}
	}
}

// expect waits for a frame matching pred and takes it; the test fails if
// none comes within longWait.
func (p *rawPeer) expect(pred framePred) rawFrame {
	p.t.Helper()
	f, ok := p.find(pred, longWait, true)
	if !ok {
		p.t.Fatalf("no %s; the peer received:\n%s", pred.desc, p.dump())
	}
	return f
}

// expectNone fails the test if a frame matching pred arrives within d
// (or has arrived, untaken).
func (p *rawPeer) expectNone(pred framePred, d time.Duration) {
	p.t.Helper()
	if f, ok := p.find(pred, d, false); ok {
		p.t.Fatalf("unexpected %s: %v", pred.desc, f)
	}
}

// expectClosed waits until the other side closes the connection.
func (p *rawPeer) expectClosed() {
	p.t.Helper()
	select {
	case <-p.readerDone:
	case <-time.After(longWait):
		p.t.Fatalf("connection not closed; the peer received:\n%s", p.dump())
	}
}

// closed reports whether the reader saw the connection end.
func (p *rawPeer) closed() bool {
	select {
	case <-p.readerDone:
		return true
	default:
		return false
	}
}

// dump lists the frames received, for failure messages.
func (p *rawPeer) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	start := max(0, len(p.frames)-40)
	if start > 0 {
		fmt.Fprintf(&b, "  (%d earlier frames)\n", start)
	}
	for i := start; i < len(p.frames); i++ {
		mark := " "
		if p.taken[i] {
			mark = "*"
		}
		fmt.Fprintf(&b, " %s%v\n", mark, p.frames[i])
	}
	if p.rerr != nil {
		fmt.Fprintf(&b, "  read ended: %v\n", p.rerr)
	}
	return b.String()
}

// sumWindowUpdates adds up the increments of the WINDOW_UPDATEs received
// so far for stream id (0: the connection).
func (p *rawPeer) sumWindowUpdates(id uint32) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, f := range p.frames {
		if f.Type == http2.FrameWindowUpdate && f.StreamID == id {
			n += uint64(f.Increment)
		}
	}
	return n
}

// rawResponse is what a server sent on one stream.
type rawResponse struct {
	headers  []hpack.HeaderField // first HEADERS
	data     []byte
	trailers []hpack.HeaderField // HEADERS with END_STREAM after headers; nil for trailers-only
	rst      *http2.ErrCode      // RST_STREAM that ended the stream, if any
	frames   []rawFrame
}

// field returns the named field of the trailers, or of the only HEADERS
// of a trailers-only response ("" if absent).
func (r rawResponse) field(name string) string {
	fs := r.trailers
	if fs == nil {
		fs = r.headers
	}
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func (r rawResponse) httpStatus() string {
	for _, f := range r.headers {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// readResponse collects the frames of stream id until END_STREAM or
// RST_STREAM.
func (p *rawPeer) readResponse(id uint32) rawResponse {
	p.t.Helper()
	var r rawResponse
	for {
		f := p.expect(onStream(id))
		r.frames = append(r.frames, f)
		switch f.Type {
		case http2.FrameRSTStream:
			code := f.Code
			r.rst = &code
			return r
		case http2.FrameHeaders:
			if r.headers == nil {
				r.headers = f.Fields
			} else {
				r.trailers = f.Fields
			}
		case http2.FrameData:
			r.data = append(r.data, f.Data...)
		}
		if f.endStream() {
			return r
		}
	}
}

// unaryOK runs one echo RPC on stream id of the raw connection and checks
// it succeeds: the connection still serves new streams.
func (p *rawPeer) unaryOK(id uint32, path string) {
	p.t.Helper()
	p.must(p.writeHeaders(id, false, reqFields(path)))
	p.must(p.writeMsg(id, true, []byte("still alive")))
	r := p.readResponse(id)
	if r.rst != nil || r.httpStatus() != "200" || r.field("grpc-status") != "0" {
		p.t.Fatalf("RPC on stream %d after the misbehaviour failed: %+v", id, r.frames)
	}
	if want := append(frameMsg(11), "still alive"...); !bytes.Equal(r.data, want) {
		p.t.Fatalf("RPC on stream %d: data %q, want %q", id, r.data, want)
	}
}

// ---- server-side inspection ----

// noLeaks registers, before anything else the test sets up, a check
// that every goroutine the test started is gone once its cleanups ran.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// pollUntil polls cond until it holds, failing the test after longWait.
func pollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(longWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawRecv receives from ch, failing the test after longWait.
func rawRecv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(longWait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// rawCtx is a context bounded by longWait.
func rawCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	t.Cleanup(cancel)
	return ctx
}
