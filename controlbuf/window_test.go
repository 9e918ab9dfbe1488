package controlbuf

import (
	"testing"
	"time"

	"golang.org/x/net/http2"
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
			&IncomingWindowUpdate{StreamID: id, Increment: 1},
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
