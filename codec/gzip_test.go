package codec

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// gzipBytes compresses data with the compressor c.
func gzipBytes(t testing.TB, c Compressor, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := c.Compress(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gunzipBytes decompresses data with the compressor c.
func gunzipBytes(t testing.TB, c Compressor, r io.Reader) []byte {
	t.Helper()
	dr, err := c.Decompress(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(dr)
	if err != nil {
		t.Fatal(err)
	}
	if cl, ok := dr.(io.Closer); ok {
		cl.Close()
	}
	return out
}

// testPayloads are inputs of several sizes and kinds.
func testPayloads() map[string][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 100<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	return map[string][]byte{
		"empty":  {},
		"one":    {'x'},
		"text":   []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 500)),
		"random": random,
	}
}

func TestGzipRoundTrip(t *testing.T) {
	for _, level := range []int{gzip.HuffmanOnly, gzip.DefaultCompression, gzip.NoCompression, gzip.BestSpeed, gzip.BestCompression} {
		c, err := NewGzip(level)
		if err != nil {
			t.Fatal(err)
		}
		for name, in := range testPayloads() {
			for range 3 { // again, with pooled writers and readers
				z := gzipBytes(t, c, in)
				if got := gunzipBytes(t, c, bytes.NewReader(z)); !bytes.Equal(got, in) {
					t.Fatalf("level %d, %s: round trip changed the data", level, name)
				}
				// A source that is not an io.ByteReader.
				if got := gunzipBytes(t, c, iotest.OneByteReader(bytes.NewReader(z))); !bytes.Equal(got, in) {
					t.Fatalf("level %d, %s: round trip through OneByteReader changed the data", level, name)
				}
				// Standard gzip reads it too.
				zr, err := gzip.NewReader(bytes.NewReader(z))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, in) {
					t.Fatalf("level %d, %s: compress/gzip cannot read our output: %v", level, name, err)
				}
				if sz := c.(decompressedSizer).DecompressedSize(z); sz != len(in) {
					t.Errorf("DecompressedSize = %d, want %d", sz, len(in))
				}
			}
		}
	}
}

func TestGzipLevels(t *testing.T) {
	for _, bad := range []int{-3, 10, 100} {
		if _, err := NewGzip(bad); err == nil {
			t.Errorf("NewGzip(%d) succeeded", bad)
		}
		if err := SetGzipLevel(bad); err == nil {
			t.Errorf("SetGzipLevel(%d) succeeded", bad)
		}
	}
	text := testPayloads()["text"]
	before := GetCompressor(GzipName)
	if err := SetGzipLevel(gzip.NoCompression); err != nil {
		t.Fatal(err)
	}
	stored := gzipBytes(t, GetCompressor(GzipName), text)
	if err := SetGzipLevel(DefaultGzipLevel); err != nil {
		t.Fatal(err)
	}
	if GetCompressor(GzipName) == before {
		t.Error("SetGzipLevel did not replace the registered compressor")
	}
	if AcceptEncodingHeader()[:4] != "gzip" {
		t.Error("gzip lost its place in the advertised list")
	}
	deflated := gzipBytes(t, GetCompressor(GzipName), text)
	if len(stored) <= len(text) || len(deflated) >= len(text)/10 {
		t.Errorf("level 0 gave %d bytes and the default %d for %d bytes of text", len(stored), len(deflated), len(text))
	}
}

func TestGzipPooling(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c := newGzip(DefaultGzipLevel)
	var dst bytes.Buffer
	w1, _ := c.Compress(&dst)
	w1.Close()
	w1.Close() // a second Close must not put it in the pool twice
	w2, _ := c.Compress(&dst)
	w3, _ := c.Compress(&dst)
	if w2 != w1 || w3 == w1 {
		t.Error("writers are not reused from the pool, or handed out twice")
	}
	w2.Close()
	w3.Close()

	z := gzipBytes(t, c, []byte("hello"))
	r1, _ := c.Decompress(bytes.NewReader(z))
	io.ReadAll(r1)
	r1.(io.Closer).Close()
	r1.(io.Closer).Close()
	r2, _ := c.Decompress(bytes.NewReader(z))
	r3, _ := c.Decompress(bytes.NewReader(z))
	if r2 != r1 || r3 == r1 {
		t.Error("readers are not reused from the pool, or handed out twice")
	}

	// Steady state: a round trip into pooled buffers allocates nothing.
	in := testPayloads()["text"]
	var (
		r    bytes.Reader
		wire []byte
	)
	p := NewParser(&r)
	allocs := testing.AllocsPerRun(100, func() {
		prefix, data, release, err := Encode(ProtoCodec{}, c, bytesMsg(in), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		wire = append(append(wire[:0], prefix...), data...)
		release()
		r.Reset(wire)
		_, release, err = p.ReadMessage(1<<20, c)
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
	if allocs > 1 { // bytesMsg's one, for the test's own message
		t.Errorf("gzip round trip of %d bytes: %.1f allocs, want pooled writers, readers and buffers", len(in), allocs)
	}
}

func TestGzipDecompressErrors(t *testing.T) {
	c := GetCompressor(GzipName)
	if _, err := c.Decompress(bytes.NewReader([]byte("not gzip at all"))); err == nil {
		t.Error("Decompress of garbage succeeded")
	}
	if _, err := c.Decompress(bytes.NewReader(nil)); err == nil {
		t.Error("Decompress of nothing succeeded")
	}
	z := gzipBytes(t, c, testPayloads()["text"])
	r, err := c.Decompress(bytes.NewReader(z[:len(z)/2]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading truncated gzip: %v, want io.ErrUnexpectedEOF", err)
	}
	if sz := c.(decompressedSizer).DecompressedSize([]byte{1, 2, 3}); sz != -1 {
		t.Errorf("DecompressedSize of 3 bytes = %d, want -1", sz)
	}
}
