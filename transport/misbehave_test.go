package transport

// Tests that drive our server transport with a raw, misbehaving HTTP/2
// client (rawpeer_test.go) and check each error path: the HTTP/2 error
// code or gRPC status the peer gets, that the connection and its other
// streams carry on where the protocol allows, and that nothing leaks.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Methods the raw-peer test server serves.
const (
	echoMethod  = "/test.Raw/Echo"  // echoes every message
	blockMethod = "/test.Raw/Block" // waits until the stream's context ends
)

// blockEnd is what a blockMethod handler saw once its context ended.
type blockEnd struct {
	ctxErr  error
	readErr error
}

// rawHandler serves echoMethod with echoHandler and blockMethod by waiting
// for the stream's context, reporting the stream when it starts and what
// it saw when it ends.
type rawHandler struct {
	started chan *ServerStream
	ended   chan blockEnd
}

func newRawHandler() *rawHandler {
	return &rawHandler{started: make(chan *ServerStream, 64), ended: make(chan blockEnd, 64)}
}

func (h *rawHandler) handle(s *ServerStream) {
	if s.Method() != blockMethod {
		echoHandler(s)
		return
	}
	select {
	case h.started <- s:
	default:
	}
	<-s.Context().Done()
	_, err := s.Read(make([]byte, 1))
	select {
	case h.ended <- blockEnd{ctxErr: s.Context().Err(), readErr: err}:
	default:
	}
	s.WriteStatus(status.FromContextError(s.Context().Err()))
}

// waitStarted waits for a blockMethod handler to start.
func (h *rawHandler) waitStarted(t *testing.T) *ServerStream {
	t.Helper()
	select {
	case s := <-h.started:
		return s
	case <-time.After(longWait):
		t.Fatal("handler never started")
		return nil
	}
}

// waitEnded waits for a blockMethod handler to see its context end.
func (h *rawHandler) waitEnded(t *testing.T) blockEnd {
	t.Helper()
	select {
	case e := <-h.ended:
		return e
	case <-time.After(longWait):
		t.Fatal("handler's context never ended")
		return blockEnd{}
	}
}

// startRaw starts a test server with a rawHandler and connects a raw
// client to it; the server's SETTINGS have arrived when it returns.
func startRaw(t *testing.T, cfg ServerConfig) (*testServer, *rawHandler, *rawPeer) {
	t.Helper()
	h := newRawHandler()
	ts := newTestServer(t, cfg, h.handle)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{})
	p.expect(isType(http2.FrameSettings))
	return ts, h, p
}

// openBlocked opens a blockMethod stream and waits for its handler.
func openBlocked(t *testing.T, p *rawPeer, h *rawHandler, id uint32) *ServerStream {
	t.Helper()
	p.must(p.writeHeaders(id, false, reqFields(blockMethod)))
	return h.waitStarted(t)
}

// expectGoAway waits for GOAWAY code and the connection to close.
func expectGoAway(t *testing.T, p *rawPeer, code http2.ErrCode) rawFrame {
	t.Helper()
	f := p.expect(anyGoAway())
	if f.Code != code {
		t.Fatalf("GOAWAY %v (%q), want %v", f.Code, f.Data, code)
	}
	p.expectClosed()
	return f
}

// expectCanceled checks a handler saw its stream reset: its context is
// cancelled and Read fails with code, or (code OK: the client had ended
// its half before the reset) returns io.EOF.
func expectCanceled(t *testing.T, e blockEnd, code codes.Code) {
	t.Helper()
	if !errors.Is(e.ctxErr, context.Canceled) {
		t.Errorf("handler context: %v, want context.Canceled", e.ctxErr)
	}
	if code == codes.OK {
		if e.readErr != io.EOF {
			t.Errorf("handler Read: %v, want io.EOF", e.readErr)
		}
		return
	}
	if got := status.Code(e.readErr); got != code {
		t.Errorf("handler Read: %v, want %v", e.readErr, code)
	}
}

// ---- 1. preface ----

