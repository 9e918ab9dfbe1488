package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"

	"golang.org/x/net/http2"
)

// limitedReads returns at most n bytes per Read, so a fuzz input also
// decides how frames are split across reads (n <= 0: no limit).
type limitedReads struct {
	r io.Reader
	n int
}

func (c *limitedReads) Read(p []byte) (int, error) {
	if c.n > 0 && len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// readSize turns a fuzzed byte into a read size: 0 reads everything at
// once, small values read a few bytes at a time, larger ones split
// frames at arbitrary places.
func readSize(b uint8) int {
	switch {
	case b == 0:
		return 0
	case b < 32:
		return int(b)
	default:
		return int(b) * 97
	}
}

// frameResult is what the reader made of one frame.
type frameResult struct {
	fh  http2.FrameHeader
	val any
	err error
}

// readAllFrames reads and parses frames from data as the reader
// goroutine does, until an error that is not a stream error. Every
// result is checked against the wire bytes and the error rules.
func readAllFrames(t *testing.T, data []byte, chunk uint8, keep bool) []frameResult {
	r := &frameReader{br: newConnReader(&limitedReads{r: bytes.NewReader(data), n: readSize(chunk)}, DefaultReadBufferSize)}
	var out []frameResult
	off := 0
	for i := 0; ; i++ {
		if i > len(data)/frameHeaderLen+1 {
			t.Fatalf("read %d frames from %d bytes", i, len(data))
		}
		rest := data[off:]
		got, val, err := readOneFrame(r)
		if len(rest) < frameHeaderLen {
			// The connection ends in or before a frame header.
			if len(rest) == 0 && err != io.EOF || len(rest) > 0 && err != io.ErrUnexpectedEOF {
				t.Fatalf("frame %d: %d bytes left: got %v, %v; want the socket's EOF", i, len(rest), val, err)
			}
			return out
		}
		fh := frameHeaderAt(rest)
		if got != fh {
			t.Fatalf("frame %d: read header %v, wire %v", i, got, fh)
		}
		if keep {
			out = append(out, frameResult{fh: fh, val: val, err: err})
		}
		if fh.Length > maxReadFrameSize {
			wantConnErr(t, i, fh, err, http2.ErrCodeFrameSize)
			return out
		}
		var ce *ConnectionError
		if errors.As(err, &ce) {
			checkConnError(t, i, fh, ce)
			return out
		}
		if uint32(len(rest)-frameHeaderLen) < fh.Length {
			// The connection ends inside the payload.
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("frame %d (%v): payload cut short: got %v, %v; want the socket's EOF", i, fh, val, err)
			}
			return out
		}
		if err != nil {
			var se http2.StreamError
			if !errors.As(err, &se) {
				t.Fatalf("frame %d (%v): error %v (%T) is neither a ConnectionError nor a StreamError", i, fh, err, err)
			}
			if se.StreamID != fh.StreamID || se.StreamID == 0 {
				t.Fatalf("frame %d (%v): stream error on stream %d", i, fh, se.StreamID)
			}
			switch {
			case fh.Type == http2.FramePriority && (fh.Length != 5 && se.Code == http2.ErrCodeFrameSize || se.Code == http2.ErrCodeProtocol):
			case fh.Type == http2.FrameWindowUpdate && se.Code == http2.ErrCodeProtocol:
			default:
				t.Fatalf("frame %d (%v): unexpected stream error %v", i, fh, se)
			}
		}
		off += frameHeaderLen + int(fh.Length)
	}
}

// wantConnErr fails unless err is a *ConnectionError with code.
func wantConnErr(t *testing.T, i int, fh http2.FrameHeader, err error, code http2.ErrCode) {
	t.Helper()
	var ce *ConnectionError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("frame %d (%v): got %v; want a connection error %v", i, fh, err, code)
	}
}

