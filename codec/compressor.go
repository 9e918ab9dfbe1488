package codec

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// Identity is the grpc-encoding of uncompressed messages. It is never
// registered and never advertised: every peer supports it.
const Identity = "identity"

// Compressor compresses and decompresses messages for one grpc-encoding.
// The interface is grpc-go's encoding.Compressor, so a compressor written
// for grpc-go can be registered here as it is.
//
// Implementations must be safe for concurrent use. They may pool their
// state:
//
//   - Compress returns a writer that is used once and then closed; Close
//     may return the writer's state to a pool.
//   - The reader returned by Decompress may implement io.Closer. This
//     package closes it once it has read what it needs (the whole message
//     or one byte past the limit), and Close may return its state to a
//     pool; the reader is not used after Close.
//
// A compressor may also implement DecompressedSize(compressed []byte) int
// (as in grpc-go), returning the size the data will decompress to, or -1
// when it cannot tell. The Parser treats the result as a hint for sizing
// its buffer, never as a promise, and still applies the receive limit to
// the bytes actually produced.
type Compressor interface {
	// Name returns the grpc-encoding value, such as "gzip". It must be
	// constant.
	Name() string
	// Compress returns a writer that compresses what is written to it
	// into w. The caller must Close it to flush the compressed data.
	Compress(w io.Writer) (io.WriteCloser, error)
	// Decompress returns a reader of the decompressed content of r. An
	// error from Decompress, or from the reader, means the data is not
	// valid for this encoding.
	Decompress(r io.Reader) (io.Reader, error)
}

// compressorSet is one version of the compressor registry.
type compressorSet struct {
	byName map[string]Compressor
	names  []string // in registration order
	header string   // names joined with ","
}

// The compressor registry: copy on write, so lookups on every RPC take no
// lock and AcceptEncodingHeader does not build its string each time.
var (
	compressorsMu sync.Mutex                    // held by writers
	compressors   atomic.Pointer[compressorSet] // never modified once stored
)

func init() {
	RegisterCompressor(newGzip(DefaultGzipLevel))
}

// RegisterCompressor makes c available under c.Name() (compared exactly,
// as grpc-encoding values are), replacing a compressor registered under
// that name before and keeping its place in the advertised list. It
// panics if c is nil or its name is empty or "identity".
//
// Registering is safe at any time and concurrently with lookups, but a
// compressor is normally registered from an init function, before any
// RPC; a peer only learns about it from grpc-accept-encoding headers sent
// after it was registered.
func RegisterCompressor(c Compressor) {
	if c == nil {
		panic("codec: RegisterCompressor of a nil Compressor")
	}
	name := c.Name()
	if name == "" || name == Identity {
		panic("codec: RegisterCompressor of a Compressor named " + `"` + name + `"`)
	}
	compressorsMu.Lock()
	defer compressorsMu.Unlock()
	next := &compressorSet{byName: make(map[string]Compressor)}
	if old := compressors.Load(); old != nil {
		for k, v := range old.byName {
			next.byName[k] = v
		}
		next.names = append(next.names, old.names...)
	}
	if _, ok := next.byName[name]; !ok {
		next.names = append(next.names, name)
	}
	next.byName[name] = c
	next.header = strings.Join(next.names, ",")
	compressors.Store(next)
}

// GetCompressor returns the compressor registered under name, or nil if
// there is none. It returns nil for "" and "identity", which mean no
// compression.
func GetCompressor(name string) Compressor {
	s := compressors.Load()
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// RegisteredCompressors returns the names of the registered compressors
// in the order they were first registered. "identity" is not among them.
// The caller may modify the returned slice.
func RegisteredCompressors() []string {
	s := compressors.Load()
	if s == nil {
		return nil
	}
	return append([]string(nil), s.names...)
}

// AcceptEncodingHeader returns the value to send in grpc-accept-encoding:
// the registered compressor names joined by "," without spaces, in
// registration order, as grpc-go sends it ("gzip" by default). Identity is
// left out: every peer accepts it. It returns "" when no compressor is
// registered, in which case the header should not be sent.
func AcceptEncodingHeader() string {
	s := compressors.Load()
	if s == nil {
		return ""
	}
	return s.header
}

// LookupEncoding resolves the grpc-encoding header of a received stream
// to the compressor for its messages: nil (no decompression) for "" and
// "identity", the registered compressor otherwise. An encoding that is
// not registered gives an UNIMPLEMENTED error wrapping
// ErrCompressorNotFound; a server answers it with grpc-accept-encoding
// set to AcceptEncodingHeader().
func LookupEncoding(encoding string) (Compressor, error) {
	if encoding == "" || encoding == Identity {
		return nil, nil
	}
	if c := GetCompressor(encoding); c != nil {
		return c, nil
	}
	return nil, newError(codes.Unimplemented, ErrCompressorNotFound,
		"codec: Decompressor is not installed for grpc-encoding %q", quotable(encoding))
}

// maxQuoted bounds how much of a peer's value an error message quotes.
const maxQuoted = 64

// quotable returns s, truncated so a long header value cannot make a long
// error message.
func quotable(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}
