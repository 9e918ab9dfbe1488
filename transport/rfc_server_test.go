package transport

// Raw-frame tests of the RFC 9113 rules a server enforces on requests:
// non-gRPC requests answered over HTTP, MAX_CONCURRENT_STREAMS, streams
// depending on themselves and content-length. Each checks that the
// connection serves a normal call afterwards.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/codes"
)

// TestRawContentLengthMismatchIsStreamError: a request body that does not
// add up to its content-length is malformed (RFC 9113 §8.1.1): the
// stream, not the connection, ends with PROTOCOL_ERROR.
func TestRawContentLengthMismatchIsStreamError(t *testing.T) {
	msg := append(frameMsg(4), "abcd"...) // 9 bytes
	for _, tc := range []struct {
		name   string
		length string
		send   func(p *rawPeer)
	}{
		{"one DATA frame too long", "5", func(p *rawPeer) {
			p.must(p.writeData(1, true, msg))
		}},
		{"one DATA frame too long, stream left open", "5", func(p *rawPeer) {
			p.must(p.writeData(1, false, msg))
		}},
		{"several DATA frames too long", "12", func(p *rawPeer) {
			p.must(p.writeData(1, false, msg))
			p.must(p.writeData(1, false, msg))
		}},
		{"several DATA frames too short", "20", func(p *rawPeer) {
			p.must(p.writeData(1, false, msg))
			p.must(p.writeData(1, true, msg))
		}},
		{"padded DATA frame too long", "9", func(p *rawPeer) {
			// Padding is not body: 9 data bytes fit, 10 do not.
			p.must(p.write(func(fr *http2.Framer) error {
				return fr.WriteDataPadded(1, true, append(bytes.Clone(msg), 'x'), make([]byte, 20))
			}))
		}},
		{"empty END_STREAM too short", "10", func(p *rawPeer) {
			p.must(p.writeData(1, false, msg))
			p.must(p.writeData(1, true, nil))
		}},
		{"trailers too short", "10", func(p *rawPeer) {
			p.must(p.writeData(1, false, msg))
			p.must(p.writeHeaders(1, true, respFields("x-trailer", "1")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, h, p := startRaw(t, ServerConfig{})
			p.must(p.writeHeaders(1, false, reqFields(blockMethod, "content-length", tc.length)))
			h.waitStarted(t)
			tc.send(p)
			p.expect(isRST(1, http2.ErrCodeProtocol))
			expectCanceled(t, h.waitEnded(t), codes.Internal)
			p.unaryOK(3, echoMethod)
			p.expectNone(anyGoAway(), shortWait)
		})
	}
	for _, tc := range []struct {
		name      string
		length    string
		endStream bool
	}{
		{"not a number", "nine", false},
		{"negative", "-1", false},
		{"too large", "99999999999999999999", false},
		{"END_STREAM on HEADERS with a body announced", "9", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, h, p := startRaw(t, ServerConfig{})
			p.must(p.writeHeaders(1, tc.endStream, reqFields(echoMethod, "content-length", tc.length)))
			r := p.readResponse(1)
			if r.rst == nil || *r.rst != http2.ErrCodeProtocol || r.headers != nil {
				t.Fatalf("got %+v, want RST_STREAM PROTOCOL_ERROR", r.frames)
			}
			select {
			case s := <-h.started:
				t.Fatalf("a handler ran for the malformed request %d", s.ID())
			default:
			}
			p.unaryOK(3, echoMethod)
			p.expectNone(anyGoAway(), shortWait)
		})
	}
	t.Run("matching content-length", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		for i, split := range []int{9, 3, 0} {
			id := uint32(2*i + 1)
			p.must(p.writeHeaders(id, false, reqFields(echoMethod, "content-length", fmt.Sprint(len(msg)))))
			p.must(p.writeData(id, false, msg[:split]))
			p.must(p.writeData(id, true, msg[split:]))
			r := p.readResponse(id)
			if r.rst != nil || r.field("grpc-status") != "0" || !bytes.Equal(r.data, msg) {
				t.Fatalf("split at %d: got %+v", split, r.frames)
			}
		}
		p.expectNone(anyGoAway(), shortWait)
	})
}

