package controlbuf

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	reqHeaders = []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/pkg.Svc/Method"},
		{Name: ":authority", Value: "localhost"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	respHeaders = []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "application/grpc"},
	}
	trailers = []hpack.HeaderField{
		{Name: "grpc-status", Value: "0"},
	}
)

func TestTrailersAfterData(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10000})
	s := h.register(1)
	var wrote, cleaned bool
	h.put(&HeaderFrame{Stream: s, Fields: respHeaders})
	h.put(&DataFrame{Stream: s, Data: payload(20000, 1)})
	h.put(&HeaderFrame{Stream: s, Fields: trailers, EndStream: true,
		OnWrite: func() { wrote = true },
		Cleanup: &CleanupStream{Stream: s, OnWrite: func() { cleaned = true }}})
	f := h.peer.expect(http2.FrameHeaders, 1)
	if !fieldsEqual(f.Fields, respHeaders) || f.Flags&http2.FlagHeadersEndStream != 0 {
		t.Fatalf("response headers %v %v", f, f.Fields)
	}
	if f := h.peer.expect(http2.FrameData, 1); len(f.Data) != 10000 {
		t.Fatalf("DATA %v, want 10000 bytes", f)
	}
	h.expectNothing() // trailers wait behind the blocked data
	if wrote || cleaned {
		t.Fatal("trailers written before the data")
	}
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 10000})
	if f := h.peer.expect(http2.FrameData, 1); len(f.Data) != 10000 || f.Flags&http2.FlagDataEndStream != 0 {
		t.Fatalf("DATA %v, want 10000 bytes without END_STREAM", f)
	}
	f = h.peer.expect(http2.FrameHeaders, 1)
	if !fieldsEqual(f.Fields, trailers) || f.Flags&http2.FlagHeadersEndStream == 0 {
		t.Fatalf("trailers %v %v", f, f.Fields)
	}
	h.expectNothing()
	if !wrote || !cleaned {
		t.Fatalf("OnWrite %v, cleanup OnWrite %v; want both", wrote, cleaned)
	}
	// The cleanup removed the stream: later data is dropped, updates ignored.
	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 100}, &DataFrame{Stream: s, Data: []byte("late")})
	h.expectNothing()
}

func TestHeadersContinuation(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{raw: true})
	s := h.register(1)
	// Random values so HPACK cannot shrink the block much.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	var big []hpack.HeaderField
	for range 5 {
		v := make([]byte, 12000)
		for i := range v {
			v[i] = alphabet[rng.IntN(len(alphabet))]
		}
		big = append(big, hpack.HeaderField{Name: "x-big-bin", Value: string(v)})
	}
	fields := append(append([]hpack.HeaderField(nil), respHeaders...), big...)
	h.put(&HeaderFrame{Stream: s, Fields: fields, EndStream: true})
	first := h.peer.expect(http2.FrameHeaders, 1)
	if first.Flags&http2.FlagHeadersEndHeaders != 0 || len(first.Data) != 16384 {
		t.Fatalf("HEADERS %v: want 16384 bytes without END_HEADERS", first)
	}
	if first.Flags&http2.FlagHeadersEndStream == 0 {
		t.Fatal("END_STREAM missing on HEADERS")
	}
	n := 0
	for {
		f := h.peer.expect(http2.FrameContinuation, 1)
		n++
		if len(f.Data) > 16384 {
			t.Fatalf("CONTINUATION of %d bytes exceeds max frame size", len(f.Data))
		}
		if f.Flags&http2.FlagContinuationEndHeaders != 0 {
			if !fieldsEqual(f.Fields, fields) {
				t.Fatal("decoded header block differs from the fields sent")
			}
			break
		}
		if len(f.Data) != 16384 {
			t.Fatalf("non-final CONTINUATION of %d bytes", len(f.Data))
		}
	}
	if n < 2 {
		t.Fatalf("%d CONTINUATION frames, want at least 2", n)
	}
}

func TestHeaderTableSizeSetting(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{raw: true})
	h.settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	field := []hpack.HeaderField{{Name: "x-custom", Value: "some value"}}
	var sizes []int
	for i := range 2 {
		s := h.register(uint32(2*i + 1))
		h.put(&HeaderFrame{Stream: s, Fields: field})
		f := h.peer.expect(http2.FrameHeaders, uint32(2*i+1))
		if !fieldsEqual(f.Fields, field) {
			t.Fatalf("fields %v", f.Fields)
		}
		sizes = append(sizes, len(f.Data))
	}
	// Without a dynamic table the second block cannot refer to the first:
	// it is as long as the first minus the table size update.
	if sizes[1] < sizes[0]-1 || sizes[1] < 10 {
		t.Fatalf("header block sizes %v: the second block used the dynamic table", sizes)
	}
}

