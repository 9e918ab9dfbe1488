// Package codec turns messages into gRPC message frames and back: the
// Codec that serialises a message (protobuf by default), the Compressor
// that may shrink it (gzip built in), and the 5-byte message prefix with
// the size limits that guard it.
//
// The package knows nothing of streams or connections. It works on byte
// slices, io.Reader and io.Writer; the rpc layer feeds it a stream.
//
// # Wire format
//
// Each message on a gRPC stream is a 1-byte compressed flag (0 or 1), a
// 4-byte big-endian length and that many bytes ("gRPC over HTTP2",
// section "Length-Prefixed-Message"). When the flag is 1, the bytes are
// compressed with the algorithm named by the grpc-encoding header of the
// stream.
//
// # Sending
//
// Encode marshals a message, compresses it when asked, checks the send
// limit and returns the prefix and the payload in pooled memory, with a
// release function that gives the memory back. The transport writes
// prefix and payload as they are, so a typical caller passes release as
// the write's completion callback.
//
// # Receiving
//
// A Parser reads one message after another from an io.Reader. It checks
// the prefix and the receive limit before allocating anything sized by
// the peer, grows its buffer only as bytes arrive, and applies the limit
// again to the decompressed size, reading at most one byte past it from
// the decompressor, so a small compressed message that would inflate to
// gigabytes costs no more than the limit. Decode then unmarshals the
// message.
//
// # Ownership of pooled memory
//
// Encode and Parser.ReadMessage return a release function with the bytes.
// The bytes belong to the caller until it calls release, exactly once;
// after that they may be handed to anyone else, so neither the bytes nor
// any slice of them may be used again. A caller that never calls release
// is safe: the memory is then left to the garbage collector. Codecs must
// not keep the slice they unmarshal from (the proto codec copies what it
// keeps). The other way round, the slice a codec's Marshal returns stays
// the codec's: Encode hands it out as the payload but release never pools
// it, so a codec may return an encoding it keeps (see Codec).
//
// # Errors
//
// Errors about a message carry a gRPC status, so status.Code and
// status.FromError see RESOURCE_EXHAUSTED, INTERNAL or UNIMPLEMENTED,
// and wrap a cause for errors.Is: ErrMessageTooLarge, ErrInvalidFlag,
// ErrCompressedWithoutEncoding, ErrCompressorNotFound,
// io.ErrUnexpectedEOF, or the codec's or compressor's own error. Errors
// from the underlying reader (a reset stream, say) are returned as they
// are, and io.EOF at a message boundary is returned bare.
package codec