// httpFields is a request as a plain HTTP/2 client (or a conformance
// tester) sends it: method, path and, if not empty, content-type.
func httpFields(method, contentType string) []hpack.HeaderField {
	fs := []hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/"},
		{Name: ":authority", Value: "raw.test"},
	}
	if contentType != "" {
		fs = append(fs, hpack.HeaderField{Name: "content-type", Value: contentType})
	}
	return fs
}

// expectHTTPAnswer reads the answer to a request that is not gRPC on
// stream id: HEADERS with :status want, text/plain, then the body in DATA
// with END_STREAM, and no RST_STREAM before it.
func expectHTTPAnswer(t *testing.T, p *rawPeer, id uint32, want string) {
	t.Helper()
	hf := p.expect(onStream(id))
	if hf.Type != http2.FrameHeaders || hf.endStream() {
		t.Fatalf("got %v, want HEADERS without END_STREAM", hf)
	}
	if got := hf.header(":status"); got != want {
		t.Errorf(":status %q, want %q", got, want)
	}
	if got := hf.header("content-type"); got != "text/plain; charset=utf-8" {
		t.Errorf("content-type %q, want text/plain; charset=utf-8", got)
	}
	if allow := hf.header("allow"); (want == "405") != (allow == "POST") {
		t.Errorf("allow %q with :status %s", allow, want)
	}
	var body []byte
	for {
		f := p.expect(onStream(id))
		if f.Type != http2.FrameData {
			t.Fatalf("got %v, want DATA with the body", f)
		}
		body = append(body, f.Data...)
		if f.endStream() {
			break
		}
	}
	if !bytes.HasPrefix(body, []byte("h2rpc: gRPC requires")) {
		t.Errorf("body %q", body)
	}
	if cl := hf.header("content-length"); cl != fmt.Sprint(len(body)) {
		t.Errorf("content-length %q, body of %d bytes", cl, len(body))
	}
}

// TestRawNonGRPCRequestGetsHTTPAnswer: a request that is not gRPC gets
// an HTTP error status with a text/plain body (405 for a method other
// than POST, 415 for a content-type other than application/grpc*, checked
// first as grpc-go does), and its stream is not reset.
func TestRawNonGRPCRequestGetsHTTPAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, method, contentType, want string
	}{
		{"GET /", "GET", "", "415"},
		{"POST without content-type", "POST", "", "415"},
		{"POST text/html", "POST", "text/html", "415"},
		{"GET application/grpc", "GET", "application/grpc", "405"},
		{"PUT application/grpc+proto", "PUT", "application/grpc+proto", "405"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			ts, h, p := startRaw(t, ServerConfig{})
			p.must(p.writeHeaders(1, true, httpFields(tc.method, tc.contentType)))
			expectHTTPAnswer(t, p, 1, tc.want)
			// Both sides ended: the stream is closed, and a RST_STREAM
			// now would be a frame on a closed stream (§5.1).
			pollUntil(t, "the answered stream to close", func() bool { return ts.conn(0).activeStreams() == 0 })
			p.unaryOK(3, echoMethod)
			p.expectNone(anyRST(1), 0)
			p.expectNone(anyGoAway(), shortWait)
			select {
			case s := <-h.started:
				t.Fatalf("a handler ran for stream %d", s.ID())
			default:
			}
		})
	}
}