func TestRawBadPreface(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  string
		close bool // half-close after sending
	}{
		{name: "http1", send: "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"},
		{name: "garbage", send: strings.Repeat("\x00\xff garbage ", 8)},
		{name: "short then EOF", send: "PRI * HT", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			ts := newTestServer(t, ServerConfig{}, echoHandler)
			c, err := net.Dial("tcp", ts.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				c.(*net.TCPConn).CloseWrite()
			}
			// The server says nothing and closes: we read EOF (or a
			// reset, if our bytes were still unread).
			c.SetReadDeadline(time.Now().Add(longWait))
			n, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server did not close the connection")
			}
			if n != 0 {
				t.Errorf("server sent %d bytes to a bad preface", n)
			}
			ts.mu.Lock()
			conns := len(ts.conns)
			ts.mu.Unlock()
			if conns != 0 {
				t.Errorf("server accepted %d connections", conns)
			}
		})
	}
	t.Run("first frame not SETTINGS", func(t *testing.T) {
		noLeaks(t)
		ts := newTestServer(t, ServerConfig{}, echoHandler)
		c, err := net.Dial("tcp", ts.addr())
		if err != nil {
			t.Fatal(err)
		}
		p := newRawPeer(t, c, rawPeerOpts{})
		p.must(p.write(func(fr *http2.Framer) error {
			p.wbuf.WriteString(http2.ClientPreface)
			return fr.WritePing(false, [8]byte{1})
		}))
		p.startReader()
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
}

// ---- 2. DATA on idle and closed streams ----

func TestRawDataOnIdleStream(t *testing.T) {
	noLeaks(t)
	_, _, p := startRaw(t, ServerConfig{})
	p.unaryOK(1, echoMethod)
	p.must(p.writeData(5, false, []byte("who?")))
	expectGoAway(t, p, http2.ErrCodeProtocol)
}

func TestRawDataOnClosedStream(t *testing.T) {
	noLeaks(t)
	ts, h, p := startRaw(t, ServerConfig{})
	p.unaryOK(1, echoMethod)
	// RFC 9113 §6.1: DATA on a closed stream is a stream error
	// STREAM_CLOSED; the connection carries on.
	p.must(p.writeData(1, false, []byte("late")))
	p.expect(isRST(1, http2.ErrCodeStreamClosed))
	p.unaryOK(3, echoMethod)

	// Half-closed (remote): the client already sent END_STREAM.
	p.must(p.writeHeaders(5, true, reqFields(blockMethod)))
	h.waitStarted(t)
	p.must(p.writeData(5, false, []byte("after END_STREAM")))
	p.expect(isRST(5, http2.ErrCodeStreamClosed))
	expectCanceled(t, h.waitEnded(t), codes.OK)
	p.unaryOK(7, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
	pollUntil(t, "no open streams", func() bool { return ts.conn(0).activeStreams() == 0 })
}

// ---- 3. WINDOW_UPDATE ----

func TestRawWindowUpdate(t *testing.T) {
	t.Run("zero increment on a stream", func(t *testing.T) {
		noLeaks(t)
		_, h, p := startRaw(t, ServerConfig{})
		openBlocked(t, p, h, 1)
		p.must(p.writeWindowUpdate(1, 0))
		p.expect(isRST(1, http2.ErrCodeProtocol))
		expectCanceled(t, h.waitEnded(t), codes.Internal)
		p.unaryOK(3, echoMethod)
		p.expectNone(anyGoAway(), shortWait)
	})
	t.Run("zero increment on the connection", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.must(p.writeWindowUpdate(0, 0))
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
	t.Run("zero increment on an idle stream", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.unaryOK(1, echoMethod)
		// RFC 9113 §5.1: WINDOW_UPDATE on an idle stream is a
		// connection error, whatever its increment.
		p.must(p.writeWindowUpdate(7, 0))
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
	t.Run("connection window overflow", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		// 65535 + 2^31-1 is past the largest window (RFC 9113 §6.9.1).
		p.must(p.writeWindowUpdate(0, 1<<31-1))
		expectGoAway(t, p, http2.ErrCodeFlowControl)
	})
	t.Run("stream window overflow", func(t *testing.T) {
		noLeaks(t)
		ts, h, p := startRaw(t, ServerConfig{})
		openBlocked(t, p, h, 1)
		p.must(p.writeWindowUpdate(1, 1<<31-1))
		p.expect(isRST(1, http2.ErrCodeFlowControl))
		e := h.waitEnded(t)
		if !errors.Is(e.ctxErr, context.Canceled) {
			t.Errorf("handler context: %v, want context.Canceled", e.ctxErr)
		}
		if e.readErr == nil || e.readErr == io.EOF {
			t.Errorf("handler Read: %v, want a stream error", e.readErr)
		}
		p.unaryOK(3, echoMethod)
		p.expectNone(anyGoAway(), shortWait)
		pollUntil(t, "no open streams", func() bool { return ts.conn(0).activeStreams() == 0 })
	})
}

// ---- 4. header list size ----

func TestRawHeaderListTooLarge(t *testing.T) {
	big := func(n, size int) []string {
		var kv []string
		for i := range n {
			kv = append(kv, "big-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), strings.Repeat("v", size))
		}
		return kv
	}
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		// Decoded over DefaultMaxHeaderListSize (16 KiB) but encoded
		// under the hard cap: a stream error, answered with a status.
		{name: "many fields", kv: big(3, 6000)},
		{name: "one field", kv: big(1, 20000)},
		// 4000 small fields: about 160 KiB encoded, decoded to the end
		// (HPACK state) but not kept.
		{name: "far over the limit", kv: big(4000, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, _, p := startRaw(t, ServerConfig{})
			fields := reqFields(echoMethod, tc.kv...)
			// Sent as HEADERS + CONTINUATION: frames are at most 16 KiB.
			p.must(p.write(func(fr *http2.Framer) error {
				return writeBlock(fr, 1, false, p.encode(fields), 16384)
			}))
			r := p.readResponse(1)
			if r.httpStatus() != "200" || r.field("grpc-status") != "8" {
				t.Fatalf("response %+v, want a trailers-only RESOURCE_EXHAUSTED", r.frames)
			}
			p.unaryOK(3, echoMethod)
			p.expectNone(anyGoAway(), shortWait)
		})
	}
	for _, tc := range []struct {
		name string
		kv   []string
	}{
		// One 100 KB field: longer than one HPACK string may be (twice
		// the limit), which the decoder would have to buffer whole.
		{name: "one field far over the limit", kv: big(1, 100000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, _, p := startRaw(t, ServerConfig{})
			fields := reqFields(echoMethod, tc.kv...)
			p.write(func(fr *http2.Framer) error {
				return writeBlock(fr, 1, false, p.encode(fields), 16384)
			})
			expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
		})
	}
}

// writeBlock writes an encoded header block as HEADERS and CONTINUATION
// frames of at most maxFrame bytes.
func writeBlock(fr *http2.Framer, id uint32, endStream bool, block []byte, maxFrame int) error {
	first := true
	for {
		n := min(len(block), maxFrame)
		end := n == len(block)
		var err error
		if first {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n], EndStream: endStream, EndHeaders: end})
		} else {
			err = fr.WriteContinuation(id, end, block[:n])
		}
		if err != nil || end {
			return err
		}
		block, first = block[n:], false
	}
}

