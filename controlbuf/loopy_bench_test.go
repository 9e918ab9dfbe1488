package controlbuf

import (
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

const benchFrame = 16384 // one DATA frame at the default max frame size

// TestDataWriteNoAllocs checks the steady-state DATA path allocates
// nothing: Put on the Buffer, Get, queueing on the stream, the round-robin
// turn, the frame written into the write buffer, the flushes, OnDone.
// With vectored set, payloads are referenced and written with
// net.Buffers, as on a socket.
func TestDataWriteNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, vectored := range []bool{false, true} {
		t.Run(map[bool]string{false: "copied", true: "vectored"}[vectored], func(t *testing.T) {
			testDataWriteNoAllocs(t, vectored)
		})
	}
}

func testDataWriteNoAllocs(t *testing.T, vectored bool) {
	buf := NewBuffer()
	l := NewLoopy(Config{Buffer: buf, Conn: io.Discard})
	l.w.vec = vectored
	s := NewServerStream(1, nil)
	if err := l.handle(&RegisterStream{Stream: s}); err != nil {
		t.Fatal(err)
	}
	prefix := []byte{0, 0, 0, 0x40, 0}
	d := &DataFrame{Stream: s, Prefix: prefix, Data: make([]byte, benchFrame-len(prefix))}
	frames := 0
	d.OnDone = func() { frames++ }
	allocs := testing.AllocsPerRun(1000, func() {
		if err := buf.Put(d); err != nil {
			t.Fatal(err)
		}
		it, err := buf.Get(false)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.step(it); err != nil {
			t.Fatal(err)
		}
		l.w.flush()
		// The peer's refund, applied directly to keep the windows open.
		if err := l.out.AddConn(benchFrame); err != nil {
			t.Fatal(err)
		}
		if err := l.out.AddStream(&s.out, benchFrame); err != nil {
			t.Fatal(err)
		}
	})
	if frames != 1001 {
		t.Fatalf("%d frames written, want 1001", frames)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per DATA frame, want 0", allocs)
	}
}

// countingWriter counts the bytes loopy writes.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// BenchmarkLoopyDataWrite sends 16 KiB DataFrames (one DATA frame each)
// on one stream through the Buffer and a running Loopy into a counting
// writer. One op is one DataFrame, so allocs/op is allocations per DATA
// frame; the frames/op and allocs/frame metrics state it explicitly, with
// allocations counted over the whole process (producer, loopy, runtime)
// from runtime.MemStats.
//
// The items are recycled through OnDone (a producer may reuse an item
// once OnDone ran). Every refundEvery frames the producer gives back the
// window loopy used, with WINDOW_UPDATE items allocated before the timer
// starts.
func BenchmarkLoopyDataWrite(b *testing.B) {
	const (
		inflight    = 64
		refundEvery = 1 << 10
	)
	buf := NewBuffer()
	w := &countingWriter{}
	l := NewLoopy(Config{Buffer: buf, Conn: w})
	runErr := make(chan error, 1)
	go func() { runErr <- l.Run() }()

	s := NewServerStream(1, nil)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(buf.Put(&RegisterStream{Stream: s}))
	must(buf.Put(&IncomingSettings{Settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 30}}}))
	must(buf.Put(&IncomingWindowUpdate{StreamID: 0, Increment: 1<<30 - 65535}))

	prefix := []byte{0, 0, 0, 0x40, 0}
	data := make([]byte, benchFrame-len(prefix))
	free := make(chan *DataFrame, inflight)
	for range inflight {
		d := &DataFrame{Stream: s, Prefix: prefix, Data: data}
		d.OnDone = func() { free <- d }
		free <- d
	}
	refunds := make([][2]IncomingWindowUpdate, b.N/refundEvery+1)
	for i := range refunds {
		refunds[i] = [2]IncomingWindowUpdate{
			{StreamID: 0, Increment: refundEvery * benchFrame},
			{StreamID: 1, Increment: refundEvery * benchFrame},
		}
	}

	var before, after runtime.MemStats
	b.SetBytes(benchFrame)
	b.ReportAllocs()
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	done := 0 // DataFrames whose OnDone ran, as seen by the producer
	for i := range b.N {
		d := <-free
		if i >= inflight {
			done++
			if done%refundEvery == 0 {
				// loopy wrote refundEvery more frames: give their window back.
				r := &refunds[done/refundEvery-1]
				must(buf.Put(&r[0]))
				must(buf.Put(&r[1]))
			}
		}
		must(buf.Put(d))
	}
	for range inflight { // wait until loopy wrote every item
		<-free
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/frame")
	b.ReportMetric(1, "frames/op")

	// OnDone runs once a frame is in loopy's write buffer; the flush
	// follows when loopy goes idle. Wait for it before finishing, or
	// Finish may end Run with the last frames still buffered.
	want := int64(b.N) * (benchFrame + frameHeaderLen)
	for deadline := time.Now().Add(10 * time.Second); w.n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	buf.Finish(nil)
	<-runErr
	if n := w.n.Load(); n < want {
		b.Fatalf("wrote %d bytes, want at least %d", n, want)
	}
}

// BenchmarkLoopyHeaderWrite encodes a typical gRPC request header list
// with loopy's HPACK encoder and writes it as one HEADERS frame into the
// write buffer, as a client does for every call (the dynamic table warm,
// as on a busy connection). One op is one header block.
func BenchmarkLoopyHeaderWrite(b *testing.B) {
	l := NewLoopy(Config{Buffer: NewBuffer(), Conn: io.Discard})
	s := NewServerStream(1, nil)
	if err := l.handle(&RegisterStream{Stream: s}); err != nil {
		b.Fatal(err)
	}
	h := &HeaderFrame{Stream: s, Fields: reqHeaders}
	b.ReportAllocs()
	for range b.N {
		if err := l.handle(h); err != nil {
			b.Fatal(err)
		}
		l.w.flush()
	}
}
