package controlbuf

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/flowcontrol"
)

// TestOwnWorkNeverThrottles: however much work our own side queues
// (window updates, resets and cleanups from cancels, pings, settings,
// GOAWAY), the reader is not throttled: only answers the peer forced on us
// may stop it.
func TestOwnWorkNeverThrottles(t *testing.T) {
	b := NewBuffer()
	defer b.Finish(nil)
	for i := range 10 * MaxQueuedControl {
		id := uint32(2*i + 1)
		s := NewServerStream(id, nil)
		for _, it := range []Item{
			&OutgoingWindowUpdate{StreamID: id, Increment: 1},
			&CleanupStream{Stream: s, RST: true, Code: http2.ErrCodeCancel},
			&CleanupStream{StreamID: id},
			&Ping{Data: [8]byte{byte(i)}},
			&OutgoingSettings{},
			&GoAway{HeadsUp: true},
		} {
			if it.PeerCaused() {
				t.Fatalf("%T %+v counts as caused by the peer", it, it)
			}
			if err := b.Put(it); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.AddStreamWindow(s, 100); err != nil {
			t.Fatal(err)
		}
		if err := b.AddConnWindow(100); err != nil {
			t.Fatal(err)
		}
		// The peer's window updates for the windows the transport
		// tracks coalesce: they throttle nothing either.
		if err := b.AddPeerStreamWindow(s, 100); err != nil {
			t.Fatal(err)
		}
		if err := b.AddPeerConnWindow(100); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := b.Len(); c != 0 {
		t.Fatalf("%d items counted against MaxQueuedControl, want 0", c)
	}
	select {
	case <-throttleReturns(b):
	case <-time.After(longTimeout):
		t.Fatal("Throttle blocked by work our own side queued")
	}
}

// TestPeerCausedItemsThrottle: answers the peer forced on us still bound
// what a peer that floods us and never reads can make us queue.
func TestPeerCausedItemsThrottle(t *testing.T) {
	for _, tc := range []struct {
		name string
		item func(i int) Item
	}{
		{"PING ack", func(i int) Item { return &Ping{Ack: true, Data: [8]byte{byte(i)}} }},
		{"SETTINGS ack", func(int) Item { return &IncomingSettings{} }},
		{"RST_STREAM", func(i int) Item { return &ResetStream{StreamID: uint32(2*i + 1), Code: http2.ErrCodeStreamClosed} }},
		{"early abort", func(i int) Item { return &EarlyAbort{StreamID: uint32(2*i + 1), RST: true} }},
		{"stream the peer opened", func(i int) Item { return &RegisterStream{Stream: NewServerStream(uint32(2*i+1), nil)} }},
		{"reset the peer made us do", func(i int) Item {
			return &CleanupStream{StreamID: uint32(2*i + 1), RST: true, Code: http2.ErrCodeProtocol, ByPeer: true}
		}},
		// The peer's frames for streams the transport forgot: nothing
		// to coalesce them into.
		{"the peer's RST_STREAM", func(i int) Item { return &CleanupStream{StreamID: uint32(2*i + 1), ByPeer: true} }},
		{"the peer's WINDOW_UPDATE", func(i int) Item { return &IncomingWindowUpdate{StreamID: uint32(2*i + 1), Increment: 1} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuffer()
			for i := range MaxQueuedControl + 1 {
				it := tc.item(i)
				if !it.PeerCaused() {
					t.Fatalf("%T %+v does not count as caused by the peer", it, it)
				}
				if err := b.Put(it); err != nil {
					t.Fatal(err)
				}
			}
			done := throttleReturns(b)
			select {
			case <-done:
				t.Fatalf("Throttle returned with %d peer-caused items queued", MaxQueuedControl+1)
			case <-time.After(shortTimeout):
			}
			b.Finish(nil)
			<-done
		})
	}
}

// TestWindowUpdatesCoalesce: refunds of one window that loopy has not
// written yet wait as one item and leave as one WINDOW_UPDATE carrying
// their sum; refunds after it was written make a new one.
func TestWindowUpdatesCoalesce(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{noStart: true})
	s1, s3 := h.register(1), h.register(3)
	for range 1000 {
		for _, err := range []error{h.buf.AddStreamWindow(s1, 3), h.buf.AddStreamWindow(s3, 5), h.buf.AddConnWindow(8)} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, n := h.buf.Len(); n != 2+3 { // two RegisterStreams, three updates
		t.Fatalf("%d items queued, want 5: window updates did not coalesce", n)
	}
	h.start()
	want := map[uint32]uint32{0: 8000, 1: 3000, 3: 5000}
	for _, f := range h.sync() {
		if f.Type != http2.FrameWindowUpdate {
			t.Fatalf("unexpected frame %v", f)
		}
		if w, ok := want[f.StreamID]; !ok || f.Increment != w {
			t.Fatalf("WINDOW_UPDATE stream %d +%d, want one of %v", f.StreamID, f.Increment, want)
		}
		delete(want, f.StreamID)
	}
	if len(want) > 0 {
		t.Fatalf("no WINDOW_UPDATE for %v", want)
	}

	// Written: the next refund makes a new update.
	if err := h.buf.AddStreamWindow(s1, 7); err != nil {
		t.Fatal(err)
	}
	if f := h.peer.expect(http2.FrameWindowUpdate, 1); f.Increment != 7 {
		t.Fatalf("WINDOW_UPDATE +%d, want +7", f.Increment)
	}

	// A cleaned-up stream's refunds are dropped.
	h.put(&CleanupStream{Stream: s3})
	if err := h.buf.AddStreamWindow(s3, 9); err != nil {
		t.Fatal(err)
	}
	h.expectNothing()
}

// TestWindowUpdateWaitsForStreamID: a client stream refunded before
// loopy gave it an id (held under MAX_CONCURRENT_STREAMS) announces the
// refund right after its HEADERS, never on stream 0.
func TestWindowUpdateWaitsForStreamID(t *testing.T) {
	h := newHarness(t, Config{Client: true}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	first, held := NewStream(nil), NewStream(nil)
	h.put(&HeaderFrame{Stream: first, Fields: respHeaders, Opener: OpenerFuncs{}},
		&HeaderFrame{Stream: held, Fields: respHeaders, Opener: OpenerFuncs{}})
	h.peer.expect(http2.FrameHeaders, 1)
	if err := h.buf.AddStreamWindow(held, 42); err != nil {
		t.Fatal(err)
	}
	h.expectNothing()
	h.put(&CleanupStream{Stream: first})
	h.peer.expect(http2.FrameHeaders, 3)
	if f := h.peer.expect(http2.FrameWindowUpdate, 3); f.Increment != 42 {
		t.Fatalf("WINDOW_UPDATE +%d, want +42", f.Increment)
	}
}

// TestPeerWindowUpdatesCoalesce: the peer's WINDOW_UPDATEs for the
// connection and for a stream that loopy has not applied yet wait as one
// item per window, however many the peer sends, and loopy applies their
// sum.
func TestPeerWindowUpdatesCoalesce(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{noStart: true})
	s1 := h.register(1)
	const n = 100000
	for range n {
		for _, err := range []error{h.buf.AddPeerStreamWindow(s1, 1), h.buf.AddPeerConnWindow(1)} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, total := h.buf.Len(); total != 1+2 { // the RegisterStream, two updates
		t.Fatalf("%d items queued after %d WINDOW_UPDATEs, want 3: the peer's updates did not coalesce", total, 2*n)
	}
	h.start()
	// The windows are the default 65535 plus the n updates of 1 each.
	const want = int(flowcontrol.DefaultWindowSize) + n
	h.put(&DataFrame{Stream: s1, Data: payload(want+1000, 1)})
	if _, got := h.readData(1, want); len(got) != want {
		t.Fatalf("%d bytes sent, want %d", len(got), want)
	}
	h.expectNothing()

	// Applied: the next update makes a new item.
	if err := h.buf.AddPeerStreamWindow(s1, 400); err != nil {
		t.Fatal(err)
	}
	if err := h.buf.AddPeerConnWindow(1000); err != nil {
		t.Fatal(err)
	}
	if _, got := h.readData(1, 400); len(got) != 400 {
		t.Fatalf("%d bytes sent after an update of 400", len(got))
	}
	h.expectNothing()
}

// TestPeerWindowUpdatesCoalescedOverflow: coalesced updates that add up
// past 2^31-1 are the flow-control error one of them would have been
// (RFC 9113 §6.9.1), a stream error for a stream's window and a
// connection error for the connection's, however large the sum.
func TestPeerWindowUpdatesCoalescedOverflow(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		var gotID uint32
		h := newHarness(t, Config{OnStreamError: func(id uint32, err error) { gotID = id }}, harnessOpts{noStart: true})
		s1, s3 := h.register(1), h.register(3)
		// Each fits a window; three times the largest does not, and so
		// many that a 32-bit sum would wrap around.
		for range 10 {
			h.buf.AddPeerStreamWindow(s1, flowcontrol.MaxWindowSize)
		}
		h.buf.AddPeerStreamWindow(s3, flowcontrol.MaxWindowSize-flowcontrol.DefaultWindowSize)
		h.start()
		if f := h.peer.expect(http2.FrameRSTStream, 1); f.Code != http2.ErrCodeFlowControl {
			t.Fatalf("RST_STREAM code %v, want FLOW_CONTROL_ERROR", f.Code)
		}
		h.expectNothing()
		if gotID != 1 {
			t.Fatalf("OnStreamError for stream %d, want 1", gotID)
		}
		// Stream 3's window is exactly full: no error.
		h.put(&DataFrame{Stream: s3, Data: payload(10, 1)})
		h.readData(3, 10)
	})
	t.Run("connection", func(t *testing.T) {
		h := newHarness(t, Config{}, harnessOpts{noStart: true})
		for range 3 {
			h.buf.AddPeerConnWindow(flowcontrol.MaxWindowSize)
		}
		h.start()
		if f := h.peer.expect(http2.FrameGoAway, 0); f.Code != http2.ErrCodeFlowControl {
			t.Fatalf("GOAWAY code %v, want FLOW_CONTROL_ERROR", f.Code)
		}
		if err := h.wait(); !errors.Is(err, flowcontrol.ErrFlowControl) {
			t.Fatalf("Run = %v, want ErrFlowControl", err)
		}
	})
}