// ---- 5. endless CONTINUATION ----

func TestRawEndlessContinuation(t *testing.T) {
	// A header block of a million small fields: its bytes never run out.
	var kv []string
	for i := range 1 << 16 {
		kv = append(kv, "x-f", strings.Repeat("v", i%7))
	}
	for _, tc := range []struct {
		name string
		frag func(block []byte, i int) []byte
	}{
		{name: "empty", frag: func([]byte, int) []byte { return nil }},
		// One byte of the endless header block per frame.
		{name: "one byte", frag: func(block []byte, i int) []byte { return block[i : i+1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, _, p := startRaw(t, ServerConfig{})
			var block []byte
			p.must(p.write(func(fr *http2.Framer) error {
				block = p.encode(reqFields(echoMethod, kv...))
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:100]})
			}))
			block = block[100:]
			// Up to 50,000 CONTINUATION frames, in batches; the server
			// must give up long before.
			sent := 0
			for sent < min(50000, len(block)-100) && !p.closed() {
				err := p.write(func(fr *http2.Framer) error {
					for range 100 {
						if err := fr.WriteContinuation(1, false, tc.frag(block, sent)); err != nil {
							return err
						}
						sent++
					}
					return nil
				})
				if err != nil {
					break
				}
				if _, ok := p.find(anyGoAway(), 0, false); ok {
					break
				}
			}
			expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
		})
	}
}

