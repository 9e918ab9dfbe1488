package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// frame returns a message with the given flag byte and payload.
func frame(flag byte, payload []byte) []byte {
	b := []byte{flag, 0, 0, 0, 0}
	b[1], b[2], b[3], b[4] = byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	return append(b, payload...)
}

// gzipFrame returns payload gzipped in a compressed message.
func gzipFrame(t testing.TB, payload []byte) []byte {
	return frame(1, gzipBytes(t, GetCompressor(GzipName), payload))
}

// readAll reads messages until an error and returns copies of them and
// the error.
func readAll(p *Parser, maxRecv int, decomp Compressor) ([][]byte, error) {
	var msgs [][]byte
	for {
		data, release, err := p.ReadMessage(maxRecv, decomp)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, bytes.Clone(data))
		release()
	}
}

func TestParserMessages(t *testing.T) {
	gz := GetCompressor(GzipName)
	text := []byte(strings.Repeat("hello gRPC ", 10000))
	payloads := [][]byte{{}, []byte("a"), {}, text, randomBytes(200 << 10), {}, []byte("end")}
	var plain, mixed bytes.Buffer
	for i, pl := range payloads {
		plain.Write(frame(0, pl))
		if i%2 == 1 {
			mixed.Write(gzipFrame(t, pl))
		} else {
			mixed.Write(frame(0, pl))
		}
	}
	for _, tc := range []struct {
		name   string
		stream []byte
		decomp Compressor
		wrap   func(io.Reader) io.Reader
	}{
		{"plain in one buffer", plain.Bytes(), nil, nil},
		{"plain one byte at a time", plain.Bytes(), nil, iotest.OneByteReader},
		{"plain half reads", plain.Bytes(), nil, iotest.HalfReader},
		{"plain with EOF on the last data", plain.Bytes(), nil, iotest.DataErrReader},
		{"mixed gzip in one buffer", mixed.Bytes(), gz, nil},
		{"mixed gzip one byte at a time", mixed.Bytes(), gz, iotest.OneByteReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tc.stream)
			if tc.wrap != nil {
				r = tc.wrap(r)
			}
			msgs, err := readAll(NewParser(r), 1<<20, tc.decomp)
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want bare io.EOF", err)
			}
			if len(msgs) != len(payloads) {
				t.Fatalf("read %d messages, want %d", len(msgs), len(payloads))
			}
			for i := range msgs {
				if !bytes.Equal(msgs[i], payloads[i]) {
					t.Errorf("message %d: %d bytes differ from the %d sent", i, len(msgs[i]), len(payloads[i]))
				}
			}
		})
	}
}

func TestParserEmptyStream(t *testing.T) {
	p := NewParser(bytes.NewReader(nil))
	for range 2 {
		if _, _, err := p.ReadMessage(100, nil); err != io.EOF {
			t.Fatalf("empty stream: %v, want io.EOF", err)
		}
	}
}

func TestParserZeroLengthNoAlloc(t *testing.T) {
	sizes := watchBuffers(t)
	data, release, err := NewParser(bytes.NewReader(frame(0, nil))).ReadMessage(0, nil)
	if err != nil || len(data) != 0 || release == nil {
		t.Fatalf("ReadMessage = %q, %v", data, err)
	}
	release()
	release() // nothing pooled: harmless
	if len(*sizes) != 0 {
		t.Errorf("buffers %v for an empty message", *sizes)
	}
}

