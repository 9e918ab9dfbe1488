package controlbuf

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	"golang.org/x/net/http2"
)

// recordingWriter keeps every Write as a separate piece.
type recordingWriter struct {
	writes [][]byte
	err    error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, slices.Clone(p))
	return len(p), nil
}

func (r *recordingWriter) all() []byte { return bytes.Join(r.writes, nil) }

// vectoredWriter returns a frameWriter that references large payloads as
// it does on a socket; on a plain io.Writer net.Buffers writes piece by
// piece, which the tests can observe.
func vectoredWriter(out io.Writer) *frameWriter {
	w := newFrameWriter(out, 0)
	w.vec = true
	return &w
}

func TestWritesVectorsOnSockets(t *testing.T) {
	if writesVectors(&recordingWriter{}) {
		t.Error("a plain io.Writer must not be written with net.Buffers")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !writesVectors(c) {
		t.Error("a *net.TCPConn must be written with writev")
	}
}

func TestVectoredDataReferencedUntilFlush(t *testing.T) {
	var out recordingWriter
	w := vectoredWriter(&out)
	prefix := []byte{0, 0, 0, 0x20, 0}
	big := payload(minRefSize, 1)
	w.data(1, false, prefix, big)

	ran := false
	w.afterFlush(func() { ran = true })
	if ran {
		t.Fatal("afterFlush ran while the referenced payload was not written")
	}
	if len(out.writes) != 0 {
		t.Fatalf("%d writes before flush", len(out.writes))
	}
	if w.pending() != frameHeaderLen+len(prefix)+len(big) {
		t.Fatalf("pending %d, want %d", w.pending(), frameHeaderLen+len(prefix)+len(big))
	}
	w.flush()
	if !ran {
		t.Fatal("afterFlush did not run after the flush")
	}
	// The header and prefix were copied into the buffer; the payload went
	// by reference as a piece of its own.
	if len(out.writes) != 2 || !bytes.Equal(out.writes[1], big) {
		t.Fatalf("writes %d, want header+prefix then the payload itself", len(out.writes))
	}
	f := readFrames(t, out.all())
	if len(f) != 1 || f[0].typ != http2.FrameData || !bytes.Equal(f[0].payload, append(slices.Clone(prefix), big...)) {
		t.Fatalf("frames %v", f)
	}
	// Nothing referenced any more: the next callback runs at once and
	// the writer keeps no reference to the payload.
	ran = false
	w.afterFlush(func() { ran = true })
	if !ran || len(w.segs) != 0 || w.refBytes != 0 {
		t.Fatalf("after flush: ran %v, %d segments, %d referenced bytes", ran, len(w.segs), w.refBytes)
	}
	for _, s := range w.segs[:cap(w.segs)] {
		if s != nil {
			t.Fatal("a flushed segment is still referenced")
		}
	}
}

func TestVectoredSmallPayloadCopied(t *testing.T) {
	var out recordingWriter
	w := vectoredWriter(&out)
	small := payload(minRefSize-1, 2)
	w.data(3, true, nil, small)
	ran := false
	w.afterFlush(func() { ran = true })
	if !ran {
		t.Fatal("a copied payload held its callback back")
	}
	small[0]++ // the producer may reuse it now
	w.flush()
	if len(out.writes) != 1 {
		t.Fatalf("%d writes, want 1", len(out.writes))
	}
	f := readFrames(t, out.all())
	if len(f) != 1 || f[0].payload[0] != small[0]-1 || f[0].flags&http2.FlagDataEndStream == 0 {
		t.Fatalf("frames %v", f)
	}
}

func TestVectoredOrderAndBatchLimits(t *testing.T) {
	var out recordingWriter
	w := vectoredWriter(&out)
	var want []byte
	var ids []uint32
	// Interleave referenced payloads, copied ones and control frames, past
	// maxRefBytes so the writer flushes on its own in between.
	for i := 0; w.refBytes+len(want) < 2*maxRefBytes; i++ {
		id := uint32(2*i + 1)
		p := payload(minRefSize+i*100, byte(i))
		w.data(id, false, nil, p)
		w.windowUpdate(id, uint32(i+1))
		w.data(id, true, nil, payload(10, byte(i)))
		want = append(want, p...)
		ids = append(ids, id)
		if len(w.segs) >= maxSegs || w.refBytes >= maxRefBytes {
			t.Fatalf("batch of %d segments, %d bytes was not flushed", len(w.segs), w.refBytes)
		}
	}
	if len(out.writes) == 0 {
		t.Fatal("no flush at maxRefBytes")
	}
	w.flush()
	var got []byte
	var gotIDs []uint32
	for i, f := range readFrames(t, out.all()) {
		switch i % 3 {
		case 0:
			if f.typ != http2.FrameData {
				t.Fatalf("frame %d: %v, want DATA", i, f.typ)
			}
			got = append(got, f.payload...)
			gotIDs = append(gotIDs, f.stream)
		case 1:
			if f.typ != http2.FrameWindowUpdate || f.stream != gotIDs[len(gotIDs)-1] {
				t.Fatalf("frame %d: %v on %d, want WINDOW_UPDATE on %d", i, f.typ, f.stream, gotIDs[len(gotIDs)-1])
			}
		case 2:
			if f.typ != http2.FrameData || f.flags&http2.FlagDataEndStream == 0 || len(f.payload) != 10 {
				t.Fatalf("frame %d: %v, want the small last DATA", i, f)
			}
		}
	}
	if !bytes.Equal(got, want) || !slices.Equal(gotIDs, ids) {
		t.Fatal("frames out of order or payloads corrupted")
	}
}

func TestVectoredWriteErrorSticky(t *testing.T) {
	boom := errors.New("boom")
	out := recordingWriter{err: boom}
	w := vectoredWriter(&out)
	w.data(1, false, nil, payload(minRefSize, 0))
	ran := false
	w.afterFlush(func() { ran = true })
	w.flush()
	if !errors.Is(w.err, boom) {
		t.Fatalf("err %v, want %v", w.err, boom)
	}
	if !ran {
		t.Fatal("callbacks must run after a failed flush too: the bytes are no longer referenced")
	}
	w.data(1, false, nil, payload(minRefSize, 0))
	w.flush()
	if !errors.Is(w.err, boom) || len(out.writes) != 0 {
		t.Fatal("write error is not sticky")
	}
}

// rawFrame is a frame as read back from a frameWriter's output.
type rawFrame struct {
	typ     http2.FrameType
	flags   http2.Flags
	stream  uint32
	payload []byte
}

func readFrames(t *testing.T, b []byte) []rawFrame {
	t.Helper()
	var fs []rawFrame
	for len(b) > 0 {
		if len(b) < frameHeaderLen {
			t.Fatalf("%d trailing bytes", len(b))
		}
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		f := rawFrame{
			typ:    http2.FrameType(b[3]),
			flags:  http2.Flags(b[4]),
			stream: uint32(b[5]&0x7f)<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8]),
		}
		b = b[frameHeaderLen:]
		if len(b) < n {
			t.Fatalf("frame of %d bytes, %d left", n, len(b))
		}
		f.payload, b = b[:n], b[n:]
		fs = append(fs, f)
	}
	return fs
}