// ---- 9. empty DATA frames ----

func TestRawEmptyDataFrames(t *testing.T) {
	noLeaks(t)
	_, h, p := startRaw(t, ServerConfig{})
	openBlocked(t, p, h, 1)
	// A few are fine (and a non-empty frame resets the count)...
	p.must(p.write(func(fr *http2.Framer) error {
		for range maxEmptyDataFrames {
			fr.WriteData(1, false, nil)
		}
		return fr.WriteData(1, false, []byte{0})
	}))
	p.expectNone(anyGoAway(), shortWait)
	// ...but not an endless run of them (CVE-2019-9518).
	p.write(func(fr *http2.Framer) error {
		for range maxEmptyDataFrames + 1 {
			fr.WriteData(1, false, nil)
		}
		return nil
	})
	expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
	e := h.waitEnded(t)
	if got := status.Code(e.readErr); got != codes.Unavailable {
		t.Errorf("handler Read after the connection closed: %v, want UNAVAILABLE", e.readErr)
	}
}

// ---- 10. deadlines ----

func TestRawServerDeadline(t *testing.T) {
	noLeaks(t)
	ts, h, p := startRaw(t, ServerConfig{})
	p.must(p.writeHeaders(1, false, reqFields(blockMethod, "grpc-timeout", "50m")))
	s := h.waitStarted(t)
	if dl, ok := s.Context().Deadline(); !ok || time.Until(dl) > 50*time.Millisecond {
		t.Errorf("handler deadline %v, %v: want within 50ms", dl, ok)
	}
	e := h.waitEnded(t)
	if !errors.Is(e.ctxErr, context.DeadlineExceeded) {
		t.Errorf("handler context: %v, want context.DeadlineExceeded", e.ctxErr)
	}
	if got := status.Code(e.readErr); got != codes.DeadlineExceeded {
		t.Errorf("handler Read: %v, want DEADLINE_EXCEEDED", e.readErr)
	}
	// The stream was still open: the server resets it.
	r := p.readResponse(1)
	if r.rst == nil || *r.rst != http2.ErrCodeCancel || r.headers != nil {
		t.Errorf("client got %+v, want only RST_STREAM CANCEL", r.frames)
	}
	p.unaryOK(3, echoMethod)
	pollUntil(t, "no open streams", func() bool { return ts.conn(0).activeStreams() == 0 })
}

func TestRawMalformedTimeout(t *testing.T) {
	noLeaks(t)
	_, _, p := startRaw(t, ServerConfig{})
	id := uint32(1)
	for _, v := range []string{"1x", "123456789S", "-1S", "S", "1.5S", "1s"} {
		p.must(p.writeHeaders(id, false, reqFields(echoMethod, "grpc-timeout", v)))
		r := p.readResponse(id)
		if r.httpStatus() != "200" || r.field("grpc-status") != "13" || r.trailers != nil {
			t.Errorf("grpc-timeout %q: got %+v, want a trailers-only INTERNAL", v, r.frames)
		}
		id += 2
	}
	p.unaryOK(id, echoMethod)
}

// ---- 11. request header validation ----

