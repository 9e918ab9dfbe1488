package controlbuf

import (
	"io"
	"net"
	"sync"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"golang.org/x/net/http2"
)

// Frame layout constants, RFC 9113 §4.1 and §6.
const (
	frameHeaderLen = 9 // length(24) type(8) flags(8) R+stream id(32)

	// DefaultWriteBufferSize is loopy's write buffer when
	// Config.WriteBufferSize is 0.
	DefaultWriteBufferSize = 32 << 10
	// minWriteBufferSize is the smallest write buffer loopy uses; it
	// must hold the largest fixed-size piece written in one go (a frame
	// header plus a GOAWAY's fixed fields).
	minWriteBufferSize = 1 << 10

	// Vectored writes (see frameWriter). A DATA payload of at least
	// minRefSize bytes is referenced instead of copied; a batch holding
	// maxRefBytes referenced bytes or maxSegs pieces is written at once.
	// Fewer, larger writes cost less per byte: in the 1 MiB streaming
	// workloads of test/bench, batches of 512 KiB to 1 MiB ran a few
	// percent faster than 256 KiB and clearly faster than 64 KiB, while
	// a 512 KiB batch still leaves in a fraction of a millisecond.
	minRefSize  = 4 << 10
	maxRefBytes = 512 << 10
	maxSegs     = 256
)

// frameWriter encodes frames into a buffer of its own and writes the
// buffer to the connection only when told to flush or when it is full, so
// many frames leave in one write. Frame headers and payloads are copied
// straight into the buffer: writing a frame allocates nothing.
//
// The buffer is taken from a pool when a burst of frames starts and given
// back when loopy goes idle (release), so an idle connection holds no
// write buffer: with thousands of mostly idle connections that is most of
// their memory.
//
// On a connection that supports vectored writes (TCP and Unix sockets),
// large DATA payloads are not copied at all: the frameWriter keeps a
// reference to the producer's bytes between the buffered pieces and
// writes the whole batch with one writev. The producer must then not
// reuse those bytes until the batch is written, so callbacks that hand
// them back (DataFrame.OnDone) go through afterFlush.
//
// A write error is sticky: the frameWriter drops everything after it and
// the caller checks err.
type frameWriter struct {
	conn io.Writer
	pool *sync.Pool // of *[]byte with capacity size
	bp   *[]byte    // the pooled buffer while held
	buf  []byte     // len: bytes waiting; cap: the buffer size; nil while idle
	err  error

	vec      bool        // conn takes net.Buffers with one writev
	out      net.Buffers // segs while WriteTo consumes it
	segs     net.Buffers // pieces waiting, in order: buf[..mark] cut up, and referenced payloads
	mark     int         // buf[:mark] is already in segs
	refBytes int         // bytes referenced in segs
	after    []func()    // to run once the referenced bytes are written

	// budget, when set, is the connection's write budget: owed bytes of
	// budgeted DATA payload went into the batch since the last flush, and
	// are given back once the flush wrote them to the connection (not
	// before: bytes waiting in the batch, behind a socket the peer does
	// not read, still count).
	budget *flowcontrol.WriteBudget
	owed   int64
}

// writeBufPools holds one pool of write buffers per buffer size.
var writeBufPools sync.Map // int -> *sync.Pool

func writeBufPool(size int) *sync.Pool {
	if p, ok := writeBufPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := writeBufPools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, 0, size)
		return &b
	}})
	return p.(*sync.Pool)
}

func newFrameWriter(conn io.Writer, size int) frameWriter {
	if size <= 0 {
		size = DefaultWriteBufferSize
	}
	size = max(size, minWriteBufferSize)
	return frameWriter{conn: conn, pool: writeBufPool(size), vec: writesVectors(conn)}
}

// writesVectors reports whether net.Buffers.WriteTo(w) is one writev
// rather than a Write per piece, as it is for the standard library's
// socket connections.
func writesVectors(w io.Writer) bool {
	switch w.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// grab takes a buffer from the pool if the writer holds none.
func (w *frameWriter) grab() {
	if w.buf == nil {
		w.bp = w.pool.Get().(*[]byte)
		w.buf = (*w.bp)[:0]
	}
}

// release flushes and gives the buffer back to the pool.
func (w *frameWriter) release() {
	w.flush()
	if w.bp != nil {
		*w.bp = w.buf[:0]
		w.pool.Put(w.bp)
		w.bp, w.buf = nil, nil
	}
}

// flush writes the buffered bytes, and the referenced ones, to the
// connection, then runs the afterFlush callbacks.
func (w *frameWriter) flush() {
	switch {
	case len(w.segs) > 0:
		w.flushVectors()
	case len(w.buf) > 0:
		if w.err == nil {
			n, err := w.conn.Write(w.buf)
			if err == nil && n != len(w.buf) {
				err = io.ErrShortWrite
			}
			w.err = err
		}
		w.buf = w.buf[:0]
	}
	if w.owed > 0 {
		w.budget.Release(w.owed)
		w.owed = 0
	}
}

// wrote records that n bytes of budgeted DATA payload went into the
// batch: the budget gets them back after the next flush.
func (w *frameWriter) wrote(n int) {
	if w.budget != nil {
		w.owed += int64(n)
	}
}

// flushVectors writes segs and the tail of buf with one writev.
func (w *frameWriter) flushVectors() {
	if w.mark < len(w.buf) {
		w.segs = append(w.segs, w.buf[w.mark:])
	}
	if w.err == nil {
		var want int64
		for _, b := range w.segs {
			want += int64(len(b))
		}
		// WriteTo consumes its receiver: give it a copy of the slice
		// header that lives in w, so that taking its address allocates
		// nothing.
		w.out = w.segs
		n, err := w.out.WriteTo(w.conn)
		w.out = nil
		if err == nil && n != want {
			err = io.ErrShortWrite
		}
		w.err = err
	}
	clear(w.segs) // drop the references to the producers' bytes
	w.segs = w.segs[:0]
	w.buf, w.mark, w.refBytes = w.buf[:0], 0, 0
	after := w.after
	for i, f := range after {
		after[i] = nil
		f()
	}
	w.after = after[:0]
}

// pending is how many bytes wait to be written.
func (w *frameWriter) pending() int { return len(w.buf) + w.refBytes }

// afterFlush runs f once the bytes written so far have gone to the
// connection: at once if none of them are referenced.
func (w *frameWriter) afterFlush(f func()) {
	if w.refBytes == 0 {
		f()
		return
	}
	w.after = append(w.after, f)
}

// ref adds p to the batch by reference.
func (w *frameWriter) ref(p []byte) {
	w.grab()
	if w.mark < len(w.buf) {
		w.segs = append(w.segs, w.buf[w.mark:])
		w.mark = len(w.buf)
	}
	w.segs = append(w.segs, p)
	w.refBytes += len(p)
	if w.refBytes >= maxRefBytes || len(w.segs) >= maxSegs {
		w.flush()
	}
}

// reserve makes room for n more bytes (n <= minWriteBufferSize), flushing
// if needed, so that appending n bytes does not grow the buffer.
func (w *frameWriter) reserve(n int) {
	w.grab()
	if cap(w.buf)-len(w.buf) < n {
		w.flush()
	}
}

// bytes copies p into the buffer, flushing each time the buffer fills.
func (w *frameWriter) bytes(p []byte) {
	w.grab()
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
	}
}

