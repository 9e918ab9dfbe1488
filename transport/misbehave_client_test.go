package transport

// Tests that drive our client transport with a raw, misbehaving HTTP/2
// server (rawpeer_test.go).

import (
	"encoding/base64"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// startRawServer connects a client to a raw server peer; the client's
// SETTINGS have arrived when it returns.
func startRawServer(t *testing.T) (*http2Client, *rawPeer) {
	t.Helper()
	c, p := dialRawServer(t, ConnectOptions{})
	p.expect(isType(http2.FrameSettings))
	return c, p
}

// dialRawServer connects a client made with opts to a new raw server. The
// raw server accepts (and so writes its SETTINGS) while the client waits
// for them; the client's preface and SETTINGS are left unread.
func dialRawServer(t *testing.T, opts ConnectOptions) (*http2Client, *rawPeer) {
	t.Helper()
	rs := newRawServer(t)
	pc := make(chan *rawPeer, 1)
	go func() {
		var p *rawPeer
		defer func() { pc <- p }() // nil when accept failed the test
		p = rs.accept(t, rawPeerOpts{})
	}()
	c := newTestClient(t, rs.addr(), opts)
	p := <-pc
	if p == nil {
		t.FailNow()
	}
	return c, p
}

// rawOpenStream opens a client stream and waits for its HEADERS at the raw
// server; it returns the stream and its id.
func rawOpenStream(t *testing.T, c *http2Client, p *rawPeer) (*ClientStream, uint32) {
	t.Helper()
	s, err := c.NewStream(rawCtx(t), &CallHdr{Method: echoMethod})
	if err != nil {
		t.Fatal(err)
	}
	f := p.expect(anyHeaders())
	if f.header(":path") != echoMethod {
		t.Fatalf("request HEADERS %v", f)
	}
	return s, f.StreamID
}

// rawStreamStatus waits for a client stream's final status.
func rawStreamStatus(t *testing.T, s *ClientStream) (code codes.Code, msg string) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(longWait):
		t.Fatal("client stream never ended")
	}
	return s.Status().Code(), s.Status().Message()
}

func rawOKHeaders() []string {
	return []string{":status", "200", "content-type", "application/grpc"}
}

func TestRawClientHeadersOnEvenStream(t *testing.T) {
	noLeaks(t)
	c, p := startRawServer(t)
	s, _ := rawOpenStream(t, c, p)
	// Servers do not open streams (we disable push): RFC 9113 §5.1.1.
	p.must(p.writeHeaders(2, false, respFields(rawOKHeaders()...)))
	expectGoAway(t, p, http2.ErrCodeProtocol)
	if code, msg := rawStreamStatus(t, s); code != codes.Unavailable {
		t.Errorf("open stream: %v %q, want UNAVAILABLE", code, msg)
	}
	select {
	case <-c.Done():
	case <-time.After(longWait):
		t.Fatal("client connection not closed")
	}
}

func TestRawClientHTTPStatusWithoutGRPCStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		endStream bool // trailers-only, or headers that need a body
		http      string
		want      codes.Code
	}{
		{"503 trailers-only", true, "503", codes.Unavailable},
		{"503 headers", false, "503", codes.Unavailable},
		{"404 trailers-only", true, "404", codes.Unimplemented},
		{"200 trailers-only", true, "200", codes.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			c, p := startRawServer(t)
			s, id := rawOpenStream(t, c, p)
			p.must(p.writeHeaders(id, tc.endStream, respFields(":status", tc.http, "content-type", "text/html")))
			if code, msg := rawStreamStatus(t, s); code != tc.want {
				t.Errorf("status %v %q, want %v", code, msg, tc.want)
			}
			if !tc.endStream {
				// The client gives up on the stream and says so.
				p.expect(isRST(id, http2.ErrCodeCancel))
			}
			// The connection is fine: another stream works.
			s2, id2 := rawOpenStream(t, c, p)
			p.must(p.writeHeaders(id2, true, respFields(append(rawOKHeaders(), "grpc-status", "0")...)))
			if code, msg := rawStreamStatus(t, s2); code != codes.OK {
				t.Errorf("second stream: %v %q", code, msg)
			}
		})
	}
}

