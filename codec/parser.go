package codec

import (
	"bytes"
	"errors"
	"io"
	"math"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// Read-side tunables.
const (
	// eagerReadSize is the most a Parser allocates for a message body
	// before its bytes arrive. Past it, the buffer grows (doubling) only
	// as bytes come in, so a peer that declares a large message and
	// sends little of it costs little memory.
	eagerReadSize = 64 << 10

	// minDirectBody is the smallest body a Parser reads with a
	// BodyReader's ReadBody; a smaller one is usually buffered whole
	// already and is read with Read.
	minDirectBody = 1 << 10

	// maxTrustedHint is the most a Parser allocates at once on the word
	// of a compressor's DecompressedSize, a size the peer wrote.
	maxTrustedHint = 1 << 20

	// maxZeroReads is how many reads in a row may return no bytes and no
	// error before a decompressor counts as stuck.
	maxZeroReads = 100
)

// ReadRequester is implemented by readers that want to know the size of
// the message about to be read. The Parser calls RequestRead(n) after a
// prefix passed its checks and before it reads the n bytes of the body;
// the transport uses it to open its flow-control window wide enough for
// a message larger than the window.
type ReadRequester interface {
	RequestRead(n int)
}

// BodyReader is implemented by readers that can receive a message body
// straight into the caller's buffer, as a transport stream does: its
// connection reader copies each DATA payload from the socket's buffer to
// the body's final place, and the caller wakes once, when the body is
// complete. The Parser uses it for every body of minDirectBody (1 KiB) or
// more.
type BodyReader interface {
	// ReserveBody asks to allocate a body of n bytes before its bytes
	// arrived. The Parser asks for bodies larger than eagerReadSize, to
	// allocate them whole; the reader refuses when a peer has too many
	// such bodies outstanding, and the Parser then grows its buffer as
	// the bytes arrive. After true, ReadBody must follow.
	ReserveBody(n int) bool
	// ReadBody fills p with the next len(p) bytes. It returns
	// io.ErrUnexpectedEOF when the reader ends first, or the reader's
	// error; either way the bytes already in p are lost. It ends a
	// reservation of ReserveBody.
	ReadBody(p []byte) error
}

// decompressedSizer is the optional Compressor method that estimates the
// decompressed size.
type decompressedSizer interface {
	DecompressedSize(compressed []byte) int
}

// Parser reads gRPC messages, one after another, from an io.Reader. It is
// not safe for concurrent use.
type Parser struct {
	r     io.Reader
	rr    ReadRequester // r, if it is one
	br    BodyReader    // r, if it is one
	hdr   [PrefixLen]byte
	probe [1]byte      // reads one byte past a full buffer
	in    bytes.Reader // the compressed bytes, for the decompressor

	compressed bool // the compressed flag of the last message's prefix
}

// NewParser returns a Parser that reads messages from r.
func NewParser(r io.Reader) *Parser {
	p := &Parser{}
	p.Reset(r)
	return p
}

// Reset makes p read from r, as a new Parser would.
func (p *Parser) Reset(r io.Reader) {
	p.r = r
	p.rr, _ = r.(ReadRequester)
	p.br, _ = r.(BodyReader)
	p.compressed = false
}

// Compressed reports whether the message last returned by ReadMessage
// had its compressed flag set, that is, whether it arrived compressed (a
// peer may compress some messages of a stream and not others). It is
// false before the first message; a call of ReadMessage that returns an
// error (io.EOF included) leaves it as it was.
func (p *Parser) Compressed() bool { return p.compressed }

// ReadMessage reads the next message and returns its bytes, decompressed
// with decomp when the message's compressed flag is set. decomp is the
// compressor the stream's grpc-encoding names (see LookupEncoding); nil
// means the stream is not compressed.
//
// The bytes are in pooled memory and belong to the caller until it calls
// release, exactly once; they must not be used after that. Decode does
// not keep them, so the usual sequence is ReadMessage, Decode, release.
//
// maxRecv limits the message both as received and after decompression.
// The checks come before anything sized by the peer is allocated, and at
// most maxRecv+1 bytes are read from the decompressor. Errors:
//
//   - io.EOF, bare, when r ends cleanly before a new message;
//   - r's own error, as it is, when r fails (a reset stream, say);
//   - INTERNAL wrapping io.ErrUnexpectedEOF when r ends inside a message;
//   - INTERNAL wrapping ErrInvalidFlag for a flag other than 0 or 1;
//   - INTERNAL wrapping ErrCompressedWithoutEncoding for a compressed
//     message when decomp is nil;
//   - RESOURCE_EXHAUSTED wrapping ErrMessageTooLarge for a message longer
//     than maxRecv, before or after decompression;
//   - INTERNAL wrapping the decompressor's error for data it rejects.
//
// After an error other than io.EOF the Parser is no longer at a message
// boundary; the stream must end. Compressed reports the flag of the
// message returned.
func (p *Parser) ReadMessage(maxRecv int, decomp Compressor) (data []byte, release func(), err error) {
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, nil, errTruncated()
		}
		return nil, nil, err // io.EOF at a boundary, or r's error
	}
	compressed, length, err := ParsePrefix(p.hdr[:])
	if err != nil {
		return nil, nil, err
	}
	if compressed && decomp == nil {
		return nil, nil, newError(codes.Internal, ErrCompressedWithoutEncoding,
			"codec: compressed flag set with identity or empty encoding")
	}
	maxRecv = min(max(maxRecv, 0), math.MaxInt-1)
	if uint64(length) > uint64(maxRecv) {
		return nil, nil, newError(codes.ResourceExhausted, ErrMessageTooLarge,
			"codec: received message larger than max (%d vs. %d)", length, maxRecv)
	}
	n := int(length)
	if n == 0 && !compressed {
		p.compressed = false
		return nil, noRelease, nil
	}
	if n > 0 && p.rr != nil {
		p.rr.RequestRead(n)
	}
	body, err := p.readBody(n)
	if err != nil {
		return nil, nil, err
	}
	if !compressed {
		p.compressed = false
		return body.b, body.free, nil
	}
	out, err := p.decompress(decomp, body.b, maxRecv)
	body.release()
	if err != nil {
		return nil, nil, err
	}
	p.compressed = true
	return out.b, out.free, nil
}