func TestRawRequestHeaderValidation(t *testing.T) {
	replace := func(name, value string) []hpack.HeaderField {
		fs := reqFields(echoMethod)
		for i := range fs {
			if fs[i].Name == name {
				fs[i].Value = value
			}
		}
		return fs
	}
	without := func(name string) []hpack.HeaderField {
		var fs []hpack.HeaderField
		for _, f := range reqFields(echoMethod) {
			if f.Name != name {
				fs = append(fs, f)
			}
		}
		return fs
	}
	type want struct {
		http string        // a response with this :status (trailers-only, or an HTTP answer with a body)
		grpc string        // and this grpc-status
		rst  http2.ErrCode // or RST_STREAM with this code (when http is "")
	}
	for _, tc := range []struct {
		name   string
		fields []hpack.HeaderField
		want   want
	}{
		{"GET", replace(":method", "GET"), want{http: "405", grpc: "13"}},
		{"content-type text/html", replace("content-type", "text/html"), want{http: "415", grpc: "13"}},
		{"no content-type", without("content-type"), want{http: "415", grpc: "13"}},
		{"no :path", without(":path"), want{rst: http2.ErrCodeProtocol}},
		{"no :method", without(":method"), want{rst: http2.ErrCodeProtocol}},
		{"upper-case name", reqFields(echoMethod, "X-Upper", "1"), want{rst: http2.ErrCodeProtocol}},
		{"connection header", reqFields(echoMethod, "connection", "keep-alive"), want{rst: http2.ErrCodeProtocol}},
		{"te gzip", replace("te", "gzip"), want{rst: http2.ErrCodeProtocol}},
		{"pseudo after regular", append(reqFields(echoMethod), hpack.HeaderField{Name: ":foo", Value: "1"}), want{rst: http2.ErrCodeProtocol}},
		{"unknown pseudo-header", append([]hpack.HeaderField{{Name: ":foo", Value: "1"}}, reqFields(echoMethod)...), want{rst: http2.ErrCodeProtocol}},
		{"response pseudo-header", append([]hpack.HeaderField{{Name: ":status", Value: "200"}}, reqFields(echoMethod)...), want{rst: http2.ErrCodeProtocol}},
		{"repeated :path", append([]hpack.HeaderField{{Name: ":path", Value: "/a/b"}}, reqFields(echoMethod)...), want{rst: http2.ErrCodeProtocol}},
		{"bad -bin metadata", reqFields(echoMethod, "x-data-bin", "!!!"), want{http: "200", grpc: "13"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, _, p := startRaw(t, ServerConfig{})
			p.must(p.writeHeaders(1, false, tc.fields))
			r := p.readResponse(1)
			if tc.want.http != "" {
				if r.httpStatus() != tc.want.http || r.field("grpc-status") != tc.want.grpc || r.trailers != nil {
					t.Fatalf("got %+v, want :status %s grpc-status %s without trailers", r.frames, tc.want.http, tc.want.grpc)
				}
			} else if r.rst == nil || *r.rst != tc.want.rst || r.headers != nil {
				t.Fatalf("got %+v, want RST_STREAM %v", r.frames, tc.want.rst)
			}
			p.unaryOK(3, echoMethod)
			p.expectNone(anyGoAway(), shortWait)
		})
	}
	t.Run("HEADERS padding past the frame", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.unaryOK(1, echoMethod)
		// The field block cannot be decoded, so the HPACK state is lost:
		// a connection error (RFC 9113 §4.3, §6.2).
		p.write(func(fr *http2.Framer) error {
			payload := append([]byte{200}, p.encode(reqFields(echoMethod))...)
			return fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersPadded, 3, payload)
		})
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
	t.Run("even stream id", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.must(p.writeHeaders(2, false, reqFields(echoMethod)))
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
	// RFC 9113 §5.1.1: a new stream's id must be larger than every id the
	// client used before; an unexpected id is a connection error
	// PROTOCOL_ERROR.
	t.Run("stream id lower than a used one", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.unaryOK(5, echoMethod)
		p.must(p.writeHeaders(3, false, reqFields(echoMethod)))
		f := expectGoAway(t, p, http2.ErrCodeProtocol)
		if f.LastStreamID != 5 {
			t.Errorf("GOAWAY last stream id %d, want 5", f.LastStreamID)
		}
	})
	t.Run("stream id reused", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		p.unaryOK(1, echoMethod)
		p.must(p.writeHeaders(1, false, reqFields(echoMethod)))
		expectGoAway(t, p, http2.ErrCodeProtocol)
	})
	t.Run("HEADERS after END_STREAM", func(t *testing.T) {
		noLeaks(t)
		h := newRawHandler()
		ts := newTestServer(t, ServerConfig{}, h.handle)
		p := dialRawClient(t, ts.addr(), rawPeerOpts{})
		p.must(p.writeHeaders(1, true, reqFields(blockMethod)))
		h.waitStarted(t)
		// RFC 9113 §5.1: half-closed (remote) takes no more HEADERS.
		p.must(p.writeHeaders(1, true, []hpack.HeaderField{{Name: "x-trailer", Value: "1"}}))
		p.expect(isRST(1, http2.ErrCodeStreamClosed))
		expectCanceled(t, h.waitEnded(t), codes.OK)
		p.unaryOK(3, echoMethod)
	})
}