// TestRawClientStatusAfterMessages: trailers with an error status (or
// corrupt status details) after a message.
func TestRawClientStatusAfterMessages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trailers []string
		want     codes.Code
	}{
		{"NOT_FOUND", []string{"grpc-status", "5", "grpc-message", "gone"}, codes.NotFound},
		{"details not base64", []string{"grpc-status", "5", "grpc-status-details-bin", "!!!not base64!!!"}, codes.Internal},
		{"details not a google.rpc.Status", []string{"grpc-status", "5", "grpc-status-details-bin", base64.RawStdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff, 0xff})}, codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			c, p := startRawServer(t)
			s, id := rawOpenStream(t, c, p)
			p.must(p.writeHeaders(id, false, respFields(rawOKHeaders()...)))
			p.must(p.writeMsg(id, false, []byte("reply")))
			p.must(p.writeHeaders(id, true, respFields(tc.trailers...)))
			if code, msg := rawStreamStatus(t, s); code != tc.want {
				t.Errorf("status %v %q, want %v", code, msg, tc.want)
			}
			// The message sent before the trailers is still delivered
			// (the stream ended with a status, not a reset), then io.EOF.
			if m, err := readMsg(s); err != nil || string(m) != "reply" {
				t.Fatalf("message %q, %v", m, err)
			}
			if _, err := readMsg(s); err != io.EOF {
				t.Errorf("read after the message: %v, want io.EOF", err)
			}
			p.expectNone(anyGoAway(), 0)
		})
	}
}

func TestRawClientGoAwayBelowOpenStream(t *testing.T) {
	noLeaks(t)
	c, p := startRawServer(t)
	s1, id1 := rawOpenStream(t, c, p)
	s3, id3 := rawOpenStream(t, c, p)
	if id3 <= id1 {
		t.Fatalf("stream ids %d, %d", id1, id3)
	}
	// RFC 9113 §6.8: streams above the last stream id were not processed.
	p.must(p.write(func(fr *http2.Framer) error { return fr.WriteGoAway(id1, http2.ErrCodeNo, []byte("bye")) }))
	if code, msg := rawStreamStatus(t, s3); code != codes.Unavailable {
		t.Errorf("stream above the GOAWAY: %v %q, want UNAVAILABLE", code, msg)
	}
	if !s3.Unprocessed() {
		t.Error("stream above the GOAWAY: Unprocessed() = false, want true")
	}
	select {
	case <-c.GoAway():
	case <-time.After(longWait):
		t.Fatal("GoAway() not closed")
	}
	if _, err := c.NewStream(rawCtx(t), &CallHdr{Method: echoMethod}); err == nil {
		t.Error("NewStream after GOAWAY succeeded")
	}
	// The stream at the last id finishes normally.
	select {
	case <-s1.Done():
		t.Fatalf("stream at the GOAWAY's last id ended: %v", s1.Status())
	default:
	}
	if s1.Unprocessed() {
		t.Error("stream at the GOAWAY's last id: Unprocessed() = true")
	}
	p.must(p.writeHeaders(id1, false, respFields(rawOKHeaders()...)))
	p.must(p.writeMsg(id1, false, []byte("reply")))
	p.must(p.writeHeaders(id1, true, respFields("grpc-status", "0")))
	if m, err := readMsg(s1); err != nil || string(m) != "reply" {
		t.Fatalf("message %q, %v", m, err)
	}
	if code, msg := rawStreamStatus(t, s1); code != codes.OK {
		t.Errorf("stream at the GOAWAY's last id: %v %q", code, msg)
	}
	// With no stream left, the client closes the connection.
	p.expectClosed()
}

func TestRawClientRefusedStream(t *testing.T) {
	noLeaks(t)
	c, p := startRawServer(t)
	s, id := rawOpenStream(t, c, p)
	p.must(p.writeRST(id, http2.ErrCodeRefusedStream))
	if code, msg := rawStreamStatus(t, s); code != codes.Unavailable {
		t.Errorf("refused stream: %v %q, want UNAVAILABLE", code, msg)
	}
	if !s.Unprocessed() {
		t.Error("refused stream: Unprocessed() = false, want true")
	}
	// Other codes are not retriable; the connection carries on.
	s2, id2 := rawOpenStream(t, c, p)
	p.must(p.writeRST(id2, http2.ErrCodeInternal))
	if code, _ := rawStreamStatus(t, s2); code != codes.Internal || s2.Unprocessed() {
		t.Errorf("stream reset with INTERNAL_ERROR: %v, unprocessed %v", code, s2.Unprocessed())
	}
	s3, id3 := rawOpenStream(t, c, p)
	p.must(p.writeHeaders(id3, true, respFields(append(rawOKHeaders(), "grpc-status", "0")...)))
	if code, msg := rawStreamStatus(t, s3); code != codes.OK {
		t.Errorf("stream after the resets: %v %q", code, msg)
	}
	p.expectNone(anyGoAway(), shortWait)
}
