package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzParser feeds arbitrary bytes to a Parser, with and without gzip,
// under an arbitrary limit. It must never panic, never return or allocate
// a buffer over the limit, never ask the reader for more than the limit,
// and never read more than limit+1 bytes from a decompressor.
func FuzzParser(f *testing.F) {
	gz := newGzip(DefaultGzipLevel)
	zip := func(b []byte) []byte {
		var out bytes.Buffer
		w, _ := gz.Compress(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add([]byte{}, uint32(100), false)
	f.Add(frame(0, nil), uint32(0), false)
	f.Add(join(frame(0, []byte("hello")), frame(0, nil), frame(0, []byte("world"))), uint32(5), false)
	f.Add(join(frame(1, zip([]byte("hello"))), frame(0, []byte("plain"))), uint32(100), true)
	f.Add(frame(1, zip(make([]byte, 1<<20))), uint32(64<<10), true) // a small bomb
	f.Add(frame(1, zip(bytes.Repeat([]byte("ab"), 500))), uint32(1000), true)
	f.Add(frame(1, zip(bytes.Repeat([]byte("ab"), 500))), uint32(999), true)
	f.Add(frame(2, []byte("x")), uint32(100), false)
	f.Add(frame(1, []byte("x")), uint32(100), false)
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, uint32(16<<20), false)
	f.Add([]byte{0, 0, 0}, uint32(100), false)
	f.Add(frame(1, zip(nil)[:10]), uint32(100), true)

	f.Fuzz(func(t *testing.T, stream []byte, limit uint32, useGzip bool) {
		maxRecv := int(limit % (16 << 20))
		testHookGetBuffer = func(n int) {
			if n > maxRecv {
				t.Fatalf("buffer of %d bytes requested, limit %d", n, maxRecv)
			}
		}
		defer func() { testHookGetBuffer = nil }()

		var dc Compressor
		cc := &countingCompressor{Compressor: gz}
		if useGzip {
			dc = cc
		}
		rr := &limitCheckReader{r: bytes.NewReader(stream), max: maxRecv, t: t}
		p := NewParser(rr)
		for i := 0; ; i++ {
			cc.read = 0
			data, release, err := p.ReadMessage(maxRecv, dc)
			if cc.read > maxRecv+1 {
				t.Fatalf("message %d: read %d bytes from the decompressor, limit %d", i, cc.read, maxRecv)
			}
			if err != nil {
				if err == io.EOF {
					return
				}
				if errors.Is(err, io.EOF) {
					t.Fatalf("message %d: error %v wraps io.EOF", i, err)
				}
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("message %d: error %v is not a codec error", i, err)
				}
				return
			}
			if len(data) > maxRecv {
				t.Fatalf("message %d: %d bytes, limit %d", i, len(data), maxRecv)
			}
			release()
		}
	})
}

// limitCheckReader fails the test if asked to prepare for a message over
// the limit.
type limitCheckReader struct {
	r   io.Reader
	max int
	t   *testing.T
}

func (r *limitCheckReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func (r *limitCheckReader) RequestRead(n int) {
	if n > r.max || n <= 0 {
		r.t.Fatalf("RequestRead(%d) with limit %d", n, r.max)
	}
}