func TestHeaderListTooLarge(t *testing.T) {
	var applied []http2.Setting
	h := newHarness(t, Config{Client: true, OnSettingsApplied: func(s http2.Setting) { applied = append(applied, s) }}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 300})
	if len(applied) != 1 || applied[0].ID != http2.SettingMaxHeaderListSize {
		t.Fatalf("OnSettingsApplied got %v", applied)
	}
	big := append(append([]hpack.HeaderField(nil), reqHeaders...), hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", 200)})
	s := NewStream(nil)
	var orphanErr error
	initCalled := false
	h.put(&HeaderFrame{Stream: s, Fields: big,
		Opener: OpenerFuncs{Init: func(uint32) error { initCalled = true; return nil },
			Orphan: func(err error) { orphanErr = err }}})
	h.put(&DataFrame{Stream: s, Data: []byte("x"), EndStream: true})
	h.expectNothing()
	if !errors.Is(orphanErr, ErrHeaderListTooLarge) || initCalled {
		t.Fatalf("OnOrphaned(%v), InitStream called %v; want ErrHeaderListTooLarge, not called", orphanErr, initCalled)
	}

	// A stream that fits gets the first id.
	s2 := NewStream(nil)
	var id uint32
	h.put(&HeaderFrame{Stream: s2, Fields: reqHeaders, Opener: OpenerFuncs{Init: func(i uint32) error { id = i; return nil }}})
	h.peer.expect(http2.FrameHeaders, 1)
	if id != 1 {
		t.Fatalf("InitStream(%d), want 1", id)
	}
}

func TestServerHeaderListTooLarge(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 100})
	s := h.register(1)
	var orphanErr error
	big := []hpack.HeaderField{{Name: "x-big", Value: strings.Repeat("a", 100)}}
	h.put(&HeaderFrame{Stream: s, Fields: big, OnOrphaned: func(err error) { orphanErr = err }})
	f := h.peer.expect(http2.FrameRSTStream, 1)
	if f.Code != http2.ErrCodeInternal {
		t.Fatalf("RST_STREAM code %v, want INTERNAL_ERROR", f.Code)
	}
	h.expectNothing()
	if !errors.Is(orphanErr, ErrHeaderListTooLarge) {
		t.Fatalf("OnOrphaned(%v), want ErrHeaderListTooLarge", orphanErr)
	}
}

// openStream returns a client stream and its opening HeaderFrame, which
// records the id loopy assigned.
func openStream(ids *[]uint32) (*Stream, *HeaderFrame) {
	s := NewStream(nil)
	return s, &HeaderFrame{Stream: s, Fields: reqHeaders, Opener: OpenerFuncs{Init: func(id uint32) error {
		*ids = append(*ids, id)
		return nil
	}}}
}

func TestClientMaxConcurrentStreams(t *testing.T) {
	var applied []http2.Setting
	h := newHarness(t, Config{Client: true, OnSettingsApplied: func(s http2.Setting) { applied = append(applied, s) }}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	var ids []uint32
	var streams []*Stream
	for i := range 3 {
		s, hf := openStream(&ids)
		streams = append(streams, s)
		h.put(hf, &DataFrame{Stream: s, Data: []byte{byte(i)}, EndStream: true})
	}
	h.peer.expect(http2.FrameHeaders, 1)
	if f := h.peer.expect(http2.FrameData, 1); f.Data[0] != 0 {
		t.Fatalf("stream 1 carries data of stream #%d", f.Data[0])
	}
	h.expectNothing() // the other two are held back

	// Closing the first opens the second.
	h.put(&CleanupStream{Stream: streams[0]})
	h.peer.expect(http2.FrameHeaders, 3)
	if f := h.peer.expect(http2.FrameData, 3); f.Data[0] != 1 {
		t.Fatalf("stream 3 carries data of stream #%d", f.Data[0])
	}
	h.expectNothing()

	// Raising the limit opens the third.
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 5})
	h.peer.expect(http2.FrameHeaders, 5)
	if f := h.peer.expect(http2.FrameData, 5); f.Data[0] != 2 {
		t.Fatalf("stream 5 carries data of stream #%d", f.Data[0])
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 3 || ids[2] != 5 {
		t.Fatalf("InitStream ids %v, want [1 3 5]", ids)
	}
	if len(applied) != 2 || applied[1].Val != 5 {
		t.Fatalf("OnSettingsApplied got %v", applied)
	}
}