// checkConnError fails unless ce's code is one the frame can draw.
func checkConnError(t *testing.T, i int, fh http2.FrameHeader, ce *ConnectionError) {
	t.Helper()
	if ce.socket {
		t.Fatalf("frame %d (%v): parse error %v marked as a socket failure", i, fh, ce)
	}
	switch ce.Code {
	case http2.ErrCodeProtocol, http2.ErrCodeFrameSize:
		return
	case http2.ErrCodeFlowControl:
		// A SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1 (RFC 9113 §6.5.2).
		if fh.Type == http2.FrameSettings {
			return
		}
	}
	t.Fatalf("frame %d (%v): connection error %v has an unexpected code", i, fh, ce)
}

// FuzzFrameReader feeds arbitrary bytes, split into reads of a fuzzed
// size, to the frame reader and the payload parsers. Each frame header
// must match the wire bytes; errors must be a *ConnectionError (with a
// code the frame can draw) or an http2.StreamError on the frame's stream,
// or the socket's EOF only where the input ends; allocation does not grow
// with declared frame lengths. http2.Framer reading the same bytes is the
// reference: a frame we accept it accepts with the same contents, and a
// frame it rejects as connection-fatal we reject.
func FuzzFrameReader(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(100))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// Allocation first, with nothing kept.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		readAllFrames(t, data, chunk, false)
		runtime.ReadMemStats(&after)
		// Generous: pooled buffers may have to be made again after a GC,
		// and errors are formatted. A reader that sized anything by a
		// frame's declared length (up to 16 MiB) fails this.
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(512<<10+64*len(data)); got > limit {
			t.Fatalf("reading %d bytes allocated %d bytes, limit %d", len(data), got, limit)
		}

		ours := readAllFrames(t, data, chunk, true)
		ref := http2.NewFramer(io.Discard, bytes.NewReader(data))
		ref.SetMaxReadFrameSize(maxReadFrameSize)
		for i, o := range ours {
			rf, rerr := ref.ReadFrame()
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				return // checked above
			}
			if o.fh.Type > http2.FrameContinuation || o.fh.Type == http2.FrameData || o.fh.Type == http2.FramePushPromise {
				// DATA (and PUSH_PROMISE) payloads are checked by the connection as they are
				// read into their stream, not here. Extension frames are
				// skipped as unknown: http2.Framer checks PRIORITY_UPDATE
				// (RFC 9218), which we need not.
				continue
			}
			var rse http2.StreamError
			refFatal := rerr != nil && !errors.As(rerr, &rse)
			if o.err == nil {
				if rerr != nil {
					t.Fatalf("frame %d (%v): we accept %v, http2.Framer rejects it: %v", i, o.fh, o.val, rerr)
				}
				checkSameFrame(t, i, o, rf)
				continue
			}
			var ce *ConnectionError
			if refFatal && !errors.As(o.err, &ce) && !(o.fh.Type == http2.FramePriority && o.fh.Length != 5) {
				// RFC 9113 §6.3 makes a PRIORITY frame of the wrong
				// size a stream error; http2.Framer ends the connection.
				t.Fatalf("frame %d (%v): http2.Framer ends the connection (%v), we do not (%v)", i, o.fh, rerr, o.err)
			}
			if refFatal {
				return
			}
		}
	})
}

// checkSameFrame compares a frame we parsed with http2.Framer's.
func checkSameFrame(t *testing.T, i int, o frameResult, rf http2.Frame) {
	t.Helper()
	if rh := rf.Header(); rh.Type != o.fh.Type || rh.Flags != o.fh.Flags || rh.Length != o.fh.Length || rh.StreamID != o.fh.StreamID {
		t.Fatalf("frame %d: header %v, http2.Framer %v", i, o.fh, rh)
	}
	var want any
	switch rf := rf.(type) {
	case *http2.HeadersFrame:
		want = parsedHeaders{frag: string(rf.HeaderBlockFragment()), prio: rf.Priority}
	case *http2.ContinuationFrame:
		want = string(rf.HeaderBlockFragment())
	case *http2.PriorityFrame:
		want = rf.PriorityParam
	case *http2.PingFrame:
		want = rf.Data
	case *http2.WindowUpdateFrame:
		want = rf.Increment
	case *http2.RSTStreamFrame:
		want = rf.ErrCode
	case *http2.SettingsFrame:
		var ss []http2.Setting
		rf.ForeachSetting(func(s http2.Setting) error { ss = append(ss, s); return nil })
		want = ss
	case *http2.GoAwayFrame:
		want = goAwayFrame{LastStreamID: rf.LastStreamID, ErrCode: rf.ErrCode, DebugData: bytes.Clone(rf.DebugData())}
	default:
		return // DATA and unknown types: only the header is ours to parse
	}
	if !sameParsed(o.val, want) {
		t.Fatalf("frame %d (%v): parsed %#v, http2.Framer %#v", i, o.fh, o.val, want)
	}
}

