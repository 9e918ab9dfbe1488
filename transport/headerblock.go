package transport

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Header block limits. A header block is one HEADERS frame and the
// CONTINUATION frames that follow it (RFC 9113 §4.3); it is decoded as it
// arrives, so nothing but the decoded fields is kept.
const (
	// DefaultMaxHeaderListSize bounds the decoded size of a received header
	// list (RFC 9113 §6.5.2, SETTINGS_MAX_HEADER_LIST_SIZE: the sum of
	// name + value + 32 per field). grpc-go accepts 16 MiB by default; we
	// take 16 KiB, the size gRPC C-core enforces, which any real metadata fits.
	DefaultMaxHeaderListSize = 16 << 10

	// maxStringFactor bounds one HPACK string (a name or a value) to this
	// many times the list limit. The decoder buffers a field that spans
	// frames whole, so this bounds what one field can make us hold; a
	// longer string cannot be skipped without buffering it, so it is a
	// connection error (ENHANCE_YOUR_CALM), like a block past the hard cap.
	maxStringFactor = 2

	// minEncodedCap is the least hard cap on a header block's encoded size
	// (HEADERS and CONTINUATION fragments together); the cap is the larger
	// of this and encodedCapFactor times the list limit (see encodedCap).
	// A block over the list limit but under the cap is decoded to keep the
	// HPACK dynamic table in step with the peer's, its fields dropped as
	// they come, and fails only its stream; past the cap it is a flood and
	// closes the connection. 1 MiB is far above any real metadata (gRPC
	// C-core accepts 16 KiB, Envoy 60 KiB by default), and decoding it with
	// emitting off costs about as much as reading as many DATA bytes.
	minEncodedCap    = 1 << 20
	encodedCapFactor = 4

	// minFragment is the fragment size below which a CONTINUATION frame is
	// treated as padding the sequence out: the number of frames in one
	// block may not exceed 4 + encodedCap/minFragment. An endless stream
	// of empty CONTINUATION frames (CVE-2024-27316 style) ends in GOAWAY.
	minFragment = 1024
)

// encodedCap is the hard cap on the encoded size of a header block for a
// list limit: past it the block is a connection error.
func encodedCap(limit uint32) int {
	return max(minEncodedCap, encodedCapFactor*int(limit))
}

// Decoded fields are collected in a slice taken from fieldsPool when a
// block starts and given back once the block was handled, so a connection
// holds none between blocks; a slice that grew beyond maxPooledFields
// fields is left to the garbage collector.
const (
	pooledFields    = 16
	maxPooledFields = 256
)

var fieldsPool = sync.Pool{New: func() any {
	s := make([]hpack.HeaderField, 0, pooledFields)
	return &s
}}

// errHeaderListTooLarge marks a header block whose decoded size passed the
// limit; it fails only the block's stream.
var errHeaderListTooLarge = errors.New("header list too large")

// headerBlock decodes one header block at a time. It belongs to the reader
// goroutine; the decoded fields are valid until release.
type headerBlock struct {
	dec   *hpack.Decoder
	limit uint32 // decoded list size limit

	// State of the block being read.
	active     bool
	streamID   uint32
	endStream  bool
	fields     []hpack.HeaderField // from fieldsPool, while a block is read
	pooled     *[]hpack.HeaderField
	size       uint32 // decoded size so far; once tooLarge, the size that passed the limit
	encoded    int    // encoded bytes so far
	encCap     int    // encodedCap(limit)
	frames     int    // frames so far
	tooLarge   bool
	invalid    error // first malformed field
	sawRegular bool
}

func newHeaderBlock(limit uint32) *headerBlock {
	b := &headerBlock{limit: limit, encCap: encodedCap(limit)}
	b.dec = hpack.NewDecoder(4096, b.emit)
	// A string may be twice the list limit: one field over the limit is
	// then decoded (and dropped by emit) and fails only its stream, as a
	// list over the limit of many fields does, while what the decoder
	// buffers of a field split across frames stays bounded by the limit.
	b.dec.SetMaxStringLength(maxStringFactor * int(limit))
	return b
}

// emit receives each decoded field.
func (b *headerBlock) emit(f hpack.HeaderField) {
	if b.invalid != nil || b.tooLarge {
		return
	}
	b.size += f.Size()
	if b.size > b.limit {
		// The rest of the block is decoded with emitting off, which
		// keeps the dynamic table in step without collecting (or, for
		// fields not indexed, even allocating) anything.
		b.tooLarge = true
		b.fields = b.fields[:0]
		b.dec.SetEmitEnabled(false)
		return
	}
	if err := checkField(f, &b.sawRegular); err != nil {
		b.invalid = err
		b.dec.SetEmitEnabled(false)
		return
	}
	b.fields = append(b.fields, f)
}