// TestRawAnsweredRequestStaysOpenUntilItEnds: the answer to a request that
// is not gRPC does not reset the stream while the client still sends
// (§8.1): its DATA is discarded (the connection window comes back),
// WINDOW_UPDATE and PRIORITY on it are fine, and it closes when the
// request ends.
func TestRawAnsweredRequestStaysOpenUntilItEnds(t *testing.T) {
	noLeaks(t)
	ts, _, p := startRaw(t, ServerConfig{})
	p.must(p.writeHeaders(1, false, httpFields("POST", "text/html")))
	expectHTTPAnswer(t, p, 1, "415")
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for range 3 {
		p.must(p.writeData(1, false, chunk))
	}
	p.must(p.writeWindowUpdate(1, 1000))
	p.must(p.write(func(fr *http2.Framer) error {
		return fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 10})
	}))
	// A call on another stream goes through meanwhile, and the answered
	// stream was neither reset nor closed.
	p.unaryOK(3, echoMethod)
	p.expectNone(anyRST(1), shortWait)
	if n := ts.conn(0).activeStreams(); n != 1 {
		t.Fatalf("%d open streams, want the answered one", n)
	}
	pollUntil(t, "the connection window to come back", func() bool {
		return p.sumWindowUpdates(0) >= uint64(3*len(chunk))
	})
	p.must(p.writeData(1, true, []byte("end")))
	pollUntil(t, "the answered stream to close", func() bool { return ts.conn(0).activeStreams() == 0 })
	p.unaryOK(5, echoMethod)
	p.expectNone(anyRST(1), 0)
	p.expectNone(anyGoAway(), shortWait)
}

