package codec

import (
	"errors"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// noRelease is the release function of messages that hold no pooled
// memory.
var noRelease = func() {}

// Encode marshals v with c and, when comp is not nil, compresses it, and
// returns the message prefix and the payload to write after it. Both live
// in pooled memory that belongs to the caller until it calls release,
// exactly once, typically when the transport has written them; neither
// may be used after that. On error, prefix, data and release are nil.
//
// A payload (after compression) larger than maxSend, or than the prefix
// can describe, gives a RESOURCE_EXHAUSTED error wrapping
// ErrMessageTooLarge; when comp is nil and c is ProtoCodec, that is found
// before marshaling. A codec or compressor error gives an INTERNAL error
// wrapping it. An empty message is sent uncompressed even when comp is
// set (the flag is per message, so any peer accepts it), since
// compression would only make it longer.
//
// Encode marshals a ProtoCodec message into a pooled buffer of exactly
// its size, and other AppendMarshaler codecs into a pooled buffer they
// may outgrow; other codecs' Marshal result is used as it is. Only memory
// Encode took from its pool goes back to the pool on release: a codec's
// Marshal result (or a MarshalAppend result in memory other than the
// buffer it was given) is read, never written or reused.
func Encode(c Codec, comp Compressor, v any, maxSend int) (prefix, data []byte, release func(), err error) {
	maxSend = max(maxSend, 0)
	limit := maxSend
	if comp != nil {
		limit = -1 // the limit applies to the compressed size
	}
	buf, err := marshal(c, v, limit)
	if err != nil {
		return nil, nil, nil, err
	}
	compressed := false
	if comp != nil && len(buf.b) > 0 {
		out, err := compress(comp, buf.b)
		buf.release()
		if err != nil {
			return nil, nil, nil, err
		}
		buf, compressed = out, true
	}
	if n := len(buf.b); n > maxSend || uint64(n) > MaxMessageLen {
		buf.release()
		return nil, nil, nil, errSendTooLarge(n, maxSend)
	}
	EncodePrefix(&buf.prefix, compressed, len(buf.b))
	return buf.prefix[:], buf.b, buf.free, nil
}

// errSendTooLarge is the error for a message of n bytes over the send
// limit.
func errSendTooLarge(n, maxSend int) error {
	return newError(codes.ResourceExhausted, ErrMessageTooLarge,
		"codec: trying to send message larger than max (%d vs. %d)", n, maxSend)
}

// marshal encodes v with c into a buffer. A limit of 0 or more is checked
// early when the size is known before marshaling.
func marshal(c Codec, v any, limit int) (*buffer, error) {
	switch cc := c.(type) {
	case ProtoCodec:
		m, err := protoMessage(v)
		if err != nil {
			return nil, errMarshal(err)
		}
		size := proto.Size(m)
		if limit >= 0 && size > limit {
			return nil, errSendTooLarge(size, limit)
		}
		if size == 0 {
			return getBare(), nil
		}
		buf := getBuffer(size)
		// UseCachedSize: proto.Size has just computed and cached the
		// sizes, so marshaling need not walk the message twice.
		out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf.b, m)
		if err != nil {
			buf.release()
			return nil, errMarshal(err)
		}
		buf.b = out
		return buf, nil
	case AppendMarshaler:
		buf := getBuffer(minPooledSize)
		out, err := cc.MarshalAppend(buf.b, v)
		if err != nil {
			buf.release()
			return nil, errMarshal(err)
		}
		if !sameMemory(out, buf.b) {
			// The codec outgrew our buffer or ignored it: the result is
			// not memory we handed out, so it is never pooled.
			buf.release()
			buf = getBare()
			buf.attach(out)
			return buf, nil
		}
		buf.b = out
		return buf, nil
	default:
		out, err := c.Marshal(v)
		if err != nil {
			return nil, errMarshal(err)
		}
		// The codec owns what Marshal returns (it may be a cached
		// encoding): read it, never pool it.
		buf := getBare()
		buf.attach(out)
		return buf, nil
	}
}

// sameMemory reports whether out starts at the first byte of ours, an
// empty slice with room: that is, whether MarshalAppend appended to the
// buffer it was given.
func sameMemory(out, ours []byte) bool {
	return cap(out) > 0 && cap(ours) > 0 && &out[:1][0] == &ours[:1][0]
}

// compress compresses data with comp into a new pooled buffer.
func compress(comp Compressor, data []byte) (*buffer, error) {
	// Start at half the input and let the buffer grow through the size
	// classes if it needs more.
	out := getBuffer(len(data) / 2)
	w, err := comp.Compress(out)
	if err != nil {
		out.release()
		return nil, errCompress(err)
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		out.release()
		return nil, errCompress(err)
	}
	if err := w.Close(); err != nil {
		out.release()
		return nil, errCompress(err)
	}
	return out, nil
}

func errMarshal(err error) error {
	return newError(codes.Internal, err, "codec: error while marshaling: %v", err)
}

func errCompress(err error) error {
	return newError(codes.Internal, err, "codec: error while compressing: %v", err)
}

// Decode unmarshals data, a message returned by Parser.ReadMessage, into
// v with c. A codec error gives an INTERNAL error wrapping it. c keeps no
// reference to data, so the caller may release data once Decode returns.
func Decode(c Codec, data []byte, v any) error {
	if err := c.Unmarshal(data, v); err != nil {
		if errors.Is(err, io.EOF) {
			// Never let a broken message look like the end of the stream.
			err = io.ErrUnexpectedEOF
		}
		return newError(codes.Internal, err, "codec: failed to unmarshal the received message: %v", err)
	}
	return nil
}