// sameParsed is reflect.DeepEqual with nil and empty slices equal.
func sameParsed(a, b any) bool {
	if sa, ok := a.([]http2.Setting); ok {
		sb, _ := b.([]http2.Setting)
		return len(sa) == len(sb) && (len(sa) == 0 || reflect.DeepEqual(sa, sb))
	}
	if ga, ok := a.(goAwayFrame); ok {
		gb, _ := b.(goAwayFrame)
		return ga.LastStreamID == gb.LastStreamID && ga.ErrCode == gb.ErrCode && bytes.Equal(ga.DebugData, gb.DebugData)
	}
	return reflect.DeepEqual(a, b)
}

// frameSeeds are meaningful starting points: a valid frame of each type,
// CONTINUATION sequences, padding, and truncated, oversized and
// misplaced frames.
func frameSeeds() [][]byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.AllowIllegalWrites = true
	frame := func(write func()) []byte {
		b.Reset()
		write()
		return bytes.Clone(b.Bytes())
	}
	data := frame(func() { fr.WriteData(1, true, []byte("\x00\x00\x00\x00\x05hello")) })
	padded := frame(func() { fr.WriteDataPadded(3, false, []byte("abc"), make([]byte, 7)) })
	headers := frame(func() {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x83, 0x86}, EndHeaders: true})
	})
	headersPrio := frame(func() {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: []byte{0x82}, EndHeaders: true, PadLength: 4,
			Priority: http2.PriorityParam{StreamDep: 3, Exclusive: true, Weight: 15}})
	})
	contSeq := frame(func() {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: []byte{0x82}})
		fr.WriteContinuation(7, false, []byte{0x84})
		fr.WriteContinuation(7, true, []byte{0x86})
	})
	settings := frame(func() {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15})
	})
	settingsAck := frame(func() { fr.WriteSettingsAck() })
	ping := frame(func() { fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}) })
	pingAck := frame(func() { fr.WritePing(true, [8]byte{}) })
	wu := frame(func() { fr.WriteWindowUpdate(0, 1<<16) })
	wuStream := frame(func() { fr.WriteWindowUpdate(1, 0) }) // a stream error
	rst := frame(func() { fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	goaway := frame(func() { fr.WriteGoAway(7, http2.ErrCodeEnhanceYourCalm, []byte("too_many_pings")) })
	prio := frame(func() { fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 200}) })
	prioSelf := frame(func() { fr.WritePriority(3, http2.PriorityParam{StreamDep: 3}) })
	oversized := rawFrameBytes(http2.FrameData, 0, 1, make([]byte, maxReadFrameSize+1))
	return [][]byte{
		settings,
		cat(settings, settingsAck, headers, data, padded, ping, pingAck, wu, rst, goaway, prio),
		cat(headersPrio, contSeq, wuStream, prioSelf, ping),
		contSeq,
		headers[:len(headers)-1], // truncated payload
		ping[:5],                 // truncated header
		oversized[:frameHeaderLen+8],
		cat(contSeq[:len(contSeq)-len(headers)+2], ping), // a PING inside a header block
		rawFrameBytes(http2.FrameContinuation, http2.FlagContinuationEndHeaders, 1, []byte{0x82}),
		rawFrameBytes(http2.FrameSettings, 0, 0, u32(0x00040000, 0x80000000)[2:]), // window over 2^31-1
		rawFrameBytes(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersPadded, 1, []byte{9, 0x82}),
		rawFrameBytes(0x20, 0xff, 1<<31|9, []byte("unknown frame type")),
	}
}

