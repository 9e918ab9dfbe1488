package transport

// Raw-frame tests of the RFC 9113 rules a server enforces on requests:
// non-gRPC requests answered over HTTP, MAX_CONCURRENT_STREAMS, streams
// depending on themselves and content-length. Each checks that the
// connection serves a normal call afterwards.

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/net/http2"

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