// TestRawAnsweredRequestWindowOverflowIsStreamError: a WINDOW_UPDATE that
// pushes the window of an answered, half-closed (local) stream past
// 2^31-1 is a stream error FLOW_CONTROL_ERROR (§6.9.1).
func TestRawAnsweredRequestWindowOverflowIsStreamError(t *testing.T) {
	noLeaks(t)
	ts, _, p := startRaw(t, ServerConfig{})
	p.must(p.writeHeaders(1, false, httpFields("GET", "")))
	expectHTTPAnswer(t, p, 1, "415")
	p.must(p.writeWindowUpdate(1, 1<<31-1))
	p.must(p.writeWindowUpdate(1, 1<<31-1))
	p.expect(isRST(1, http2.ErrCodeFlowControl))
	pollUntil(t, "the reset stream to close", func() bool { return ts.conn(0).activeStreams() == 0 })
	p.unaryOK(3, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
}

// TestRawAnsweredRequestNeverEndedIsReset: a client that never finishes
// an answered request does not hold the stream forever: once the answer
// is out it is reset with NO_ERROR (§8.1), after the answer.
func TestRawAnsweredRequestNeverEndedIsReset(t *testing.T) {
	noLeaks(t)
	ts, _, p := startRaw(t, ServerConfig{answerLinger: 20 * time.Millisecond})
	p.must(p.writeHeaders(1, false, httpFields("GET", "")))
	expectHTTPAnswer(t, p, 1, "415")
	p.expect(isRST(1, http2.ErrCodeNo))
	pollUntil(t, "the reset stream to close", func() bool { return ts.conn(0).activeStreams() == 0 })
	// DATA the client sent before it saw the reset is ignored.
	p.must(p.writeData(1, true, []byte("late")))
	p.unaryOK(3, echoMethod)
	p.expectNone(anyRST(1), shortWait)
	p.expectNone(anyGoAway(), 0)
}

// TestRawMaxConcurrentStreamsCountsAnsweredStreams: streams answered
// without a handler but not yet ended by the client are open (half-closed
// local) and count toward the MAX_CONCURRENT_STREAMS we announced; a
// HEADERS past it is refused with REFUSED_STREAM (§5.1.2), its id used.
func TestRawMaxConcurrentStreamsCountsAnsweredStreams(t *testing.T) {
	noLeaks(t)
	ts, h, p := startRaw(t, ServerConfig{MaxConcurrentStreams: 2})
	p.must(p.writeHeaders(1, false, httpFields("GET", "")))
	expectHTTPAnswer(t, p, 1, "415")
	openBlocked(t, p, h, 3)
	p.must(p.writeHeaders(5, false, httpFields("GET", "")))
	p.expect(isRST(5, http2.ErrCodeRefusedStream))
	p.must(p.writeHeaders(7, false, reqFields(echoMethod)))
	p.expect(isRST(7, http2.ErrCodeRefusedStream))
	// Frames the client sent on a refused stream before it saw the
	// reset are ignored: DATA, and trailers, whose block still updates
	// the HPACK state.
	p.must(p.writeData(7, false, append(frameMsg(1), 'x')))
	p.must(p.writeHeaders(7, true, respFields("x-trailer", "refused")))
	if n := ts.conn(0).activeStreams(); n != 2 {
		t.Errorf("%d open streams, want 2", n)
	}
	// The client ends the answered request: a slot frees.
	p.must(p.writeData(1, true, nil))
	pollUntil(t, "the answered stream to close", func() bool { return ts.conn(0).activeStreams() == 1 })
	p.unaryOK(9, echoMethod)
	p.must(p.writeRST(3, http2.ErrCodeCancel))
	expectCanceled(t, h.waitEnded(t), codes.Canceled)
	p.unaryOK(11, echoMethod)
	p.expectNone(anyRST(7), shortWait)
	p.expectNone(anyGoAway(), 0)
}

// TestRawMaxConcurrentStreamsCountsUnsentTrailers: a stream whose handler
// finished is still open for the client until our trailers reach it; while
// they wait for flow-control window, it counts toward the
// MAX_CONCURRENT_STREAMS we announced (§5.1.2), and a HEADERS past the
// limit is refused.
func TestRawMaxConcurrentStreamsCountsUnsentTrailers(t *testing.T) {
	noLeaks(t)
	h := newRawHandler()
	ts := newTestServer(t, ServerConfig{MaxConcurrentStreams: 1}, h.handle)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}})
	p.expect(isType(http2.FrameSettings))
	p.must(p.writeHeaders(1, false, reqFields(echoMethod)))
	p.must(p.writeMsg(1, true, []byte("stuck")))
	// The echo handler answers and returns; its reply and trailers wait
	// for a window the client does not give.
	pollUntil(t, "the handler to finish", func() bool { return ts.conn(0).activeStreams() == 0 })
	p.must(p.writeHeaders(3, false, reqFields(echoMethod)))
	p.expect(isRST(3, http2.ErrCodeRefusedStream))
	// Window for stream 1 lets its reply and trailers out: its slot
	// frees, and new streams are served.
	p.must(p.write(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	}))
	r := p.readResponse(1)
	if r.rst != nil || r.field("grpc-status") != "0" || !bytes.Equal(r.data, append(frameMsg(5), "stuck"...)) {
		t.Fatalf("stream 1: got %+v", r.frames)
	}
	p.unaryOK(5, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
}

// TestRawNonGRPCRequestOverTLS: over TLS, a request that is not gRPC gets
// the same HTTP answer and the connection serves on.
func TestRawNonGRPCRequestOverTLS(t *testing.T) {
	noLeaks(t)
	cert, pool := testcert.New(t)
	h := newRawHandler()
	ts := newTestServerWith(t, ServerConfig{}, h.handle, tlsHandshaker(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}))
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: longWait}, Config: &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}}}
	conn, err := d.DialContext(rawCtx(t), "tcp", ts.addr())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn, rawPeerOpts{})
	p.must(p.write(func(fr *http2.Framer) error {
		p.wbuf.WriteString(http2.ClientPreface)
		return fr.WriteSettings()
	}))
	p.startReader()
	p.expect(isType(http2.FrameSettings))
	p.must(p.writeHeaders(1, false, httpFields("GET", "")))
	expectHTTPAnswer(t, p, 1, "415")
	p.expectNone(anyRST(1), shortWait)
	p.must(p.writeData(1, true, []byte("bye")))
	pollUntil(t, "the answered stream to close", func() bool { return ts.conn(0).activeStreams() == 0 })
	p.unaryOK(3, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
}
