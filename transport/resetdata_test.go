package transport

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"github.com/h2rpc/h2rpc/rpc/codes"
)

// TestDataAfterOurResetIsIgnored: DATA the server sent before our
// RST_STREAM reached it is ignored (RFC 9113 §5.1, §6.4), not answered
// with one RST_STREAM(STREAM_CLOSED) per frame; its bytes still count
// against the connection window and are refunded, so a later stream can
// receive more than a window's worth, and the connection carries on.
func TestDataAfterOurResetIsIgnored(t *testing.T) {
	noLeaks(t)
	const window = int(flowcontrol.DefaultWindowSize) // fixed windows: no BDP, no SETTINGS to track
	c, p := dialRawServer(t, ConnectOptions{InitialWindowSize: uint32(window), InitialConnWindowSize: uint32(window)})
	p.expect(isType(http2.FrameSettings))

	s, id := rawOpenStream(t, c, p)
	p.must(p.writeHeaders(id, false, respFields(rawOKHeaders()...)))
	s.Close(nil)
	p.expect(isRST(id, http2.ErrCodeCancel))
	// In flight when we reset: three frames, most of the stream window.
	const chunk = 16 << 10
	connSent := 0
	for range 3 {
		p.must(p.writeData(id, false, make([]byte, chunk)))
		connSent += chunk
	}

	// Another stream receives a message of several windows.
	s2, id2 := rawOpenStream(t, c, p)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4*window/16)
	got := make(chan []byte, 1)
	go func() {
		m, err := readMsg(s2)
		if err != nil {
			t.Errorf("reading the second stream: %v", err)
		}
		got <- m
	}()
	p.must(p.writeHeaders(id2, false, respFields(rawOKHeaders()...)))
	body := append(frameMsg(len(msg)), msg...)
	sent2 := 0
	for sent2 < len(body) {
		n := min(chunk, len(body)-sent2)
		pollUntil(t, "window for the next DATA frame", func() bool {
			conn := window + int(p.sumWindowUpdates(0)) - connSent
			stream := window + int(p.sumWindowUpdates(id2)) - sent2
			return conn >= n && stream >= n
		})
		p.must(p.writeData(id2, false, body[sent2:sent2+n]))
		sent2 += n
		connSent += n
	}
	if m := rawRecv(t, got, "the second stream's message"); !bytes.Equal(m, msg) {
		t.Fatalf("second stream: %d bytes, want %d", len(m), len(msg))
	}
	p.must(p.writeHeaders(id2, true, respFields("grpc-status", "0")))
	if code, msg := rawStreamStatus(t, s2); code != codes.OK {
		t.Fatalf("second stream: %v %q", code, msg)
	}
	p.expectNone(isRST(id, http2.ErrCodeStreamClosed), 0)
	p.expectNone(anyGoAway(), 0)
}
