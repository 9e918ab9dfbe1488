package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunkReader returns its chunks one Read at a time, then EOF.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

func TestConnReaderAdaptsBufferToTraffic(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, 8*smallReadSize)
	src := &chunkReader{chunks: [][]byte{[]byte("tiny"), big, []byte("x")}}
	cr := newConnReader(src, 32<<10)

	// Light traffic reads into the small buffer.
	p, err := cr.next(100)
	if err != nil || string(p) != "tiny" {
		t.Fatalf("next = %q, %v", p, err)
	}
	if _, large := cr.buffered(); large {
		t.Fatal("holds the large buffer after a small read")
	}
	// A read that fills the small buffer switches to the large one.
	p, _ = cr.next(1 << 20)
	if len(p) != smallReadSize {
		t.Fatalf("first bulk read %d bytes, want %d", len(p), smallReadSize)
	}
	p, _ = cr.next(1 << 20)
	if len(p) != len(big)-smallReadSize {
		t.Fatalf("second bulk read %d bytes, want the rest %d in one read", len(p), len(big)-smallReadSize)
	}
	if _, large := cr.buffered(); !large {
		t.Fatal("no large buffer during bulk traffic")
	}
	// A short read ends the burst: the next fill gives the buffer back.
	if b, err := cr.ReadByte(); err != nil || b != 'x' {
		t.Fatalf("ReadByte = %q, %v", b, err)
	}
	if _, err := cr.next(1); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v", err)
	}
	if _, large := cr.buffered(); large {
		t.Fatal("still holds the large buffer after the burst")
	}
}

func TestConnReaderReadsEverythingInOrder(t *testing.T) {
	want := make([]byte, 200_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	for name, src := range map[string]io.Reader{
		"one byte at a time": iotest.OneByteReader(bytes.NewReader(want)),
		"half reads":         iotest.HalfReader(bytes.NewReader(want)),
		"whole":              bytes.NewReader(want),
	} {
		t.Run(name, func(t *testing.T) {
			cr := newConnReader(src, 4<<10)
			var got []byte
			buf := make([]byte, 777)
			for {
				// Mix the three ways the reader goroutine consumes bytes.
				switch len(got) % 3 {
				case 0:
					n, err := cr.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						goto done
					}
				case 1:
					b, err := cr.ReadByte()
					if err == io.EOF {
						goto done
					}
					got = append(got, b)
				case 2:
					p, err := cr.next(500)
					if err == io.EOF {
						goto done
					}
					got = append(got, p...)
				}
			}
		done:
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, differ from the %d written", len(got), len(want))
			}
		})
	}
}

func TestConnReaderDiscardAndErrors(t *testing.T) {
	boom := errors.New("boom")
	cr := newConnReader(io.MultiReader(bytes.NewReader([]byte("0123456789")), iotest.ErrReader(boom)), 4<<10)
	if err := cr.Discard(4); err != nil {
		t.Fatal(err)
	}
	if b, _ := cr.ReadByte(); b != '4' {
		t.Fatalf("after Discard(4): %q", b)
	}
	if err := cr.Discard(100); !errors.Is(err, boom) {
		t.Fatalf("Discard past the end: %v, want boom", err)
	}
	// The error is sticky.
	if _, err := cr.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Fatalf("Read after error: %v", err)
	}
}
