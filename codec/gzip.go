package codec

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// GzipName is the grpc-encoding of the built-in gzip compressor.
const GzipName = "gzip"

// DefaultGzipLevel is the compression level of the built-in gzip
// compressor unless SetGzipLevel changes it.
const DefaultGzipLevel = gzip.DefaultCompression

// gzipTrailerLen is the size of the gzip member trailer: CRC-32 and
// ISIZE, the uncompressed size modulo 2^32 (RFC 1952, section 2.3.1).
const gzipTrailerLen = 8

// NewGzip returns a gzip compressor named "gzip" that compresses at
// level, one of the compress/gzip levels (gzip.HuffmanOnly to
// gzip.BestCompression, gzip.DefaultCompression included). Writers and
// readers are pooled per compressor. Registering it with
// RegisterCompressor replaces the built-in one.
func NewGzip(level int) (Compressor, error) {
	if level < gzip.HuffmanOnly || level > gzip.BestCompression {
		return nil, fmt.Errorf("codec: invalid gzip compression level %d", level)
	}
	return newGzip(level), nil
}

// SetGzipLevel replaces the registered "gzip" compressor with one that
// compresses at level (see NewGzip). Like RegisterCompressor it is meant
// for init time; streams that already hold the previous compressor keep
// using it.
func SetGzipLevel(level int) error {
	c, err := NewGzip(level)
	if err != nil {
		return err
	}
	RegisterCompressor(c)
	return nil
}

// gzipCompressor is the built-in gzip Compressor.
type gzipCompressor struct {
	level   int
	writers sync.Pool // of *gzipWriter
	readers sync.Pool // of *gzipReader
}

func newGzip(level int) *gzipCompressor { return &gzipCompressor{level: level} }

// Name returns "gzip".
func (c *gzipCompressor) Name() string { return GzipName }

// Compress returns a pooled gzip writer onto w; Close returns it to the
// pool.
func (c *gzipCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if gw, ok := c.writers.Get().(*gzipWriter); ok {
		gw.Reset(w)
		gw.closed = false
		return gw, nil
	}
	z, err := gzip.NewWriterLevel(w, c.level)
	if err != nil {
		return nil, err
	}
	return &gzipWriter{Writer: z, c: c}, nil
}

// Decompress returns a pooled gzip reader of r; Close returns it to the
// pool. It reads the gzip header before it returns.
func (c *gzipCompressor) Decompress(r io.Reader) (io.Reader, error) {
	gr, ok := c.readers.Get().(*gzipReader)
	if !ok {
		gr = &gzipReader{c: c}
	}
	src, ok := r.(flate.Reader)
	if !ok {
		// gzip.Reader.Reset would allocate a bufio.Reader each time.
		if gr.br == nil {
			gr.br = bufio.NewReader(r)
		} else {
			gr.br.Reset(r)
		}
		src = gr.br
	}
	if err := gr.z.Reset(src); err != nil {
		gr.closed = false
		gr.Close()
		return nil, err
	}
	gr.closed = false
	return gr, nil
}

// DecompressedSize returns the size recorded in the trailer of the last
// gzip member of compressed (modulo 2^32), or -1 if compressed is too
// short to hold one. It is a hint: the peer wrote it.
func (c *gzipCompressor) DecompressedSize(compressed []byte) int {
	if len(compressed) < gzipTrailerLen {
		return -1
	}
	return int(binary.LittleEndian.Uint32(compressed[len(compressed)-4:]))
}

// gzipWriter is a pooled gzip.Writer.
type gzipWriter struct {
	*gzip.Writer
	c      *gzipCompressor
	closed bool
}

// Close flushes the compressed stream and returns the writer to the pool.
// Later calls do nothing.
func (w *gzipWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.Writer.Close()
	w.c.writers.Put(w)
	return err
}

// emptyGzipHeader is a minimal gzip member header (RFC 1952, section
// 2.3): magic, CM=deflate, no flags, no time, no extra flags, OS unknown.
// A pooled reader is reset onto it so that it keeps no reference to the
// message it last read.
var emptyGzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// gzipReader is a pooled gzip.Reader.
type gzipReader struct {
	z      gzip.Reader
	br     *bufio.Reader // for sources that are not io.ByteReaders
	idle   bytes.Reader  // over emptyGzipHeader, the source while pooled
	c      *gzipCompressor
	closed bool
}

// Read reads decompressed bytes.
func (r *gzipReader) Read(p []byte) (int, error) { return r.z.Read(p) }

// Close returns the reader to the pool, pointed away from its source.
// Later calls do nothing.
func (r *gzipReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.idle.Reset(emptyGzipHeader)
	r.z.Reset(&r.idle) // keeps the inflate state, drops the source
	if r.br != nil {
		r.br.Reset(nil)
	}
	r.c.readers.Put(r)
	return nil
}
