package controlbuf

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"golang.org/x/net/http2"
)

func TestControlFrames(t *testing.T) {
	bdp := flowcontrol.NewBDPEstimator(flowcontrol.DefaultWindowSize, func(uint32) {})
	h := newHarness(t, Config{BDP: bdp}, harnessOpts{})
	ours := []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 20}, {ID: http2.SettingMaxFrameSize, Val: 1 << 15}}
	h.put(&OutgoingSettings{Settings: ours},
		&OutgoingWindowUpdate{StreamID: 0, Increment: 1000},
		&OutgoingWindowUpdate{StreamID: 5, Increment: 7},
		&Ping{Data: flowcontrol.BDPPing},
		&Ping{Ack: true, Data: [8]byte{1, 2, 3}})
	if f := h.peer.expect(http2.FrameSettings, 0); !slices.Equal(f.Settings, ours) || f.Flags != 0 {
		t.Fatalf("SETTINGS %v %v", f, f.Settings)
	}
	if f := h.peer.expect(http2.FrameWindowUpdate, 0); f.Increment != 1000 {
		t.Fatalf("WINDOW_UPDATE %v", f.Increment)
	}
	if f := h.peer.expect(http2.FrameWindowUpdate, 5); f.Increment != 7 {
		t.Fatalf("WINDOW_UPDATE %v", f.Increment)
	}
	if f := h.peer.expect(http2.FramePing, 0); !bytes.Equal(f.Data, flowcontrol.BDPPing[:]) || f.Flags != 0 {
		t.Fatalf("BDP PING %v", f)
	}
	if f := h.peer.expect(http2.FramePing, 0); f.Flags&http2.FlagPingAck == 0 || f.Data[2] != 3 {
		t.Fatalf("PING ack %v", f)
	}
}

func TestManySmallFramesOneWrite(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{noStart: true})
	s := NewServerStream(1, nil)
	h.put(&RegisterStream{Stream: s}, &HeaderFrame{Stream: s, Fields: respHeaders})
	const n = 100
	for i := range n {
		h.put(&Ping{Ack: true, Data: [8]byte{byte(i)}},
			&DataFrame{Stream: s, Prefix: []byte{0, 0, 0, 0, 1}, Data: []byte{byte(i)}},
			&OutgoingWindowUpdate{StreamID: 1, Increment: 6})
	}
	h.start()
	h.peer.expect(http2.FrameHeaders, 1)
	var pings, data, updates int
	for range 3 * n {
		switch f := h.peer.next(); f.Type {
		case http2.FramePing:
			pings++
		case http2.FrameData:
			data++
		case http2.FrameWindowUpdate:
			updates++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	if pings != n || data != n || updates != n {
		t.Fatalf("got %d pings, %d data, %d updates; want %d each", pings, data, updates, n)
	}
	if w := h.conn.Writes(); w != 1 {
		t.Fatalf("%d writes to the connection, want 1", w)
	}
}

func TestLargeDataFlushesWhenBufferFull(t *testing.T) {
	h := newHarness(t, Config{WriteBufferSize: 4096}, harnessOpts{})
	s := h.register(1)
	data := payload(60000, 7)
	h.put(&DataFrame{Stream: s, Data: data, EndStream: true})
	_, got := h.readData(1, len(data))
	if !bytes.Equal(got, data) {
		t.Fatal("payload corrupted across buffer flushes")
	}
	if w := h.conn.Writes(); w < 60000/4096 {
		t.Fatalf("%d writes for 60000 bytes through a 4 KiB buffer", w)
	}
}

func TestTwoStepGoAway(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	s1 := h.register(1)
	s3 := h.register(3)
	h.put(&GoAway{HeadsUp: true, DebugData: []byte("bye"), LastStreamID: 1, Code: http2.ErrCodeInternal})
	f := h.peer.expect(http2.FrameGoAway, 0)
	if f.LastID != 1<<31-1 || f.Code != http2.ErrCodeNo || string(f.Data) != "bye" {
		t.Fatalf("heads-up GOAWAY last=%d code=%v debug=%q", f.LastID, f.Code, f.Data)
	}
	f = h.peer.expect(http2.FramePing, 0)
	if !bytes.Equal(f.Data, GoAwayPing[:]) || f.Flags&http2.FlagPingAck != 0 {
		t.Fatalf("PING after GOAWAY %v", f)
	}
	h.expectNothing() // still running

	h.put(&GoAway{LastStreamID: 3, Code: http2.ErrCodeNo})
	f = h.peer.expect(http2.FrameGoAway, 0)
	if f.LastID != 3 || f.Code != http2.ErrCodeNo {
		t.Fatalf("final GOAWAY last=%d code=%v", f.LastID, f.Code)
	}
	// Streams in flight finish.
	h.put(&HeaderFrame{Stream: s3, Fields: trailers, EndStream: true, Cleanup: &CleanupStream{Stream: s3}})
	h.peer.expect(http2.FrameHeaders, 3)
	h.expectNothing()
	h.put(&CleanupStream{Stream: s1, RST: true, Code: http2.ErrCodeNo})
	h.peer.expect(http2.FrameRSTStream, 1)
	if err := h.wait(); !errors.Is(err, ErrDrained) {
		t.Fatalf("Run = %v, want ErrDrained", err)
	}
}

func TestGoAwayNoStreamsDrainsAtOnce(t *testing.T) {
	h := newHarness(t, Config{Client: true}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 0})
	var ids []uint32
	_, held := openStream(&ids)
	var orphanErr error
	held.OnOrphaned = func(err error) { orphanErr = err }
	h.put(held)
	h.expectNothing()
	h.put(&GoAway{Code: http2.ErrCodeNo})
	h.peer.expect(http2.FrameGoAway, 0)
	if err := h.wait(); !errors.Is(err, ErrDrained) {
		t.Fatalf("Run = %v, want ErrDrained", err)
	}
	if !errors.Is(orphanErr, ErrDrained) || len(ids) != 0 {
		t.Fatalf("held stream: OnOrphaned(%v), ids %v; want ErrDrained, none", orphanErr, ids)
	}
}