func TestClientHeldStreamCleanedUp(t *testing.T) {
	h := newHarness(t, Config{Client: true}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	var ids []uint32
	s1, h1 := openStream(&ids)
	s2, h2 := openStream(&ids)
	var orphanErr error
	h2.OnOrphaned = func(err error) { orphanErr = err }
	s3, h3 := openStream(&ids)
	h.put(h1, h2, h3)
	h.peer.expect(http2.FrameHeaders, 1)
	h.expectNothing()
	// The held stream 2 goes away before it was opened: no RST, no id.
	h.put(&CleanupStream{Stream: s2, RST: true, Code: http2.ErrCodeCancel})
	h.expectNothing()
	if !errors.Is(orphanErr, ErrStreamClosed) {
		t.Fatalf("OnOrphaned(%v), want ErrStreamClosed", orphanErr)
	}
	h.put(&CleanupStream{Stream: s1, RST: true, Code: http2.ErrCodeCancel})
	if f := h.peer.expect(http2.FrameRSTStream, 1); f.Code != http2.ErrCodeCancel {
		t.Fatalf("RST_STREAM code %v", f.Code)
	}
	h.peer.expect(http2.FrameHeaders, 3)
	_ = s3
	if len(ids) != 2 || ids[1] != 3 {
		t.Fatalf("InitStream ids %v, want [1 3]", ids)
	}
}

func TestClientInitStreamError(t *testing.T) {
	h := newHarness(t, Config{Client: true}, harnessOpts{})
	s := NewStream(nil)
	var orphanErr error
	h.put(&HeaderFrame{Stream: s, Fields: reqHeaders,
		Opener: OpenerFuncs{Init: func(uint32) error { return errTest },
			Orphan: func(err error) { orphanErr = err }}})
	h.put(&DataFrame{Stream: s, Data: []byte("dropped"), EndStream: true})
	h.expectNothing()
	if !errors.Is(orphanErr, errTest) {
		t.Fatalf("OnOrphaned(%v), want the InitStream error", orphanErr)
	}
	var ids []uint32
	s2, h2 := openStream(&ids)
	h.put(h2, &DataFrame{Stream: s2, Data: []byte("ok"), EndStream: true})
	h.peer.expect(http2.FrameHeaders, 1)
	h.peer.expect(http2.FrameData, 1)
}

func TestEarlyAbortAndReset(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.put(&EarlyAbort{StreamID: 7, Fields: respHeaders, RST: true, Code: http2.ErrCodeRefusedStream})
	f := h.peer.expect(http2.FrameHeaders, 7)
	if f.Flags&http2.FlagHeadersEndStream == 0 || !fieldsEqual(f.Fields, respHeaders) {
		t.Fatalf("early abort HEADERS %v %v", f, f.Fields)
	}
	if f := h.peer.expect(http2.FrameRSTStream, 7); f.Code != http2.ErrCodeRefusedStream {
		t.Fatalf("RST_STREAM code %v", f.Code)
	}
	h.put(&ResetStream{StreamID: 9, Code: http2.ErrCodeStreamClosed})
	if f := h.peer.expect(http2.FrameRSTStream, 9); f.Code != http2.ErrCodeStreamClosed {
		t.Fatalf("RST_STREAM code %v", f.Code)
	}
	h.put(&CleanupStream{StreamID: 11, RST: true, Code: http2.ErrCodeCancel})
	h.peer.expect(http2.FrameRSTStream, 11)
}

// TestResetDoesNotOvertakeQueuedResponse: the transport forgot a stream
// it answered (trailers and a NO_ERROR reset queued behind its data) and
// resets the peer's late DATA on it; that reset must not reach the wire
// before the response does, and the stream still ends with NO_ERROR.
func TestResetDoesNotOvertakeQueuedResponse(t *testing.T) {
	h := newHarness(t, Config{}, harnessOpts{})
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	s := h.register(1)
	h.put(&HeaderFrame{Stream: s, Fields: respHeaders},
		&DataFrame{Stream: s, Data: payload(300, 1)},
		&HeaderFrame{Stream: s, Fields: trailers, EndStream: true,
			Cleanup: &CleanupStream{Stream: s, RST: true, Code: http2.ErrCodeNo}})
	h.peer.expect(http2.FrameHeaders, 1)
	h.peer.expect(http2.FrameData, 1) // 100 bytes, then the window is shut
	h.put(&ResetStream{StreamID: 1, Code: http2.ErrCodeStreamClosed})
	h.expectNothing()

	h.put(&IncomingWindowUpdate{StreamID: 1, Increment: 1000})
	h.peer.expect(http2.FrameData, 1)
	if f := h.peer.expect(http2.FrameHeaders, 1); f.Flags&http2.FlagHeadersEndStream == 0 {
		t.Fatalf("trailers %v without END_STREAM", f)
	}
	if f := h.peer.expect(http2.FrameRSTStream, 1); f.Code != http2.ErrCodeNo {
		t.Fatalf("RST_STREAM %v after the trailers, want NO_ERROR", f.Code)
	}
	// Gone from loopy now: a reset for it is written again.
	h.put(&ResetStream{StreamID: 1, Code: http2.ErrCodeStreamClosed})
	if f := h.peer.expect(http2.FrameRSTStream, 1); f.Code != http2.ErrCodeStreamClosed {
		t.Fatalf("RST_STREAM code %v", f.Code)
	}
}