// ---- 12. MAX_CONCURRENT_STREAMS ----

func TestRawMaxConcurrentStreams(t *testing.T) {
	noLeaks(t)
	ts, h, p := startRaw(t, ServerConfig{MaxConcurrentStreams: 2})
	openBlocked(t, p, h, 1)
	openBlocked(t, p, h, 3)
	// RFC 9113 §5.1.2: the third is refused, unprocessed.
	p.must(p.writeHeaders(5, false, reqFields(blockMethod)))
	p.expect(isRST(5, http2.ErrCodeRefusedStream))
	select {
	case <-h.started:
		t.Fatal("a handler ran for the refused stream")
	case <-time.After(shortWait):
	}
	if n := ts.conn(0).activeStreams(); n != 2 {
		t.Errorf("%d open streams, want 2", n)
	}
	// Once one ends, a new stream is served.
	p.must(p.writeRST(1, http2.ErrCodeCancel))
	expectCanceled(t, h.waitEnded(t), codes.Canceled)
	p.unaryOK(7, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
}

// ---- 13. frames to ignore, PUSH_PROMISE ----

func TestRawIgnoredFrames(t *testing.T) {
	noLeaks(t)
	_, h, p := startRaw(t, ServerConfig{})
	openBlocked(t, p, h, 1)
	p.must(p.write(func(fr *http2.Framer) error {
		// RFC 9113 §4.1, §5.5: unknown frame types are ignored.
		fr.WriteRawFrame(0xfa, 0xff, 0, []byte("hello"))
		fr.WriteRawFrame(0xfb, 0, 1, bytes.Repeat([]byte{1}, 1000))
		// PRIORITY (deprecated, RFC 9113 §5.3.2) on open and idle
		// streams, and PRIORITY_UPDATE.
		fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 200})
		fr.WritePriority(101, http2.PriorityParam{StreamDep: 1, Weight: 1})
		return fr.WritePriorityUpdate(1, "u=1")
	}))
	p.unaryOK(3, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
	p.expectNone(anyRST(1), 0)
}

func TestRawPushPromiseFromClient(t *testing.T) {
	noLeaks(t)
	_, h, p := startRaw(t, ServerConfig{})
	openBlocked(t, p, h, 1)
	p.write(func(fr *http2.Framer) error {
		return fr.WritePushPromise(http2.PushPromiseParam{
			StreamID:      1,
			PromiseID:     2,
			BlockFragment: p.encode(reqFields(echoMethod)),
			EndHeaders:    true,
		})
	})
	expectGoAway(t, p, http2.ErrCodeProtocol)
	if e := h.waitEnded(t); status.Code(e.readErr) != codes.Unavailable {
		t.Errorf("handler Read: %v, want UNAVAILABLE", e.readErr)
	}
}
