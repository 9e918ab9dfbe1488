package transport

import (
	"encoding/binary"
	"errors"
	"sync"

	"golang.org/x/net/http2"
)

// The reader goroutine parses frames itself rather than through
// http2.Framer, which allocates a frame struct for every frame it returns
// (three HEADERS per unary RPC, and every PING, WINDOW_UPDATE, RST_STREAM
// and SETTINGS) and keeps a read buffer as large as the largest frame it
// ever read. Payloads are parsed in place in the connection's read buffer
// when a frame is buffered whole; only a frame split across reads is
// copied, into a small array or a pooled buffer held while it is handled.

const (
	// frameHeaderLen is the size of the fixed frame header (RFC 9113 §4.1).
	frameHeaderLen = 9

	// maxReadFrameSize is the largest frame payload accepted: we announce
	// no SETTINGS_MAX_FRAME_SIZE, so the peer must keep to its initial
	// value (RFC 9113 §4.2, §6.5.2).
	maxReadFrameSize = 16384

	// inlinePayload is the largest split payload copied into an array of
	// the connection rather than a pooled buffer: PING, WINDOW_UPDATE,
	// RST_STREAM and small SETTINGS frames.
	inlinePayload = 16

	// flagPadded and flagEndHeaders have the same bit in every frame type
	// that has them (RFC 9113 §6.1, §6.2, §6.10).
	flagPadded     = http2.FlagHeadersPadded
	flagEndHeaders = http2.FlagHeadersEndHeaders
)

// scratchPool holds buffers for frames split across reads.
var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, maxReadFrameSize)
	return &b
}}

// errSelfDependency marks a header block whose HEADERS frame made its
// stream depend on itself.
var errSelfDependency = errors.New("stream depends on itself")

// frameReader reads frame headers and payloads for the reader goroutine.
type frameReader struct {
	br *connReader
	// contStream is the stream whose header block is open: only
	// CONTINUATION frames of it may come next (RFC 9113 §6.10). 0 when
	// no block is open.
	contStream uint32
	tl         *timeLimits // times open header blocks
	scratch    *[]byte     // from scratchPool while a split frame is handled
	hdr        [frameHeaderLen]byte
	small      [inlinePayload]byte
}

// readFrameHeader reads the next frame header and checks its size and its
// place in the frame sequence. Errors that are not *ConnectionError come
// from the socket.
func (r *frameReader) readFrameHeader() (http2.FrameHeader, error) {
	p, ok := r.br.take(frameHeaderLen)
	if !ok {
		if err := r.br.readFull(r.hdr[:]); err != nil {
			return http2.FrameHeader{}, err
		}
		p = r.hdr[:]
	}
	fh := http2.FrameHeader{
		Length:   uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2]),
		Type:     http2.FrameType(p[3]),
		Flags:    http2.Flags(p[4]),
		StreamID: binary.BigEndian.Uint32(p[5:9]) & (1<<31 - 1), // the reserved bit is ignored
	}
	if fh.Length > maxReadFrameSize {
		return fh, connError(http2.ErrCodeFrameSize, "%v frame of %d bytes is larger than SETTINGS_MAX_FRAME_SIZE (%d)", fh.Type, fh.Length, maxReadFrameSize)
	}
	return fh, r.checkOrder(fh)
}

// checkOrder enforces that a header block is contiguous: after a HEADERS
// or CONTINUATION frame without END_HEADERS only a CONTINUATION frame of
// the same stream may follow, and a CONTINUATION frame only there
// (RFC 9113 §4.3, §6.10).
func (r *frameReader) checkOrder(fh http2.FrameHeader) error {
	if r.contStream != 0 {
		if fh.Type != http2.FrameContinuation || fh.StreamID != r.contStream {
			return connError(http2.ErrCodeProtocol, "%v frame on stream %d inside the header block of stream %d", fh.Type, fh.StreamID, r.contStream)
		}
	} else if fh.Type == http2.FrameContinuation {
		return connError(http2.ErrCodeProtocol, "CONTINUATION frame on stream %d outside a header block", fh.StreamID)
	}
	if fh.Type == http2.FrameHeaders || fh.Type == http2.FrameContinuation {
		wasOpen := r.contStream != 0
		r.contStream = 0
		if !fh.Flags.Has(flagEndHeaders) {
			r.contStream = fh.StreamID
		}
		if open := r.contStream != 0; open != wasOpen && r.tl != nil {
			return r.tl.headerBlock(open) // a block opened or ended
		}
	}
	return nil
}