// checkField applies RFC 9113 §8.2 field rules: lower-case valid names,
// valid values, pseudo-headers before regular ones, no connection-specific
// fields, and "te" only as "trailers".
func checkField(f hpack.HeaderField, sawRegular *bool) error {
	if strings.HasPrefix(f.Name, ":") {
		if *sawRegular {
			return fmt.Errorf("pseudo-header %q after a regular header", f.Name)
		}
	} else {
		*sawRegular = true
		if !validFieldName(f.Name) {
			return fmt.Errorf("invalid header field name %q", f.Name)
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return fmt.Errorf("connection-specific header field %q", f.Name)
		case "te":
			if f.Value != "trailers" {
				return fmt.Errorf("te header field %q is not \"trailers\"", f.Value)
			}
		}
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		return fmt.Errorf("invalid value of header field %q", f.Name)
	}
	return nil
}

// validFieldName reports whether name is a lower-case HTTP token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			return false
		}
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// start begins a block with a HEADERS frame of streamID; its fragments
// follow with add.
func (b *headerBlock) start(streamID uint32, endStream bool) {
	b.active = true
	b.streamID = streamID
	b.endStream = endStream
	if b.pooled == nil {
		b.pooled = fieldsPool.Get().(*[]hpack.HeaderField)
	}
	b.fields = (*b.pooled)[:0]
	b.size, b.encoded, b.frames = 0, 0, 0
	b.tooLarge, b.invalid, b.sawRegular = false, nil, false
	b.dec.SetEmitEnabled(true)
}

// markInvalid fails the block's stream (not the connection) with err once
// the block is decoded; its fields are dropped.
func (b *headerBlock) markInvalid(err error) {
	if b.invalid == nil {
		b.invalid = err
		b.dec.SetEmitEnabled(false)
	}
}

// unpin is a field representation that changes no decoder state (an
// indexed field of the static table, RFC 7541 §6.1) and so can be decoded
// with emitting off to point the decoder away from the last fragment.
var unpin = [1]byte{0x82}

// add decodes a fragment of the block; done reports that the block ended.
func (b *headerBlock) add(frag []byte, end bool) (done bool, err error) {
	b.frames++
	b.encoded += len(frag)
	if b.encoded > b.encCap {
		return false, connError(http2.ErrCodeEnhanceYourCalm, "header block of stream %d exceeds %d encoded bytes", b.streamID, b.encCap)
	}
	if b.frames > 4+b.encCap/minFragment {
		return false, connError(http2.ErrCodeEnhanceYourCalm, "header block of stream %d spans too many CONTINUATION frames", b.streamID)
	}
	// The fragment is decoded at once: only the decoded fields under the
	// limit and the tail of a field cut by the frame's end are kept.
	if _, err := b.dec.Write(frag); err != nil {
		if errors.Is(err, hpack.ErrStringLength) {
			// A single string too long to be skipped without
			// buffering it whole (see maxStringFactor).
			return false, &ConnectionError{Code: http2.ErrCodeEnhanceYourCalm, Desc: fmt.Sprintf("header field of stream %d exceeds %d bytes", b.streamID, maxStringFactor*int(b.limit)), Err: err}
		}
		return false, &ConnectionError{Code: http2.ErrCodeCompression, Desc: "hpack decoding failed", Err: err}
	}
	if !end {
		return false, nil
	}
	b.active = false
	if err := b.dec.Close(); err != nil {
		return false, &ConnectionError{Code: http2.ErrCodeCompression, Desc: "truncated hpack block", Err: err}
	}
	// The decoder keeps a slice of the last bytes it was given, which
	// lie in a (pooled) read buffer: left so, it would keep that buffer
	// from the garbage collector for as long as the connection lives.
	b.dec.SetEmitEnabled(false)
	b.dec.Write(unpin[:])
	b.dec.Close()
	return true, nil
}

// release gives the fields back to the pool once the finished block was
// handled; they must not be used after.
func (b *headerBlock) release() {
	if b.pooled == nil {
		return
	}
	if cap(b.fields) <= maxPooledFields {
		clear(b.fields[:cap(b.fields)]) // the pool must not keep strings alive
		*b.pooled = b.fields[:0]
		fieldsPool.Put(b.pooled)
	}
	b.pooled, b.fields = nil, nil
}

// blockError reports a stream-level problem with the finished block:
// a malformed field or a list over the limit.
func (b *headerBlock) blockError() error {
	if b.invalid != nil {
		return b.invalid
	}
	if b.tooLarge {
		// Fields past the limit were not counted: the size is a floor.
		return fmt.Errorf("%w: size %d or more exceeds the limit of %d bytes", errHeaderListTooLarge, b.size, b.limit)
	}
	return nil
}