func TestParserErrors(t *testing.T) {
	gz := GetCompressor(GzipName)
	z := gzipBytes(t, gz, []byte(strings.Repeat("x", 1000)))
	for _, tc := range []struct {
		name   string
		stream []byte
		max    int
		decomp Compressor
		code   codes.Code
		cause  error
		msg    string
	}{
		{"truncated prefix", []byte{0, 0, 0}, 100, nil, codes.Internal, io.ErrUnexpectedEOF, "inside a message"},
		{"truncated after a message", append(frame(0, []byte("ok")), 0), 100, nil, codes.Internal, io.ErrUnexpectedEOF, ""},
		{"truncated body", frame(0, []byte("hello"))[:7], 100, nil, codes.Internal, io.ErrUnexpectedEOF, ""},
		{"body missing", frame(0, []byte("hello"))[:5], 100, nil, codes.Internal, io.ErrUnexpectedEOF, ""},
		{"flag 2", frame(2, []byte("x")), 100, nil, codes.Internal, ErrInvalidFlag, "unexpected payload format 2"},
		{"flag 0x80", frame(0x80, nil), 100, gz, codes.Internal, ErrInvalidFlag, ""},
		{"compressed without encoding", frame(1, z), 1 << 20, nil, codes.Internal, ErrCompressedWithoutEncoding, "compressed flag set with identity or empty encoding"},
		{"too large", frame(0, make([]byte, 101)), 100, nil, codes.ResourceExhausted, ErrMessageTooLarge, "received message larger than max (101 vs. 100)"},
		{"too large, zero limit", frame(0, []byte("x")), 0, nil, codes.ResourceExhausted, ErrMessageTooLarge, "(1 vs. 0)"},
		{"negative limit", frame(0, []byte("x")), -1, nil, codes.ResourceExhausted, ErrMessageTooLarge, "(1 vs. 0)"},
		{"too large compressed", frame(1, z), len(z) - 1, gz, codes.ResourceExhausted, ErrMessageTooLarge, "received message larger than max"},
		{"too large after decompression", frame(1, z), 999, gz, codes.ResourceExhausted, ErrMessageTooLarge, "received message after decompression larger than max 999"},
		{"not gzip", frame(1, []byte("definitely not gzip")), 100, gz, codes.Internal, nil, "failed to decompress"},
		{"empty compressed", frame(1, nil), 100, gz, codes.Internal, io.ErrUnexpectedEOF, "failed to decompress"},
		{"truncated gzip", frame(1, z[:len(z)-6]), 1 << 20, gz, codes.Internal, io.ErrUnexpectedEOF, "failed to decompress"},
		{"corrupt gzip", frame(1, append(append([]byte{}, z[:12]...), bytes.Repeat([]byte{0xff}, len(z)-12)...)), 1 << 20, gz, codes.Internal, nil, "failed to decompress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewParser(bytes.NewReader(tc.stream))
			var (
				err  error
				data []byte
				rel  func()
			)
			for {
				data, rel, err = p.ReadMessage(tc.max, tc.decomp)
				if err != nil {
					break
				}
				rel()
			}
			if data != nil || rel != nil {
				t.Error("data or release not nil with an error")
			}
			if status.Code(err) != tc.code {
				t.Fatalf("error %v, want code %v", err, tc.code)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v does not wrap %v", err, tc.cause)
			}
			if errors.Is(err, io.EOF) {
				t.Errorf("error %v looks like the end of the stream", err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

// Decompressed sizes right at the limit pass; one byte more does not.
// (The payloads compress well, so the compressed length is under the
// limit and the decompressed size decides.)
func TestParserDecompressedLimitBoundary(t *testing.T) {
	gz := GetCompressor(GzipName)
	for _, n := range []int{100, 1023, 1024, 1025, 70000, 1 << 20} {
		payload := bytes.Repeat([]byte("z"), n)
		stream := gzipFrame(t, payload)
		data, release, err := NewParser(bytes.NewReader(stream)).ReadMessage(n, gz)
		if err != nil || !bytes.Equal(data, payload) {
			t.Fatalf("%d bytes at a limit of %d: %v", n, n, err)
		}
		release()
		_, _, err = NewParser(bytes.NewReader(stream)).ReadMessage(n-1, gz)
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%d bytes at a limit of %d: %v, want RESOURCE_EXHAUSTED", n, n-1, err)
		}
	}
}

// errReader returns its data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// The reader's own errors (a reset stream) come back as they are.
func TestParserPassesReaderErrors(t *testing.T) {
	reset := status.Error(codes.Canceled, "stream reset")
	for _, stream := range [][]byte{nil, frame(0, []byte("ok")), {0, 0}, frame(0, []byte("hello"))[:7]} {
		p := NewParser(&errReader{data: stream, err: reset})
		_, err := readAll(p, 100, nil)
		if err != reset {
			t.Errorf("after %d bytes: %v, want the reader's error", len(stream), err)
		}
	}
}

// requestReader records RequestRead calls and the reads around them.
type requestReader struct {
	r      io.Reader
	events []string
}

func (r *requestReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.events = append(r.events, fmt.Sprintf("read %d", n))
	return n, err
}

func (r *requestReader) RequestRead(n int) { r.events = append(r.events, fmt.Sprintf("request %d", n)) }

func TestParserRequestRead(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(frame(0, []byte("hello")))
	stream.Write(frame(0, nil))
	stream.Write(frame(0, make([]byte, 300)))
	stream.Write(frame(0, make([]byte, 1000))) // over the limit: no request
	rr := &requestReader{r: iotest.OneByteReader(&stream)}
	msgs, err := readAll(NewParser(rr), 500, nil)
	if len(msgs) != 3 || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("read %d messages, then %v", len(msgs), err)
	}
	var requests []string
	for i, e := range rr.events {
		if strings.HasPrefix(e, "request") {
			requests = append(requests, e)
			// The request comes after the 5 prefix reads, before the body.
			if i < 5 || rr.events[i-1] != "read 1" {
				t.Errorf("request at event %d: %v", i, rr.events[:i+1])
			}
		}
	}
	if want := []string{"request 5", "request 300"}; fmt.Sprint(requests) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", requests, want)
	}
	// Body reads follow at once: event after "request 5" is a read.
	for i, e := range rr.events {
		if e == "request 5" && (i+1 >= len(rr.events) || rr.events[i+1] != "read 1") {
			t.Errorf("no body read after the request")
		}
	}
}

// A peer that declares a large message and sends little of it does not
// make the parser allocate the declared size.
func TestParserAllocatesAsBytesArrive(t *testing.T) {
	sizes := watchBuffers(t)
	const declared = 4<<20 - 1
	stream := frame(0, make([]byte, declared))[:PrefixLen+10]
	_, _, err := NewParser(bytes.NewReader(stream)).ReadMessage(4<<20, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v", err)
	}
	for _, n := range *sizes {
		if n > eagerReadSize {
			t.Errorf("allocated %d bytes with 10 of %d received", n, declared)
		}
	}

	// Nothing at all is allocated for a message over the limit.
	*sizes = nil
	_, _, err = NewParser(bytes.NewReader(frame(0, make([]byte, 1000)))).ReadMessage(999, nil)
	if status.Code(err) != codes.ResourceExhausted || len(*sizes) != 0 {
		t.Errorf("error %v, buffers %v", err, *sizes)
	}

	// A whole message grows its buffer to its size, not beyond.
	*sizes = nil
	payload := randomBytes(1 << 20)
	data, release, err := NewParser(iotest.HalfReader(bytes.NewReader(frame(0, payload)))).ReadMessage(4<<20, nil)
	if err != nil || !bytes.Equal(data, payload) {
		t.Fatalf("1 MiB message: %v", err)
	}
	release()
	for _, n := range *sizes {
		if n > len(payload) {
			t.Errorf("allocated %d bytes for a %d-byte message", n, len(payload))
		}
	}
}

// countingCompressor counts the bytes its decompressors return.
type countingCompressor struct {
	Compressor
	mu   sync.Mutex
	read int
}

type countingReader struct {
	io.Reader
	c *countingCompressor
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.c.mu.Lock()
	r.c.read += n
	r.c.mu.Unlock()
	return n, err
}

func (r countingReader) Close() error {
	if c, ok := r.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (c *countingCompressor) Decompress(r io.Reader) (io.Reader, error) {
	dr, err := c.Compressor.Decompress(r)
	if err != nil {
		return nil, err
	}
	return countingReader{dr, c}, nil
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb returns about 64 KiB of gzip that inflates to 64 MiB of zeros.
func gzipBomb(t *testing.T) []byte {
	bombOnce.Do(func() {
		c, err := NewGzip(9)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		w, _ := c.Compress(&out)
		zeros := make([]byte, 1<<20)
		for range 64 {
			w.Write(zeros)
		}
		w.Close()
		bomb = out.Bytes()
	})
	return bomb
}

func TestParserGzipBomb(t *testing.T) {
	z := gzipBomb(t)
	t.Logf("bomb: %d bytes of gzip for 64 MiB", len(z))
	for _, tc := range []struct {
		name string
		hint bool // whether the compressor gives a size hint
	}{{"with size hint", true}, {"without size hint", false}} {
		t.Run(tc.name, func(t *testing.T) {
			const maxRecv = 4 << 20
			cc := &countingCompressor{Compressor: GetCompressor(GzipName)}
			var dc Compressor = cc
			if tc.hint {
				dc = hintingCompressor{cc, func(b []byte) int { return GetCompressor(GzipName).(decompressedSizer).DecompressedSize(b) }}
			}
			sizes := watchBuffers(t)
			_, _, err := NewParser(bytes.NewReader(frame(1, z))).ReadMessage(maxRecv, dc)
			if status.Code(err) != codes.ResourceExhausted || !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("bomb: %v, want RESOURCE_EXHAUSTED", err)
			}
			if !strings.Contains(status.Convert(err).Message(), "after decompression") {
				t.Errorf("message %q", status.Convert(err).Message())
			}
			if cc.read > maxRecv+1 {
				t.Errorf("read %d bytes from the decompressor, limit %d", cc.read, maxRecv)
			}
			for _, n := range *sizes {
				if n > maxRecv {
					t.Errorf("allocated %d bytes, limit %d", n, maxRecv)
				}
			}
		})
	}
}

// hintingCompressor adds a DecompressedSize method.
type hintingCompressor struct {
	Compressor
	size func([]byte) int
}

func (c hintingCompressor) DecompressedSize(b []byte) int { return c.size(b) }

// A lying size hint changes the allocations, not the result.
func TestParserSizeHints(t *testing.T) {
	gz := GetCompressor(GzipName)
	payload := []byte(strings.Repeat("size hints are hints. ", 5000))
	stream := gzipFrame(t, payload)
	for _, hint := range []int{-1, 0, 1, len(payload) - 1, len(payload), len(payload) + 1, 1 << 30} {
		sizes := watchBuffers(t)
		dc := hintingCompressor{gz, func([]byte) int { return hint }}
		data, release, err := NewParser(bytes.NewReader(stream)).ReadMessage(1<<20, dc)
		if err != nil || !bytes.Equal(data, payload) {
			t.Fatalf("hint %d: %v", hint, err)
		}
		release()
		for _, n := range *sizes {
			if n > 1<<20 {
				t.Errorf("hint %d: allocated %d bytes over the limit", hint, n)
			}
		}
		if hint == len(payload) && len(*sizes) != 2 { // compressed body, then exactly one output buffer
			t.Errorf("exact hint: buffers %v, want one for the output", *sizes)
		}
	}
}

// stuckCompressor's reader never makes progress.
type stuckCompressor struct{ fakeCompressor }

type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func (stuckCompressor) Decompress(io.Reader) (io.Reader, error) { return stuckReader{}, nil }

func TestParserStuckDecompressor(t *testing.T) {
	_, _, err := NewParser(bytes.NewReader(frame(1, []byte("x")))).ReadMessage(100, stuckCompressor{})
	if status.Code(err) != codes.Internal || !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("stuck decompressor: %v", err)
	}
}

func TestParserLargeMessages(t *testing.T) {
	const size = 16 << 20
	payload := randomBytes(size)
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			var c Compressor
			if gz {
				c = GetCompressor(GzipName)
			}
			prefix, data, release, err := Encode(ProtoCodec{}, c, bytesMsg(payload), 2*size)
			if err != nil {
				t.Fatal(err)
			}
			stream := append(append([]byte{}, prefix...), data...)
			release()

			// The default 4 MiB limit refuses it.
			_, _, err = NewParser(bytes.NewReader(stream)).ReadMessage(4<<20, c)
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("16 MiB at the default limit: %v", err)
			}
			// A raised limit takes it.
			got, release, err := NewParser(bytes.NewReader(stream)).ReadMessage(2*size, c)
			if err != nil {
				t.Fatal(err)
			}
			var m = bytesMsg(nil)
			if err := Decode(ProtoCodec{}, got, m); err != nil {
				t.Fatal(err)
			}
			release()
			if !bytes.Equal(m.GetValue(), payload) {
				t.Fatal("16 MiB message changed on the way")
			}
		})
	}
}