func TestGoAwayCloseConn(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.register(1)
	h.put(&GoAway{Code: http2.ErrCodeEnhanceYourCalm, DebugData: []byte("too_many_pings"), LastStreamID: 1, CloseConn: true})
	f := h.peer.expect(http2.FrameGoAway, 0)
	if f.Code != http2.ErrCodeEnhanceYourCalm || string(f.Data) != "too_many_pings" {
		t.Fatalf("GOAWAY %v %q", f.Code, f.Data)
	}
	if err := h.wait(); !errors.Is(err, ErrConnClosing) {
		t.Fatalf("Run = %v, want ErrConnClosing", err)
	}
}

func TestRunOrphansOnFinish(t *testing.T) {
	h := newHarness(t, Config{Client: true}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var ids []uint32
	s1, h1 := openStream(&ids)
	_, h2 := openStream(&ids)
	var err1, err2 error
	h2.OnOrphaned = func(err error) { err2 = err }
	h.put(h1, &DataFrame{Stream: s1, Data: []byte("blocked")},
		&HeaderFrame{Stream: s1, Fields: trailers, EndStream: true, OnOrphaned: func(err error) { err1 = err }},
		h2)
	h.peer.expect(http2.FrameHeaders, 1)
	h.expectNothing()
	h.buf.Finish(errTest)
	if err := h.wait(); !errors.Is(err, ErrClosed) || !errors.Is(err, errTest) {
		t.Fatalf("Run = %v, want ErrClosed and the Finish error", err)
	}
	if !errors.Is(err1, ErrClosed) || !errors.Is(err2, ErrClosed) {
		t.Fatalf("OnOrphaned got %v and %v, want ErrClosed", err1, err2)
	}
}

func TestWriteError(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.expectNothing()
	h.conn.fail(errTest)
	h.put(&Ping{})
	if err := h.wait(); !errors.Is(err, errTest) {
		t.Fatalf("Run = %v, want the write error", err)
	}
}

func TestInvalidPeerSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setting http2.Setting
		code    http2.ErrCode
		is      error
	}{
		{"max frame size too small", http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100}, http2.ErrCodeProtocol, http2.ConnectionError(http2.ErrCodeProtocol)},
		{"initial window too large", http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}, http2.ErrCodeFlowControl, flowcontrol.ErrFlowControl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, harnessOpts{})
			h.put(&IncomingSettings{Settings: []http2.Setting{tc.setting}})
			if f := h.peer.expect(http2.FrameGoAway, 0); f.Code != tc.code {
				t.Fatalf("GOAWAY code %v, want %v", f.Code, tc.code)
			}
			if err := h.wait(); !errors.Is(err, tc.is) {
				t.Fatalf("Run = %v, want %v", err, tc.is)
			}
		})
	}
}

// TestSettingsWindowOverflow: a new initial window that takes a stream's
// window past 2^31-1 is a connection error (RFC 9113 §6.9.2).
func TestSettingsWindowOverflow(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.register(1)
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: flowcontrol.MaxWindowSize - flowcontrol.DefaultWindowSize})
	h.expectNothing()
	h.put(&IncomingSettings{Settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: flowcontrol.DefaultWindowSize + 1}}})
	if f := h.peer.expect(http2.FrameGoAway, 0); f.Code != http2.ErrCodeFlowControl || f.LastID != 1 {
		t.Fatalf("GOAWAY code %v last %d, want FLOW_CONTROL_ERROR, 1", f.Code, f.LastID)
	}
	if err := h.wait(); !errors.Is(err, flowcontrol.ErrFlowControl) {
		t.Fatalf("Run = %v, want ErrFlowControl", err)
	}
}
