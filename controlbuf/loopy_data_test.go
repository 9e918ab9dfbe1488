package controlbuf

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"golang.org/x/net/http2"
)

func TestDataFramesBoundedByMaxFrameSize(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	s := h.register(1)
	prefix := []byte{0, 0, 0, 0x9c, 0x3b}
	data := payload(40000-len(prefix), 1)
	done := make(chan struct{})
	h.put(&DataFrame{Stream: s, Prefix: prefix, Data: data, EndStream: true, OnDone: func() { close(done) }})
	sizes, got := h.readData(1, 40000)
	if want := []int{16384, 16384, 7232}; !slices.Equal(sizes, want) {
		t.Fatalf("DATA frame sizes %v, want %v", sizes, want)
	}
	if !bytes.Equal(got, append(slices.Clone(prefix), data...)) {
		t.Fatal("DATA payload is not prefix+data")
	}
	<-done

	// A larger peer max frame size gives larger frames.
	h.settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 20000})
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1 << 20},
		&IncomingWindowUpdate{StreamID: 1, Increment: 1 << 20})
	h.put(&DataFrame{Stream: s, Data: payload(50000, 2)})
	sizes, _ = h.readData(1, 50000)
	if want := []int{20000, 20000, 10000}; !slices.Equal(sizes, want) {
		t.Fatalf("DATA frame sizes %v, want %v", sizes, want)
	}
}

func TestDataFramesBoundedByStreamQuota(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	s := h.register(1)
	data := payload(2500, 3)
	h.put(&DataFrame{Stream: s, Data: data, EndStream: true})
	f := h.peer.expect(http2.FrameData, 1)
	if len(f.Data) != 1000 || f.Flags&http2.FlagDataEndStream != 0 {
		t.Fatalf("first frame %v, want 1000 bytes without END_STREAM", f)
	}
	h.expectNothing() // blocked on stream quota

	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 600})
	if f := h.peer.expect(http2.FrameData, 1); len(f.Data) != 600 {
		t.Fatalf("after update of 600: frame %v", f)
	}
	h.expectNothing()

	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 2000})
	f = h.peer.expect(http2.FrameData, 1)
	if len(f.Data) != 900 || f.Flags&http2.FlagDataEndStream == 0 {
		t.Fatalf("last frame %v, want 900 bytes with END_STREAM", f)
	}
}

func TestDataFramesBoundedByConnQuota(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	a := h.register(1)
	b := h.register(3)
	h.put(&DataFrame{Stream: a, Data: payload(65000, 4)})
	if _, got := h.readData(1, 65000); len(got) != 65000 {
		t.Fatalf("stream 1 sent %d bytes", len(got))
	}
	// 535 bytes of connection window left.
	h.put(&DataFrame{Stream: b, Data: payload(2000, 5), EndStream: true})
	if f := h.peer.expect(http2.FrameData, 3); len(f.Data) != 535 {
		t.Fatalf("frame %v, want 535 bytes (connection quota)", f)
	}
	h.expectNothing()
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 100})
	if f := h.peer.expect(http2.FrameData, 3); len(f.Data) != 100 {
		t.Fatalf("frame %v, want 100 bytes", f)
	}
	h.expectNothing()
	// A stream update alone does not help.
	h.put(&IncomingWindowUpdate{StreamID: 3, Increment: 5000})
	h.expectNothing()
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1 << 20})
	f := h.peer.expect(http2.FrameData, 3)
	if len(f.Data) != 1365 || f.Flags&http2.FlagDataEndStream == 0 {
		t.Fatalf("frame %v, want the last 1365 bytes with END_STREAM", f)
	}
}

func TestRoundRobin(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	a, b, c := h.register(1), h.register(3), h.register(5)
	// Use up the connection window so the next two streams queue up side
	// by side, then open it.
	h.put(&DataFrame{Stream: c, Data: payload(65535, 6)})
	h.readData(5, 65535)
	h.put(&DataFrame{Stream: a, Data: payload(3*16384, 7), EndStream: true})
	h.put(&DataFrame{Stream: b, Data: payload(3*16384, 8), EndStream: true})
	h.expectNothing()
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1 << 20})
	var order []uint32
	for range 6 {
		f := h.peer.next()
		if f.Type != http2.FrameData || len(f.Data) != 16384 {
			t.Fatalf("got %v, want a full DATA frame", f)
		}
		order = append(order, f.StreamID)
	}
	if want := []uint32{1, 3, 1, 3, 1, 3}; !slices.Equal(order, want) {
		t.Fatalf("frame order %v, want %v", order, want)
	}
}

func TestSettingsShrinkWindowBelowOutstanding(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	s := h.register(1)
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1 << 20})
	h.put(&DataFrame{Stream: s, Data: payload(100000, 9), EndStream: true})
	if _, got := h.readData(1, 65535); len(got) != 65535 {
		t.Fatalf("sent %d bytes before the stream window closed", len(got))
	}
	// Window now 10000-65535 = -55535.
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10000})
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 55535})
	h.expectNothing() // window back at 0
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 5000})
	if f := h.peer.expect(http2.FrameData, 1); len(f.Data) != 5000 {
		t.Fatalf("frame %v, want 5000 bytes", f)
	}
	h.expectNothing()
	// Growing the initial window gives the stream 55535 more.
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	sizes, _ := h.readData(1, 100000-70535)
	if want := []int{16384, 100000 - 70535 - 16384}; !slices.Equal(sizes, want) {
		t.Fatalf("frame sizes %v, want %v", sizes, want)
	}
}