// Buffers come back through the pools and are reused.
func TestParserReusesBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	var stream bytes.Buffer
	for range 100 {
		stream.Write(frame(0, randomBytes(3000)))
	}
	r := bytes.NewReader(stream.Bytes())
	p := NewParser(r)
	allocs := testing.AllocsPerRun(50, func() {
		_, release, err := p.ReadMessage(1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
	if allocs > 0 {
		t.Errorf("ReadMessage: %.1f allocs per message, want 0", allocs)
	}
}

func TestParserCompressed(t *testing.T) {
	gz := GetCompressor(GzipName)
	var stream bytes.Buffer
	stream.Write(gzipFrame(t, []byte("first, compressed")))
	stream.Write(frame(0, []byte("second, plain")))
	stream.Write(frame(0, nil))
	stream.Write(gzipFrame(t, nil))
	p := NewParser(&stream)
	if p.Compressed() {
		t.Fatal("Compressed() = true before any message")
	}
	for i, want := range []bool{true, false, false, true} {
		_, release, err := p.ReadMessage(1<<20, gz)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		release()
		if got := p.Compressed(); got != want {
			t.Errorf("message %d: Compressed() = %v, want %v", i, got, want)
		}
	}
	// The end of the stream leaves the flag of the last message.
	if _, _, err := p.ReadMessage(1<<20, gz); err != io.EOF {
		t.Fatalf("after the last message: err = %v, want io.EOF", err)
	}
	if !p.Compressed() {
		t.Error("Compressed() changed at the end of the stream")
	}
	p.Reset(bytes.NewReader(nil))
	if p.Compressed() {
		t.Error("Compressed() = true after Reset")
	}
}
