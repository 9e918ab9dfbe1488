package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// rawFrameBytes is one frame on the wire: a 9-byte header and payload.
func rawFrameBytes(t http2.FrameType, flags http2.Flags, id uint32, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), byte(t), byte(flags)}
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, payload...)
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// parsedHeaders is what parseFrame returns for a HEADERS frame.
type parsedHeaders struct {
	frag string
	prio http2.PriorityParam
}

// parseFrame reads one frame from r and parses it with the parser the
// reader uses for its type, returning the parsed values.
func parseFrame(r *frameReader) (any, error) {
	fh, err := r.readFrameHeader()
	if err != nil {
		return nil, err
	}
	defer r.release()
	if fh.Type == http2.FrameData {
		return nil, r.br.Discard(int(fh.Length))
	}
	p, err := r.payload(fh.Length)
	if err != nil {
		return nil, err
	}
	switch fh.Type {
	case http2.FrameHeaders:
		frag, prio, err := parseHeaders(fh, p)
		return parsedHeaders{string(frag), prio}, err
	case http2.FrameContinuation:
		return string(p), nil
	case http2.FramePriority:
		return parsePriority(fh, p)
	case http2.FramePing:
		return parsePing(fh, p)
	case http2.FrameWindowUpdate:
		return parseWindowUpdate(fh, p)
	case http2.FrameRSTStream:
		return parseRSTStream(fh, p)
	case http2.FrameSettings:
		return parseSettings(fh, p, nil)
	case http2.FrameGoAway:
		g, err := parseGoAway(fh, p)
		g.DebugData = bytes.Clone(g.DebugData)
		return g, err
	}
	return nil, nil
}

// Expected outcomes of a frame.
type (
	wantConn   http2.ErrCode // a connection error with this code
	wantStream struct {      // a stream error
		id   uint32
		code http2.ErrCode
	}
)

