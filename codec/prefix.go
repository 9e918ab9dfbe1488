package codec

import (
	"encoding/binary"
	"io"
	"math"
	"strconv"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// The message prefix ("gRPC over HTTP2", "Length-Prefixed-Message"):
// Compressed-Flag (1 byte, 0 or 1) then Message-Length (4 bytes,
// big-endian).
const (
	// PrefixLen is the size of the prefix before every message.
	PrefixLen = 5

	// MaxMessageLen is the largest length the prefix can carry.
	MaxMessageLen = math.MaxUint32

	flagUncompressed = 0
	flagCompressed   = 1
)

// EncodePrefix writes the prefix of a message of n bytes into p. It
// panics if n is negative or larger than MaxMessageLen.
func EncodePrefix(p *[PrefixLen]byte, compressed bool, n int) {
	if n < 0 || uint64(n) > MaxMessageLen {
		panic("codec: message length " + strconv.Itoa(n) + " out of range")
	}
	p[0] = flagUncompressed
	if compressed {
		p[0] = flagCompressed
	}
	binary.BigEndian.PutUint32(p[1:], uint32(n))
}

// AppendPrefix appends the prefix of a message of n bytes to b. It panics
// if n is negative or larger than MaxMessageLen.
func AppendPrefix(b []byte, compressed bool, n int) []byte {
	var p [PrefixLen]byte
	EncodePrefix(&p, compressed, n)
	return append(b, p[:]...)
}

// ParsePrefix decodes a message prefix, the first PrefixLen bytes of p.
// A flag other than 0 or 1 gives an INTERNAL error wrapping
// ErrInvalidFlag; a p shorter than PrefixLen, one wrapping
// io.ErrUnexpectedEOF. It does not check the length against any limit.
func ParsePrefix(p []byte) (compressed bool, length uint32, err error) {
	if len(p) < PrefixLen {
		return false, 0, newError(codes.Internal, io.ErrUnexpectedEOF, "codec: message prefix of %d bytes, want %d", len(p), PrefixLen)
	}
	switch p[0] {
	case flagUncompressed:
	case flagCompressed:
		compressed = true
	default:
		return false, 0, newError(codes.Internal, ErrInvalidFlag, "codec: received unexpected payload format %d", p[0])
	}
	return compressed, binary.BigEndian.Uint32(p[1:PrefixLen]), nil
}