// payload reads a frame's n-byte payload and returns it in one piece: in
// place in the read buffer when it is buffered whole, otherwise copied. It
// is valid until the next read or release.
func (r *frameReader) payload(n uint32) ([]byte, error) {
	if p, ok := r.br.take(int(n)); ok {
		return p, nil
	}
	var p []byte
	if n <= inlinePayload {
		p = r.small[:n]
	} else {
		r.scratch = scratchPool.Get().(*[]byte)
		p = (*r.scratch)[:n]
	}
	return p, r.br.readFull(p)
}

// release gives back the buffer of a split payload once it was handled.
func (r *frameReader) release() {
	if r.scratch != nil {
		scratchPool.Put(r.scratch)
		r.scratch = nil
	}
}

// The parsers below check one frame's payload as RFC 9113 §6 requires. A
// *ConnectionError ends the connection; an http2.StreamError resets the
// stream.

// parseHeaders returns a HEADERS frame's field block fragment and, if its
// PRIORITY flag is set, its priority fields (RFC 9113 §6.2).
func parseHeaders(fh http2.FrameHeader, p []byte) (frag []byte, prio http2.PriorityParam, err error) {
	if fh.StreamID == 0 {
		return nil, prio, connError(http2.ErrCodeProtocol, "HEADERS frame on stream 0")
	}
	pad := 0
	if fh.Flags.Has(flagPadded) {
		if len(p) < 1 {
			return nil, prio, connError(http2.ErrCodeFrameSize, "padded HEADERS frame on stream %d without a pad length", fh.StreamID)
		}
		pad, p = int(p[0]), p[1:]
	}
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return nil, prio, connError(http2.ErrCodeFrameSize, "HEADERS frame on stream %d too short for its priority fields", fh.StreamID)
		}
		prio = parsePriorityFields(p)
		p = p[5:]
	}
	if pad > len(p) {
		// The field block cannot be found, so it cannot be decoded and
		// the HPACK state would be lost: a connection error.
		return nil, prio, connError(http2.ErrCodeProtocol, "HEADERS padding on stream %d longer than the frame", fh.StreamID)
	}
	return p[:len(p)-pad], prio, nil
}

// parsePriorityFields reads the 5 bytes of a stream dependency and weight
// (RFC 9113 §6.3).
func parsePriorityFields(p []byte) http2.PriorityParam {
	v := binary.BigEndian.Uint32(p[:4])
	return http2.PriorityParam{
		StreamDep: v & (1<<31 - 1),
		Exclusive: v>>31 == 1,
		Weight:    p[4],
	}
}

// parsePriority checks a PRIORITY frame (RFC 9113 §6.3); nothing in it is
// used.
func parsePriority(fh http2.FrameHeader, p []byte) (http2.PriorityParam, error) {
	if fh.StreamID == 0 {
		return http2.PriorityParam{}, connError(http2.ErrCodeProtocol, "PRIORITY frame on stream 0")
	}
	if len(p) != 5 {
		return http2.PriorityParam{}, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeFrameSize, Cause: errors.New("PRIORITY frame payload is not 5 bytes")}
	}
	prio := parsePriorityFields(p)
	if prio.StreamDep == fh.StreamID {
		// RFC 9113 §5.3.1.
		return prio, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeProtocol, Cause: errSelfDependency}
	}
	return prio, nil
}

