package transport

// Raw-peer tests of header blocks over the list limit: they cost only
// their stream, while the HPACK state stays in step; only a block past the
// hard cap on its encoded size closes the connection.

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// padFields returns n fields of size bytes each (name, value and the 32
// bytes of RFC 7541 §4.1), distinct so that HPACK cannot refer to one for
// the next, and of characters Huffman coding would lengthen, so that each
// takes about size-32 bytes encoded.
func padFields(n, size int) []hpack.HeaderField {
	fs := make([]hpack.HeaderField, n)
	for i := range fs {
		name := fmt.Sprintf("x-pad-%05d", i)
		fs[i] = hpack.HeaderField{Name: name, Value: strings.Repeat("~", size-32-len(name))}
	}
	return fs
}

// bigRequestBlock is the request header fields of a block of about 100
// KiB that inserts entries into the peer's HPACK dynamic table before the
// limit is passed and again at its very end, where the next block refers
// to them.
func bigRequestBlock() []hpack.HeaderField {
	fs := []hpack.HeaderField{{Name: "echo-head", Value: "inserted before the limit"}}
	fs = append(fs, padFields(1100, 128)...) // over 100 KiB, each field indexed
	// Last, so they are the dynamic table's newest entries: the next
	// request's fields are sent as references to them.
	return append(fs, reqFields(echoMethod, "echo-tail", "inserted past the limit")...)
}

func TestRawHeaderBlockOverLimitCostsOnlyItsStream(t *testing.T) {
	noLeaks(t)
	_, _, p := startRaw(t, ServerConfig{})
	var block []byte
	p.must(p.write(func(fr *http2.Framer) error {
		block = p.encode(bigRequestBlock())
		return writeBlock(fr, 1, false, block, 16384)
	}))
	if len(block) < 100<<10 || len(block) > minEncodedCap {
		t.Fatalf("test block of %d bytes, want 100 KiB to the hard cap", len(block))
	}
	r := p.readResponse(1)
	if r.httpStatus() != "200" || r.field("grpc-status") != fmt.Sprint(int(codes.ResourceExhausted)) ||
		!strings.Contains(r.field("grpc-message"), "header list too large") {
		t.Fatalf("response to the block over the limit: %+v, want a trailers-only RESOURCE_EXHAUSTED", r.frames)
	}
	// The next request is encoded against the peer's dynamic table as the
	// big block left it: its fields are references to entries that block
	// inserted after the limit was passed. It is served only if the
	// server decoded the whole block.
	p.must(p.write(func(fr *http2.Framer) error {
		frag := p.encode(reqFields(echoMethod, "echo-tail", "inserted past the limit"))
		if len(frag) > 16 {
			return fmt.Errorf("second request encoded in %d bytes: not made of table references", len(frag))
		}
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: frag, EndHeaders: true})
	}))
	p.must(p.writeMsg(3, true, []byte("after")))
	r = p.readResponse(3)
	if r.field("grpc-status") != "0" {
		t.Fatalf("RPC after the block over the limit: %+v", r.frames)
	}
	if got := r.headers; !hasField(got, "echo-tail", "inserted past the limit") {
		t.Errorf("response headers %v, want echo-tail from the dynamic table", got)
	}
	p.expectNone(anyGoAway(), shortWait)
}

// hasField reports whether fs holds name: value.
func hasField(fs []hpack.HeaderField, name, value string) bool {
	for _, f := range fs {
		if f.Name == name && f.Value == value {
			return true
		}
	}
	return false
}

func TestRawRequestTrailersOverLimit(t *testing.T) {
	noLeaks(t)
	_, h, p := startRaw(t, ServerConfig{})
	openBlocked(t, p, h, 1)
	p.must(p.write(func(fr *http2.Framer) error {
		return writeBlock(fr, 1, true, p.encode(padFields(400, 128)), 16384)
	}))
	// Only the stream fails: RST_STREAM(ENHANCE_YOUR_CALM), which a gRPC
	// client reads as RESOURCE_EXHAUSTED, and the handler sees it so.
	p.expect(isRST(1, http2.ErrCodeEnhanceYourCalm))
	expectCanceled(t, h.waitEnded(t), codes.ResourceExhausted)
	p.unaryOK(3, echoMethod)
	p.expectNone(anyGoAway(), shortWait)
}

func TestRawHeaderBlockPastHardCapClosesConnection(t *testing.T) {
	noLeaks(t)
	ts, _, p := startRaw(t, ServerConfig{})
	encCap := encodedCap(DefaultMaxHeaderListSize)
	var block []byte
	// The write fails if the server closes first.
	p.write(func(fr *http2.Framer) error {
		block = p.encode(append(padFields(encCap/96+100, 128), reqFields(echoMethod)...))
		return writeBlock(fr, 1, false, block, 16384)
	})
	if len(block) <= encCap {
		t.Fatalf("test block of %d bytes, not past the cap of %d", len(block), encCap)
	}
	expectGoAway(t, p, http2.ErrCodeEnhanceYourCalm)
	normalClientWorks(t, ts)
}

func TestRawClientResponseHeadersOverLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trailers bool // the trailers are too large, not the headers
	}{
		{name: "headers"},
		{name: "trailers", trailers: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			c, p := startRawServer(t)
			s, id := rawOpenStream(t, c, p)
			big := append(respFields(rawOKHeaders()...), padFields(800, 128)...)
			p.must(p.write(func(fr *http2.Framer) error {
				if tc.trailers {
					if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.encode(respFields(rawOKHeaders()...)), EndHeaders: true}); err != nil {
						return err
					}
					big = append(padFields(800, 128), respFields("grpc-status", "0")...)
				}
				return writeBlock(fr, id, tc.trailers, p.encode(big), 16384)
			}))
			if code, msg := rawStreamStatus(t, s); code != codes.ResourceExhausted || !strings.Contains(msg, "header list too large") {
				t.Errorf("call with response headers over the limit: %v %q, want RESOURCE_EXHAUSTED", code, msg)
			}
			p.expect(anyRST(id))
			// The connection carries on, and its HPACK state with it:
			// the next response refers to entries the big block added.
			s2, id2 := rawOpenStream(t, c, p)
			p.must(p.writeHeaders(id2, true, append(respFields(rawOKHeaders()...), padFields(800, 128)[799], hpack.HeaderField{Name: "grpc-status", Value: "0"})))
			if code, msg := rawStreamStatus(t, s2); code != codes.OK {
				t.Errorf("second call: %v %q", code, msg)
			}
			if v := s2.Trailer()["x-pad-00799"]; len(v) != 1 || v[0] != padFields(800, 128)[799].Value {
				t.Errorf("second call's trailer x-pad-00799 = %q, want the value from the dynamic table", v)
			}
			p.expectNone(anyGoAway(), shortWait)
		})
	}
}