func TestEmptyDataFrameEndStream(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	s := h.register(1)
	// Even with no window left, END_STREAM goes out in an empty frame.
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	done := 0
	h.put(&DataFrame{Stream: s, OnDone: func() { done++ }}) // nothing to send
	h.put(&DataFrame{Stream: s, EndStream: true, OnDone: func() { done++ }})
	f := h.peer.expect(http2.FrameData, 1)
	if len(f.Data) != 0 || f.Flags&http2.FlagDataEndStream == 0 {
		t.Fatalf("got %v, want an empty DATA frame with END_STREAM", f)
	}
	h.expectNothing()
	if done != 2 { // read after the ping: loopy's writes happen before
		t.Fatalf("OnDone called %d times, want 2", done)
	}
}

func TestWriteQuotaReplenished(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	wq := flowcontrol.NewWriteQuota(1000, nil)
	s := NewServerStream(1, wq)
	h.put(&RegisterStream{Stream: s})
	if err := wq.Get(t.Context(), 30000); err != nil {
		t.Fatal(err)
	}
	h.put(&DataFrame{Stream: s, Data: payload(30000, 10)})
	h.readData(1, 30000)
	h.expectNothing()
	// 1000 - 30000 + 30000: quota is back, so Get does not block.
	if err := wq.Get(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
}

func TestWindowUpdateOverflowStream(t *testing.T) {
	var gotID uint32
	var gotErr error
	h := newHarness(t, Config{OnStreamError: func(id uint32, err error) { gotID, gotErr = id, err }}, harnessOpts{})
	a, b := h.register(1), h.register(3)
	// Stream 3 uses up the connection window, so stream 1's items wait.
	h.put(&DataFrame{Stream: b, Data: payload(65535, 11)})
	h.readData(3, 65535)
	var orphanErr error
	h.put(&DataFrame{Stream: a, Data: payload(100, 12)},
		&HeaderFrame{Stream: a, EndStream: true, Fields: trailers, OnOrphaned: func(err error) { orphanErr = err }})
	h.expectNothing()

	// 65535 + 2^31-1 overflows stream 1's window: a stream error.
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: flowcontrol.MaxWindowSize})
	f := h.peer.expect(http2.FrameRSTStream, 1)
	if f.Code != http2.ErrCodeFlowControl {
		t.Fatalf("RST_STREAM code %v, want FLOW_CONTROL_ERROR", f.Code)
	}
	h.expectNothing()
	if gotID != 1 || !errors.Is(gotErr, flowcontrol.ErrFlowControl) {
		t.Fatalf("OnStreamError(%d, %v), want stream 1 and ErrFlowControl", gotID, gotErr)
	}
	if !errors.Is(orphanErr, flowcontrol.ErrFlowControl) {
		t.Fatalf("trailers orphaned with %v, want ErrFlowControl", orphanErr)
	}

	// Stream 1 is gone; the connection and stream 3 carry on.
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1 << 20},
		&IncomingWindowUpdate{StreamID: 1, Increment: 1},
		&DataFrame{Stream: a, Data: payload(10, 13)})
	h.expectNothing()
	h.put(&IncomingWindowUpdate{StreamID: 3, Increment: 10},
		&DataFrame{Stream: b, Data: payload(10, 14), EndStream: true})
	h.readData(3, 10)
}

func TestConnWindowUpdateOverflow(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: flowcontrol.MaxWindowSize - flowcontrol.DefaultWindowSize})
	h.expectNothing()
	h.put(&IncomingWindowUpdate{StreamID: 0, Increment: 1})
	f := h.peer.expect(http2.FrameGoAway, 0)
	if f.Code != http2.ErrCodeFlowControl {
		t.Fatalf("GOAWAY code %v, want FLOW_CONTROL_ERROR", f.Code)
	}
	if err := h.wait(); !errors.Is(err, flowcontrol.ErrFlowControl) {
		t.Fatalf("Run = %v, want ErrFlowControl", err)
	}
	if err := h.buf.Put(&Ping{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Run returned = %v, want ErrClosed", err)
	}
}

// TestOnDataWrittenPerFrame: the hook runs once for every DATA frame
// written, the empty END_STREAM frame included, on the loopy goroutine.
func TestOnDataWrittenPerFrame(t *testing.T) {
	var frames atomic.Int32
	h := newHarness(t, Config{OnDataWritten: func() { frames.Add(1) }}, harnessOpts{})
	s := h.register(1)
	h.put(&DataFrame{Stream: s, Data: payload(40000, 5)})
	h.readData(1, 40000) // 16384 + 16384 + 7232
	h.put(&DataFrame{Stream: s, EndStream: true})
	if f := h.peer.expect(http2.FrameData, 1); len(f.Data) != 0 || f.Flags&http2.FlagDataEndStream == 0 {
		t.Fatalf("frame %v, want an empty DATA with END_STREAM", f)
	}
	h.expectNothing()
	if got := frames.Load(); got != 4 {
		t.Fatalf("OnDataWritten ran %d times, want 4", got)
	}
}

// TestStreamInit: a Stream kept inside the transport's own struct and
// set up with Init is the same as the one NewStream or NewServerStream
// allocates, and loopy serves it the same way.
func TestStreamInit(t *testing.T) {
	wq := flowcontrol.NewWriteQuota(1<<20, nil)
	var c, s Stream
	c.Init(0, wq)
	s.Init(3, wq)
	if !reflect.DeepEqual(&c, NewStream(wq)) || !reflect.DeepEqual(&s, NewServerStream(3, wq)) {
		t.Fatal("Init differs from NewStream / NewServerStream")
	}
	h := newHarness(t, Config{}, harnessOpts{})
	h.put(&RegisterStream{Stream: &s}, &DataFrame{Stream: &s, Data: []byte("hi"), EndStream: true})
	if f := h.peer.expect(http2.FrameData, 3); string(f.Data) != "hi" {
		t.Fatalf("DATA %q", f.Data)
	}
}