// parsePing returns a PING frame's opaque data (RFC 9113 §6.7).
func parsePing(fh http2.FrameHeader, p []byte) (data [8]byte, err error) {
	if len(p) != 8 {
		return data, connError(http2.ErrCodeFrameSize, "PING frame payload of %d bytes, not 8", len(p))
	}
	if fh.StreamID != 0 {
		return data, connError(http2.ErrCodeProtocol, "PING frame on stream %d", fh.StreamID)
	}
	copy(data[:], p)
	return data, nil
}

// parseWindowUpdate returns a WINDOW_UPDATE frame's increment
// (RFC 9113 §6.9).
func parseWindowUpdate(fh http2.FrameHeader, p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, connError(http2.ErrCodeFrameSize, "WINDOW_UPDATE frame payload of %d bytes, not 4", len(p))
	}
	inc := binary.BigEndian.Uint32(p) & (1<<31 - 1)
	if inc == 0 {
		if fh.StreamID == 0 {
			return 0, connError(http2.ErrCodeProtocol, "WINDOW_UPDATE with increment 0 on the connection")
		}
		return 0, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeProtocol, Cause: errors.New("WINDOW_UPDATE with increment 0")}
	}
	return inc, nil
}

// parseRSTStream returns a RST_STREAM frame's error code (RFC 9113 §6.4).
func parseRSTStream(fh http2.FrameHeader, p []byte) (http2.ErrCode, error) {
	if len(p) != 4 {
		return 0, connError(http2.ErrCodeFrameSize, "RST_STREAM frame payload of %d bytes, not 4", len(p))
	}
	if fh.StreamID == 0 {
		return 0, connError(http2.ErrCodeProtocol, "RST_STREAM frame on stream 0")
	}
	return http2.ErrCode(binary.BigEndian.Uint32(p)), nil
}

// parseSettings appends a SETTINGS frame's parameters to ss, checking each
// value (RFC 9113 §6.5, §6.5.2); an ack appends nothing.
func parseSettings(fh http2.FrameHeader, p []byte, ss []http2.Setting) ([]http2.Setting, error) {
	if fh.Flags.Has(http2.FlagSettingsAck) && len(p) > 0 {
		return ss, connError(http2.ErrCodeFrameSize, "SETTINGS ack with a %d-byte payload", len(p))
	}
	if fh.StreamID != 0 {
		return ss, connError(http2.ErrCodeProtocol, "SETTINGS frame on stream %d", fh.StreamID)
	}
	if len(p)%6 != 0 {
		return ss, connError(http2.ErrCodeFrameSize, "SETTINGS frame payload of %d bytes, not a multiple of 6", len(p))
	}
	for ; len(p) > 0; p = p[6:] {
		s := http2.Setting{ID: http2.SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])}
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			errors.As(err, &ce)
			return ss, connError(http2.ErrCode(ce), "invalid setting %v", s)
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// goAwayFrame is a parsed GOAWAY frame (RFC 9113 §6.8). DebugData is
// valid only while the frame is handled.
type goAwayFrame struct {
	LastStreamID uint32
	ErrCode      http2.ErrCode
	DebugData    []byte
}

// parseGoAway parses a GOAWAY frame.
func parseGoAway(fh http2.FrameHeader, p []byte) (goAwayFrame, error) {
	if fh.StreamID != 0 {
		return goAwayFrame{}, connError(http2.ErrCodeProtocol, "GOAWAY frame on stream %d", fh.StreamID)
	}
	if len(p) < 8 {
		return goAwayFrame{}, connError(http2.ErrCodeFrameSize, "GOAWAY frame payload of %d bytes, less than 8", len(p))
	}
	return goAwayFrame{
		LastStreamID: binary.BigEndian.Uint32(p) & (1<<31 - 1),
		ErrCode:      http2.ErrCode(binary.BigEndian.Uint32(p[4:])),
		DebugData:    p[8:],
	}, nil
}