// readBody reads the n bytes of a message body into a pooled buffer. It
// allocates at most eagerReadSize ahead of the bytes that arrived, unless
// a BodyReader reserved more.
func (p *Parser) readBody(n int) (*buffer, error) {
	if p.br != nil && n >= minDirectBody && (n <= eagerReadSize || p.br.ReserveBody(n)) {
		buf := getBuffer(n)
		buf.b = buf.b[:n]
		if err := p.br.ReadBody(buf.b); err != nil {
			buf.release()
			return nil, bodyError(err)
		}
		return buf, nil
	}
	buf := getBuffer(min(n, eagerReadSize))
	for len(buf.b) < n {
		if len(buf.b) == cap(buf.b) {
			buf.grow(min(2*cap(buf.b), n))
		}
		end := min(cap(buf.b), n)
		got, err := io.ReadFull(p.r, buf.b[len(buf.b):end])
		buf.b = buf.b[:len(buf.b)+got]
		if err != nil {
			buf.release()
			return nil, bodyError(err)
		}
	}
	return buf, nil
}

// bodyError is the error of a body read that failed: the stream ending
// inside the message is INTERNAL, the reader's own error stays as it is.
func bodyError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated()
	}
	return err
}

// decompress inflates src with dc into a pooled buffer, reading at most
// maxRecv+1 bytes from the decompressor.
func (p *Parser) decompress(dc Compressor, src []byte, maxRecv int) (_ *buffer, err error) {
	p.in.Reset(src)
	defer p.in.Reset(nil) // src goes back to the pool; keep no reference
	r, err := dc.Decompress(&p.in)
	if err != nil {
		return nil, errDecompress(err)
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}

	// The first buffer: the compressor's hint if it has one within the
	// limit (trusted up to maxTrustedHint), else a guess from the
	// compressed size. Either way the buffer then grows only as
	// decompressed bytes arrive.
	hint := -1
	if s, ok := dc.(decompressedSizer); ok {
		if h := s.DecompressedSize(src); h >= 0 && h <= maxRecv {
			hint = h
		}
	}
	first := min(4*len(src), eagerReadSize)
	if hint >= 0 {
		first = min(hint, maxTrustedHint)
	}
	buf := getBuffer(min(first, maxRecv))
	defer func() {
		if err != nil {
			buf.release()
		}
	}()

	zeroReads := 0
	for {
		end := min(cap(buf.b), maxRecv)
		if len(buf.b) == end {
			// Full: one more byte tells whether the message is over
			// (often it is, when the hint was exact) or goes on.
			got, err := p.readDecompressed(r, p.probe[:], &zeroReads)
			if got == 0 {
				if err == io.EOF {
					return buf, nil
				}
				if err != nil {
					return nil, errDecompress(err)
				}
				continue
			}
			if len(buf.b) == maxRecv {
				return nil, newError(codes.ResourceExhausted, ErrMessageTooLarge,
					"codec: received message after decompression larger than max %d", maxRecv)
			}
			next := 2 * cap(buf.b)
			if hint > cap(buf.b) {
				next = max(next, hint)
			}
			buf.grow(min(next, maxRecv))
			buf.b = append(buf.b, p.probe[0])
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				return nil, errDecompress(err)
			}
			continue
		}
		got, err := p.readDecompressed(r, buf.b[len(buf.b):end], &zeroReads)
		buf.b = buf.b[:len(buf.b)+got]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, errDecompress(err)
		}
	}
}

// readDecompressed reads from a decompressor, failing with
// io.ErrNoProgress after maxZeroReads empty reads in a row.
func (p *Parser) readDecompressed(r io.Reader, b []byte, zeroReads *int) (int, error) {
	n, err := r.Read(b)
	if n < 0 || n > len(b) {
		return 0, errors.New("codec: decompressor returned an invalid count")
	}
	if n > 0 || err != nil {
		*zeroReads = 0
		return n, err
	}
	*zeroReads++
	if *zeroReads >= maxZeroReads {
		return 0, io.ErrNoProgress
	}
	return 0, nil
}

func errTruncated() error {
	return newError(codes.Internal, io.ErrUnexpectedEOF, "codec: stream ended inside a message: %v", io.ErrUnexpectedEOF)
}

func errDecompress(err error) error {
	if errors.Is(err, io.EOF) {
		// A decompressor that hit the end of its input early: truncated
		// data, which must not look like the end of the stream.
		err = io.ErrUnexpectedEOF
	}
	return newError(codes.Internal, err, "codec: failed to decompress the received message: %v", err)
}