func TestFrameParsing(t *testing.T) {
	hdrs := func(flags http2.Flags, id uint32, p ...[]byte) []byte {
		return rawFrameBytes(http2.FrameHeaders, flags, id, cat(p...))
	}
	const (
		endH = http2.FlagHeadersEndHeaders
		pad  = http2.FlagHeadersPadded
		pri  = http2.FlagHeadersPriority
	)
	for _, tc := range []struct {
		name string
		// frames go first and must parse without error; then last.
		frames [][]byte
		last   []byte
		want   any // parsed value, wantConn or wantStream
	}{
		// RFC 9113 §4.2: frame size.
		{name: "frame over max size", last: rawFrameBytes(http2.FramePing, 0, 0, make([]byte, maxReadFrameSize+1)), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "DATA of max size", last: rawFrameBytes(http2.FrameData, 0, 1, make([]byte, maxReadFrameSize)), want: nil},

		// §6.2 HEADERS.
		{name: "HEADERS", last: hdrs(endH, 1, []byte("block")), want: parsedHeaders{frag: "block"}},
		{name: "HEADERS padded", last: hdrs(endH|pad, 3, []byte{3}, []byte("block"), []byte{0, 0, 0}), want: parsedHeaders{frag: "block"}},
		{name: "HEADERS all padding", last: hdrs(endH|pad, 3, []byte{4}, []byte{0, 0, 0, 0}), want: parsedHeaders{frag: ""}},
		{name: "HEADERS priority", last: hdrs(endH|pri|pad, 5, []byte{1}, u32(1<<31|3), []byte{200}, []byte("b"), []byte{0}),
			want: parsedHeaders{frag: "b", prio: http2.PriorityParam{StreamDep: 3, Exclusive: true, Weight: 200}}},
		{name: "HEADERS on stream 0", last: hdrs(endH, 0, []byte("block")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "HEADERS padded without pad length", last: hdrs(endH|pad, 1), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "HEADERS short priority", last: hdrs(endH|pri, 1, []byte{0, 0, 0, 3}), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "HEADERS padding past the frame", last: hdrs(endH|pad, 1, []byte{6}, []byte("block")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "HEADERS padding past the priority", last: hdrs(endH|pad|pri, 1, []byte{1}, u32(3), []byte{1}), want: wantConn(http2.ErrCodeProtocol)},

		// §6.10 CONTINUATION and §4.3: a header block is contiguous.
		{name: "CONTINUATION",
			frames: [][]byte{hdrs(0, 1, []byte("a")), rawFrameBytes(http2.FrameContinuation, 0, 1, []byte("b"))},
			last:   rawFrameBytes(http2.FrameContinuation, endH, 1, []byte("c")), want: "c"},
		{name: "frame after the block ended",
			frames: [][]byte{hdrs(0, 1, []byte("a")), rawFrameBytes(http2.FrameContinuation, endH, 1, []byte("b"))},
			last:   rawFrameBytes(http2.FramePing, 0, 0, make([]byte, 8)), want: [8]byte{}},
		{name: "CONTINUATION without HEADERS", last: rawFrameBytes(http2.FrameContinuation, endH, 1, []byte("b")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "CONTINUATION after a complete block",
			frames: [][]byte{hdrs(endH, 1, []byte("a"))},
			last:   rawFrameBytes(http2.FrameContinuation, endH, 1, []byte("b")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "CONTINUATION on another stream",
			frames: [][]byte{hdrs(0, 1, []byte("a"))},
			last:   rawFrameBytes(http2.FrameContinuation, endH, 3, []byte("b")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "CONTINUATION on stream 0",
			frames: [][]byte{hdrs(0, 1, []byte("a"))},
			last:   rawFrameBytes(http2.FrameContinuation, endH, 0, []byte("b")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "PING inside a header block",
			frames: [][]byte{hdrs(0, 1, []byte("a"))},
			last:   rawFrameBytes(http2.FramePing, 0, 0, make([]byte, 8)), want: wantConn(http2.ErrCodeProtocol)},
		{name: "DATA inside a header block",
			frames: [][]byte{hdrs(0, 1, []byte("a"))},
			last:   rawFrameBytes(http2.FrameData, 0, 1, []byte("x")), want: wantConn(http2.ErrCodeProtocol)},
		{name: "HEADERS inside a header block",
			frames: [][]byte{hdrs(0, 1, []byte("a"))},
			last:   hdrs(endH, 3, []byte("b")), want: wantConn(http2.ErrCodeProtocol)},

		// §6.3 PRIORITY.
		{name: "PRIORITY", last: rawFrameBytes(http2.FramePriority, 0, 5, cat(u32(3), []byte{7})), want: http2.PriorityParam{StreamDep: 3, Weight: 7}},
		{name: "PRIORITY on stream 0", last: rawFrameBytes(http2.FramePriority, 0, 0, cat(u32(3), []byte{7})), want: wantConn(http2.ErrCodeProtocol)},
		{name: "PRIORITY short", last: rawFrameBytes(http2.FramePriority, 0, 5, u32(3)), want: wantStream{5, http2.ErrCodeFrameSize}},
		{name: "PRIORITY on itself", last: rawFrameBytes(http2.FramePriority, 0, 5, cat(u32(5), []byte{7})), want: wantStream{5, http2.ErrCodeProtocol}},

		// §6.4 RST_STREAM.
		{name: "RST_STREAM", last: rawFrameBytes(http2.FrameRSTStream, 0, 3, u32(8)), want: http2.ErrCodeCancel},
		{name: "RST_STREAM long", last: rawFrameBytes(http2.FrameRSTStream, 0, 3, u32(8, 0)), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "RST_STREAM on stream 0", last: rawFrameBytes(http2.FrameRSTStream, 0, 0, u32(8)), want: wantConn(http2.ErrCodeProtocol)},

		// §6.5 SETTINGS.
		{name: "SETTINGS", last: rawFrameBytes(http2.FrameSettings, 0, 0, []byte{0, 4, 0, 1, 0, 0, 0, 0xab, 0, 0, 0, 1}),
			want: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 16}, {ID: 0xab, Val: 1}}},
		{name: "SETTINGS ack", last: rawFrameBytes(http2.FrameSettings, http2.FlagSettingsAck, 0, nil), want: []http2.Setting(nil)},
		{name: "SETTINGS ack with payload", last: rawFrameBytes(http2.FrameSettings, http2.FlagSettingsAck, 0, []byte{0, 4, 0, 1, 0, 0}), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "SETTINGS on a stream", last: rawFrameBytes(http2.FrameSettings, 0, 1, nil), want: wantConn(http2.ErrCodeProtocol)},
		{name: "SETTINGS not a multiple of 6", last: rawFrameBytes(http2.FrameSettings, 0, 0, []byte{0, 4, 0, 1, 0}), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "SETTINGS window too large", last: rawFrameBytes(http2.FrameSettings, 0, 0, []byte{0, 4, 0x80, 0, 0, 0}), want: wantConn(http2.ErrCodeFlowControl)},
		{name: "SETTINGS bad ENABLE_PUSH", last: rawFrameBytes(http2.FrameSettings, 0, 0, []byte{0, 2, 0, 0, 0, 2}), want: wantConn(http2.ErrCodeProtocol)},
		{name: "SETTINGS small MAX_FRAME_SIZE", last: rawFrameBytes(http2.FrameSettings, 0, 0, []byte{0, 5, 0, 0, 0x3f, 0xff}), want: wantConn(http2.ErrCodeProtocol)},

		// §6.7 PING.
		{name: "PING", last: rawFrameBytes(http2.FramePing, http2.FlagPingAck, 0, []byte("12345678")), want: [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}},
		{name: "PING short", last: rawFrameBytes(http2.FramePing, 0, 0, []byte("1234567")), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "PING long", last: rawFrameBytes(http2.FramePing, 0, 0, []byte("123456789")), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "PING on a stream", last: rawFrameBytes(http2.FramePing, 0, 1, []byte("12345678")), want: wantConn(http2.ErrCodeProtocol)},

		// §6.8 GOAWAY.
		{name: "GOAWAY", last: rawFrameBytes(http2.FrameGoAway, 0, 0, cat(u32(1<<31|7, 11), []byte("calm"))),
			want: goAwayFrame{LastStreamID: 7, ErrCode: http2.ErrCodeEnhanceYourCalm, DebugData: []byte("calm")}},
		{name: "GOAWAY short", last: rawFrameBytes(http2.FrameGoAway, 0, 0, u32(7)), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "GOAWAY on a stream", last: rawFrameBytes(http2.FrameGoAway, 0, 1, u32(7, 0)), want: wantConn(http2.ErrCodeProtocol)},

		// §6.9 WINDOW_UPDATE.
		{name: "WINDOW_UPDATE", last: rawFrameBytes(http2.FrameWindowUpdate, 0, 3, u32(1<<31|1000)), want: uint32(1000)},
		{name: "WINDOW_UPDATE short", last: rawFrameBytes(http2.FrameWindowUpdate, 0, 3, []byte{0, 0, 1}), want: wantConn(http2.ErrCodeFrameSize)},
		{name: "WINDOW_UPDATE 0 on the connection", last: rawFrameBytes(http2.FrameWindowUpdate, 0, 0, u32(0)), want: wantConn(http2.ErrCodeProtocol)},
		{name: "WINDOW_UPDATE 0 on a stream", last: rawFrameBytes(http2.FrameWindowUpdate, 0, 3, u32(1<<31)), want: wantStream{3, http2.ErrCodeProtocol}},
	} {
		wire := cat(append(tc.frames, tc.last)...)
		for _, split := range []struct {
			name string
			r    func() io.Reader
		}{
			{"whole", func() io.Reader { return bytes.NewReader(wire) }},
			// Every frame split across reads.
			{"bytewise", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(wire)) }},
		} {
			t.Run(tc.name+"/"+split.name, func(t *testing.T) {
				r := &frameReader{br: newConnReader(split.r(), DefaultReadBufferSize)}
				for i := range tc.frames {
					if _, err := parseFrame(r); err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
				}
				got, err := parseFrame(r)
				var ce *ConnectionError
				var se http2.StreamError
				switch want := tc.want.(type) {
				case wantConn:
					if !errors.As(err, &ce) || ce.Code != http2.ErrCode(want) || ce.socket {
						t.Fatalf("got %v, %v; want a connection error %v", got, err, http2.ErrCode(want))
					}
				case wantStream:
					if !errors.As(err, &se) || se.StreamID != want.id || se.Code != want.code {
						t.Fatalf("got %v, %v; want a stream error %v on stream %d", got, err, want.code, want.id)
					}
				default:
					if err != nil || !reflect.DeepEqual(got, tc.want) {
						t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
					}
				}
				if r.scratch != nil {
					t.Error("scratch buffer still held after the frame")
				}
			})
		}
	}
}

func TestFrameReaderSocketErrors(t *testing.T) {
	ping := rawFrameBytes(http2.FramePing, 0, 0, make([]byte, 8))
	for _, tc := range []struct {
		name string
		wire []byte
		want error
	}{
		{"EOF between frames", ping, io.EOF},
		{"EOF in a frame header", append(ping, ping[:4]...), io.ErrUnexpectedEOF},
		{"EOF in a payload", append(ping, ping[:12]...), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &frameReader{br: newConnReader(iotest.HalfReader(bytes.NewReader(tc.wire)), DefaultReadBufferSize)}
			if _, err := parseFrame(r); err != nil {
				t.Fatal(err)
			}
			_, err := parseFrame(r)
			var ce *ConnectionError
			if err != tc.want || errors.As(err, &ce) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// repeatReader returns prefix, then rest over and over, at most chunk
// bytes per Read.
type repeatReader struct {
	prefix, rest []byte
	off          int
	chunk        int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(p[:min(len(p), r.chunk)], r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	n := copy(p[:min(len(p), r.chunk)], r.rest[r.off:])
	r.off = (r.off + n) % len(r.rest)
	return n, nil
}

// TestFrameReaderAllocs checks that, in the steady state, reading and
// parsing HEADERS + CONTINUATION (decoding the header block), PING and
// WINDOW_UPDATE frames allocates nothing, whether frames arrive whole or
// split across reads.
func TestFrameReaderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	block := func() []byte {
		hbuf.Reset()
		for _, f := range typicalRequest {
			enc.WriteField(f)
		}
		return bytes.Clone(hbuf.Bytes())
	}
	first, again := block(), block() // again is all indexed fields
	headers := func(b []byte) []byte {
		h := len(b) / 2
		// Padded past inlinePayload: a split HEADERS frame takes a
		// pooled buffer.
		return cat(rawFrameBytes(http2.FrameHeaders, http2.FlagHeadersPriority|http2.FlagHeadersPadded, 1, cat([]byte{32}, u32(0), []byte{15}, b[:h], make([]byte, 32))),
			rawFrameBytes(http2.FrameContinuation, http2.FlagHeadersEndHeaders, 1, b[h:]))
	}
	rest := cat(headers(again),
		rawFrameBytes(http2.FramePing, 0, 0, []byte("keepaliv")),
		rawFrameBytes(http2.FrameWindowUpdate, 0, 1, u32(1000)),
		rawFrameBytes(http2.FrameData, 0, 1, []byte("data")))
	const frames = 5

	for _, chunk := range []int{1 << 20, 7, 100} {
		t.Run(fmt.Sprintf("reads of %d bytes", chunk), func(t *testing.T) {
			src := &repeatReader{prefix: headers(first), rest: rest, chunk: chunk}
			r := &frameReader{br: newConnReader(src, DefaultReadBufferSize)}
			hb := newHeaderBlock(DefaultMaxHeaderListSize)
			step := func() {
				fh, err := r.readFrameHeader()
				if err != nil {
					t.Fatal(err)
				}
				if fh.Type == http2.FrameData {
					if err := r.br.Discard(int(fh.Length)); err != nil {
						t.Fatal(err)
					}
					return
				}
				p, err := r.payload(fh.Length)
				if err != nil {
					t.Fatal(err)
				}
				defer r.release()
				var done bool
				switch fh.Type {
				case http2.FrameHeaders:
					var frag []byte
					if frag, _, err = parseHeaders(fh, p); err != nil {
						t.Fatal(err)
					}
					hb.start(fh.StreamID, false)
					done, err = hb.add(frag, fh.Flags.Has(flagEndHeaders))
				case http2.FrameContinuation:
					done, err = hb.add(p, fh.Flags.Has(flagEndHeaders))
				case http2.FramePing:
					_, err = parsePing(fh, p)
				case http2.FrameWindowUpdate:
					_, err = parseWindowUpdate(fh, p)
				}
				if err != nil {
					t.Fatal(err)
				}
				if done {
					if len(hb.fields) != len(typicalRequest) || hb.blockError() != nil {
						t.Fatalf("decoded %d fields (%v), want %d", len(hb.fields), hb.blockError(), len(typicalRequest))
					}
					hb.release()
				}
			}
			// The first block fills the HPACK table; warm up the pools.
			for range 2 + 10*frames {
				step()
			}
			if n := testing.AllocsPerRun(100, func() {
				for range frames {
					step()
				}
			}); n != 0 {
				t.Errorf("%v allocations per round of %d frames, want 0", n, frames)
			}
		})
	}
}

// ---- the connection's answers to malformed frames (raw peer) ----

func TestRawFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(p *rawPeer, fr *http2.Framer) error
		// rst: the stream is reset with this code and the connection
		// carries on; else goAway: the connection ends with this code.
		rst    http2.ErrCode
		goAway http2.ErrCode
	}{
		{name: "PING of 7 bytes", goAway: http2.ErrCodeFrameSize, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FramePing, 0, 0, make([]byte, 7))
		}},
		{name: "WINDOW_UPDATE of 5 bytes", goAway: http2.ErrCodeFrameSize, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 1, make([]byte, 5))
		}},
		{name: "RST_STREAM on stream 0", goAway: http2.ErrCodeProtocol, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FrameRSTStream, 0, 0, u32(8))
		}},
		{name: "SETTINGS ack with payload", goAway: http2.ErrCodeFrameSize, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FrameSettings, http2.FlagSettingsAck, 0, make([]byte, 6))
		}},
		{name: "oversized frame", goAway: http2.ErrCodeFrameSize, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(0xfa, 0, 0, make([]byte, maxReadFrameSize+1))
		}},
		{name: "PING inside a header block", goAway: http2.ErrCodeProtocol, send: func(p *rawPeer, fr *http2.Framer) error {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: p.encode(reqFields(echoMethod))})
			return fr.WritePing(false, [8]byte{})
		}},
		{name: "PRIORITY of 4 bytes", rst: http2.ErrCodeFrameSize, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteRawFrame(http2.FramePriority, 0, 1, u32(0))
		}},
		{name: "PRIORITY on itself", rst: http2.ErrCodeProtocol, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WritePriority(1, http2.PriorityParam{StreamDep: 1})
		}},
		{name: "trailers depending on their stream", rst: http2.ErrCodeProtocol, send: func(p *rawPeer, fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.encode([]hpack.HeaderField{{Name: "x-t", Value: "1"}}),
				EndStream: true, EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 1, Weight: 1}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			_, h, p := startRaw(t, ServerConfig{})
			openBlocked(t, p, h, 1)
			p.write(func(fr *http2.Framer) error { return tc.send(p, fr) })
			if tc.goAway != 0 {
				expectGoAway(t, p, tc.goAway)
				return
			}
			p.expect(isRST(1, tc.rst))
			expectCanceled(t, h.waitEnded(t), codes.Internal)
			p.unaryOK(3, echoMethod)
			p.expectNone(anyGoAway(), shortWait)
		})
	}
	t.Run("malformed PRIORITY on an idle stream is reset", func(t *testing.T) {
		noLeaks(t)
		_, _, p := startRaw(t, ServerConfig{})
		// PRIORITY may name an idle stream (RFC 9113 §5.1); a bad one is
		// a stream error there too (§5.3.1, §6.3): RST_STREAM, and the
		// connection serves on, lower ids included (the frames opened
		// nothing).
		p.must(p.write(func(fr *http2.Framer) error {
			if err := fr.WriteRawFrame(http2.FramePriority, 0, 9, u32(0)); err != nil {
				return err
			}
			return fr.WritePriority(11, http2.PriorityParam{StreamDep: 11})
		}))
		p.expect(isRST(9, http2.ErrCodeFrameSize))
		p.expect(isRST(11, http2.ErrCodeProtocol))
		p.unaryOK(1, echoMethod)
		p.unaryOK(13, echoMethod)
		p.expectNone(anyGoAway(), shortWait)
	})
	t.Run("new stream depending on itself", func(t *testing.T) {
		noLeaks(t)
		_, h, p := startRaw(t, ServerConfig{})
		// The block is decoded (its fields enter the HPACK table) and
		// the stream reset; the next request still decodes.
		p.must(p.write(func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: p.encode(reqFields(echoMethod, "x-new", "1")),
				EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 1, Weight: 1}})
		}))
		p.expect(isRST(1, http2.ErrCodeProtocol))
		select {
		case <-h.started:
			t.Fatal("a handler ran for the stream")
		default:
		}
		p.unaryOK(3, echoMethod)
		p.expectNone(anyGoAway(), shortWait)
	})
}