// frameHeader writes the 9-byte header of a frame with a payload of length
// bytes, and makes room for fixed more bytes after it, which the caller
// appends.
func (w *frameWriter) frameHeader(fixed, length int, typ http2.FrameType, flags http2.Flags, streamID uint32) {
	w.reserve(frameHeaderLen + fixed)
	w.buf = append(w.buf,
		byte(length>>16), byte(length>>8), byte(length),
		byte(typ), byte(flags),
		byte(streamID>>24)&0x7f, byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

func (w *frameWriter) uint32(v uint32) {
	w.buf = append(w.buf, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// data writes one DATA frame whose payload is a followed by b (RFC 9113
// §6.1), without padding.
func (w *frameWriter) data(streamID uint32, endStream bool, a, b []byte) {
	var flags http2.Flags
	if endStream {
		flags = http2.FlagDataEndStream
	}
	w.frameHeader(0, len(a)+len(b), http2.FrameData, flags, streamID)
	w.bytes(a)
	if w.vec && len(b) >= minRefSize {
		w.ref(b)
		return
	}
	w.bytes(b)
}

// headerBlock writes an encoded header block as one HEADERS frame and as
// many CONTINUATION frames as maxFrame requires (RFC 9113 §6.2, §6.10).
// The frames are written back to back, as the RFC demands.
func (w *frameWriter) headerBlock(streamID uint32, block []byte, endStream bool, maxFrame int) {
	typ := http2.FrameHeaders
	var flags http2.Flags
	if endStream {
		flags = http2.FlagHeadersEndStream
	}
	for {
		n := min(len(block), maxFrame)
		last := n == len(block)
		if last {
			// END_HEADERS has the same bit in HEADERS and CONTINUATION.
			flags |= http2.FlagHeadersEndHeaders
		}
		w.frameHeader(0, n, typ, flags, streamID)
		w.bytes(block[:n])
		if last {
			return
		}
		block = block[n:]
		typ, flags = http2.FrameContinuation, 0
	}
}

// rstStream writes RST_STREAM (RFC 9113 §6.4).
func (w *frameWriter) rstStream(streamID uint32, code http2.ErrCode) {
	w.frameHeader(4, 4, http2.FrameRSTStream, 0, streamID)
	w.uint32(uint32(code))
}

// windowUpdate writes WINDOW_UPDATE (RFC 9113 §6.9).
func (w *frameWriter) windowUpdate(streamID, inc uint32) {
	w.frameHeader(4, 4, http2.FrameWindowUpdate, 0, streamID)
	w.uint32(inc & 0x7fffffff)
}

// settings writes a SETTINGS frame with the given settings (RFC 9113
// §6.5).
func (w *frameWriter) settings(list []http2.Setting) {
	w.frameHeader(0, 6*len(list), http2.FrameSettings, 0, 0)
	for _, s := range list {
		w.reserve(6)
		w.buf = append(w.buf, byte(s.ID>>8), byte(s.ID))
		w.uint32(s.Val)
	}
}

// settingsAck writes the empty SETTINGS frame with ACK (RFC 9113 §6.5.3).
func (w *frameWriter) settingsAck() {
	w.frameHeader(0, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
}

// ping writes PING or its ack (RFC 9113 §6.7).
func (w *frameWriter) ping(ack bool, data [8]byte) {
	var flags http2.Flags
	if ack {
		flags = http2.FlagPingAck
	}
	w.frameHeader(8, 8, http2.FramePing, flags, 0)
	w.buf = append(w.buf, data[:]...)
}

// goAway writes GOAWAY (RFC 9113 §6.8).
func (w *frameWriter) goAway(lastStreamID uint32, code http2.ErrCode, debug []byte) {
	w.frameHeader(8, 8+len(debug), http2.FrameGoAway, 0, 0)
	w.uint32(lastStreamID & 0x7fffffff)
	w.uint32(uint32(code))
	w.bytes(debug)
}