// FuzzFrameRoundTrip writes frames of every type with http2.Framer from
// fuzzed fields and reads them back: what the Framer writes as valid must
// parse to the same header and fields, split across reads anywhere.
func FuzzFrameRoundTrip(f *testing.F) {
	for kind := range uint8(10) {
		f.Add(kind, uint8(0), uint32(1), uint32(7), uint32(3), []byte("payload"), uint8(0))
		f.Add(kind, uint8(0xff), uint32(1<<31-1), uint32(1<<31-1), uint32(255), bytes.Repeat([]byte{0xa5}, 300), uint8(5))
	}
	f.Fuzz(func(t *testing.T, kind, flags uint8, id, a, b uint32, payload []byte, chunk uint8) {
		var buf bytes.Buffer
		fr := http2.NewFramer(&buf, nil)
		flag := func(bit uint8) bool { return flags&bit != 0 }
		id &^= 1 << 31
		var want []any // parsed values expected, in order
		var err error
		switch kind % 10 {
		case 0:
			if flag(1) {
				err = fr.WriteDataPadded(id, flag(2), payload, make([]byte, a%256))
			} else {
				err = fr.WriteData(id, flag(2), payload)
			}
			want = []any{nil}
		case 1, 2:
			p := http2.HeadersFrameParam{StreamID: id, BlockFragment: payload, EndStream: flag(2), EndHeaders: kind%10 == 1, PadLength: uint8(b)}
			if flag(4) {
				p.Priority = http2.PriorityParam{StreamDep: a &^ (1 << 31), Exclusive: flag(8), Weight: uint8(b >> 8)}
			}
			err = fr.WriteHeaders(p)
			want = []any{parsedHeaders{frag: string(payload), prio: p.Priority}}
			if kind%10 == 2 && err == nil {
				// The block goes on in CONTINUATION frames.
				for i := range int(a%4) + 1 {
					frag := payload[:min(len(payload), i)]
					if err = fr.WriteContinuation(id, i == int(a%4), frag); err != nil {
						break
					}
					want = append(want, string(frag))
				}
			}
		case 3:
			p := http2.PriorityParam{StreamDep: a &^ (1 << 31), Exclusive: flag(8), Weight: uint8(b)}
			err = fr.WritePriority(id, p)
			want = []any{p}
		case 4:
			err = fr.WriteRSTStream(id, http2.ErrCode(a))
			want = []any{http2.ErrCode(a)}
		case 5:
			var ss []http2.Setting
			for p := payload; len(p) >= 6 && len(ss) < 8; p = p[6:] {
				ss = append(ss, http2.Setting{ID: http2.SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])})
			}
			if flag(1) {
				ss = nil
				err = fr.WriteSettingsAck()
			} else {
				err = fr.WriteSettings(ss...)
			}
			want = []any{ss}
		case 6:
			var d [8]byte
			copy(d[:], payload)
			err = fr.WritePing(flag(1), d)
			want = []any{d}
		case 7:
			err = fr.WriteWindowUpdate(id, a)
			want = []any{a}
		case 8:
			err = fr.WriteGoAway(a&^(1<<31), http2.ErrCode(b), payload)
			want = []any{goAwayFrame{LastStreamID: a &^ (1 << 31), ErrCode: http2.ErrCode(b), DebugData: bytes.Clone(payload)}}
		case 9:
			// An unknown frame type is read and skipped.
			buf.Write(rawFrameBytes(http2.FrameType(10+a%200), http2.Flags(flags), id, payload))
			want = []any{nil}
		}
		if err != nil {
			return // the Framer refuses to write it: not a valid frame
		}
		wire := buf.Bytes()
		r := &frameReader{br: newConnReader(&limitedReads{r: bytes.NewReader(wire), n: readSize(chunk)}, DefaultReadBufferSize)}
		for i, w := range want {
			fh := frameHeaderAt(wire)
			n := frameHeaderLen + int(fh.Length)
			wire = wire[n:]
			rfh, got, err := readOneFrame(r)
			if rfh != fh {
				t.Fatalf("frame %d: read header %v, wire %v", i, rfh, fh)
			}
			if fh.Length > maxReadFrameSize {
				wantConnErr(t, i, fh, err, http2.ErrCodeFrameSize)
				return
			}
			switch {
			case fh.Type == http2.FrameSettings:
				// Values are checked as RFC 9113 §6.5.2 says.
				var bad error
				for _, s := range w.([]http2.Setting) {
					if bad = s.Valid(); bad != nil {
						break
					}
				}
				var ce http2.ConnectionError
				if errors.As(bad, &ce) {
					wantConnErr(t, i, fh, err, http2.ErrCode(ce))
					return
				}
			case fh.Type == http2.FramePriority && w.(http2.PriorityParam).StreamDep == id:
				var se http2.StreamError
				if !errors.As(err, &se) || se.StreamID != id || se.Code != http2.ErrCodeProtocol {
					t.Fatalf("frame %d (%v) depends on itself: got %v; want a PROTOCOL_ERROR stream error", i, fh, err)
				}
				continue
			case id == 0 && fh.Type != http2.FramePing && fh.Type != http2.FrameGoAway && fh.Type != http2.FrameWindowUpdate && kind%10 != 9:
				// Stream-only frame types on stream 0 (the Framer lets
				// some of them through).
				if fh.Type == http2.FrameData {
					continue // DATA is checked by the connection
				}
				wantConnErr(t, i, fh, err, http2.ErrCodeProtocol)
				return
			}
			if err != nil {
				t.Fatalf("frame %d (%v) written by http2.Framer: %v", i, fh, err)
			}
			if !sameParsed(got, w) {
				t.Fatalf("frame %d (%v): parsed %#v, want %#v", i, fh, got, w)
			}
		}
		if _, err := r.readFrameHeader(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

// frameHeaderAt decodes the frame header at the start of b.
func frameHeaderAt(b []byte) http2.FrameHeader {
	return http2.FrameHeader{
		Length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		Type:     http2.FrameType(b[3]),
		Flags:    http2.Flags(b[4]),
		StreamID: binary.BigEndian.Uint32(b[5:9]) &^ (1 << 31),
	}
}

// readOneFrame is parseFrame that also returns the frame header read
// (the zero header if none could be).
func readOneFrame(r *frameReader) (http2.FrameHeader, any, error) {
	fh, err := r.readFrameHeader()
	if err != nil {
		var ce *ConnectionError
		if !errors.As(err, &ce) {
			return http2.FrameHeader{}, nil, err
		}
		return fh, nil, err
	}
	defer r.release()
	if fh.Type == http2.FrameData {
		return fh, nil, r.br.Discard(int(fh.Length))
	}
	p, err := r.payload(fh.Length)
	if err != nil {
		return fh, nil, err
	}
	var v any
	switch fh.Type {
	case http2.FrameHeaders:
		frag, prio, perr := parseHeaders(fh, p)
		v, err = parsedHeaders{string(frag), prio}, perr
	case http2.FrameContinuation:
		v = string(p)
	case http2.FramePriority:
		v, err = parsePriority(fh, p)
	case http2.FramePing:
		v, err = parsePing(fh, p)
	case http2.FrameWindowUpdate:
		v, err = parseWindowUpdate(fh, p)
	case http2.FrameRSTStream:
		v, err = parseRSTStream(fh, p)
	case http2.FrameSettings:
		v, err = parseSettings(fh, p, nil)
	case http2.FrameGoAway:
		g, gerr := parseGoAway(fh, p)
		g.DebugData = bytes.Clone(g.DebugData)
		v, err = g, gerr
	}
	return fh, v, err
}
