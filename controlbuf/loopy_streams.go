package controlbuf

import (
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// register adds a stream the peer opened (server side), in state empty.
func (l *Loopy) register(s *Stream) {
	if s == nil || s.id == 0 || s.state != stateNew {
		l.log.Debug("controlbuf: ignoring RegisterStream", "stream", s)
		return
	}
	s.state = stateEmpty
	l.streams[s.id] = s
	l.maxPeerID = max(l.maxPeerID, s.id)
}

// admit readies s for a header or data item that is not an opening
// HEADERS. It reports false when the item must be dropped.
func (l *Loopy) admit(s *Stream) bool {
	switch s.state {
	case stateClosed:
		return false
	case stateNew:
		if l.cfg.Client || s.id == 0 {
			return false
		}
		// A server stream whose RegisterStream was skipped.
		l.register(s)
	}
	return true
}

// queueData adds a DataFrame to its stream's items.
func (l *Loopy) queueData(d *DataFrame) {
	s := d.Stream
	if s == nil || !l.admit(s) {
		l.log.Debug("controlbuf: dropping data for a closed or unknown stream")
		l.dropData(d, 0)
		return
	}
	s.items.push(d)
	if s.state == stateEmpty {
		l.schedule(s)
	}
}

// queueHeaders writes a HeaderFrame now, queues it behind its stream's
// items, or (client) opens or holds back a new stream.
func (l *Loopy) queueHeaders(h *HeaderFrame) error {
	s := h.Stream
	switch {
	case s == nil:
		h.orphaned(errNotOpened)
		return nil
	case s.state == stateHeld:
		s.items.push(h)
		return nil
	case l.cfg.Client && s.state == stateNew && h.opens():
		if l.draining {
			s.state = stateClosed
			h.orphaned(fmt.Errorf("controlbuf: stream not opened, GOAWAY written: %w", ErrDrained))
			return nil
		}
		s.items.push(h)
		if l.held.len() > 0 || !l.canOpen() {
			// RFC 9113 §5.1.2: the peer refuses streams past its limit;
			// wait for a slot, first come first served.
			s.state = stateHeld
			l.held.push(s)
			return nil
		}
		l.open(s)
		return nil
	case !l.admit(s):
		if s.state == stateClosed {
			h.orphaned(ErrStreamClosed)
		} else {
			h.orphaned(errNotOpened)
		}
		return nil
	case s.state == stateEmpty:
		return l.writeStreamHeaders(s, h)
	default:
		// Behind the stream's data (trailers after the messages).
		s.items.push(h)
		return nil
	}
}

// canOpen reports whether the peer's SETTINGS_MAX_CONCURRENT_STREAMS admits
// one more client stream.
func (l *Loopy) canOpen() bool {
	return uint64(len(l.streams)) < uint64(l.maxConcurrent)
}

// releaseHeld opens held-back client streams, in order, while the peer's
// limit admits them.
func (l *Loopy) releaseHeld() {
	for l.held.len() > 0 {
		s := l.held.peek()
		if s.state != stateHeld { // cleaned up while held
			l.held.pop()
			continue
		}
		if !l.canOpen() {
			return
		}
		l.held.pop()
		l.open(s)
	}
}

// SetFirstStreamID makes id (odd) the id of the first client stream
// instead of 1. It must be called before Run; tests use it to reach the
// end of the stream id space.
func (l *Loopy) SetFirstStreamID(id uint32) {
	if l.cfg.Client && id%2 == 1 && id <= maxStreamID {
		l.nextID = id
	}
}

// open assigns the next client stream id to s and writes its opening
// HEADERS, the head of its items.
func (l *Loopy) open(s *Stream) {
	h := s.items.pop().(*HeaderFrame)
	if l.nextID > maxStreamID {
		l.dropUnopened(s, ErrStreamIDsExhausted, h)
		return
	}
	if err := l.checkHeaderList(h.Fields); err != nil {
		l.dropUnopened(s, err, h)
		return
	}
	id := l.nextID
	if err := h.initStream(id); err != nil {
		l.log.Debug("controlbuf: InitStream failed, dropping stream", "id", id, "err", err)
		l.dropUnopened(s, err, h)
		return
	}
	l.nextID += 2
	s.id = id
	s.state = stateEmpty
	l.streams[id] = s
	l.writeHeaderBlock(id, h.Fields, h.EndStream)
	if inc := s.window.inc.Swap(0); inc > 0 {
		// Refunds made while the stream waited for its id.
		l.w.windowUpdate(id, inc)
	}
	if h.OnWrite != nil {
		h.OnWrite()
	}
	if s.items.len() > 0 {
		l.schedule(s)
	}
}

// dropUnopened discards a client stream that never went on the wire:
// extra (already taken from its items) and its queued headers are
// orphaned with err.
func (l *Loopy) dropUnopened(s *Stream, err error, extra ...*HeaderFrame) {
	for _, h := range extra {
		h.orphaned(err)
	}
	l.removeStream(s, err)
}

// schedule places s, which has items and is on no list, by its first
// item: on the round-robin, or waiting for stream quota when that item is
// data and the window is used up.
func (l *Loopy) schedule(s *Stream) {
	if d, ok := s.items.peek().(*DataFrame); ok &&
		len(d.Prefix)+len(d.Data) > s.sent && l.out.StreamQuota(&s.out) <= 0 {
		s.state = stateWaitingQuota
		return
	}
	s.state = stateActive
	l.active.pushBack(s)
}

// processData gives the first active stream its turn: it writes one frame
// (its next header block or one DATA frame) and goes to the back of the
// round-robin. idle reports that there is nothing to write now: no
// active stream, or the connection window is used up.
func (l *Loopy) processData() (idle bool, err error) {
	s := l.active.head
	if s == nil {
		return true, nil
	}
	if h, ok := s.items.peek().(*HeaderFrame); ok {
		s.items.pop()
		l.active.remove(s)
		s.state = stateEmpty
		if err := l.writeStreamHeaders(s, h); err != nil {
			return false, err
		}
		if s.state == stateEmpty && s.items.len() > 0 {
			l.schedule(s)
		}
		return false, nil
	}

	d := s.items.peek().(*DataFrame)
	total := len(d.Prefix) + len(d.Data)
	if left := total - s.sent; left > 0 {
		conn := l.out.ConnQuota()
		if conn <= 0 {
			// Nothing moves until a connection WINDOW_UPDATE. The stream
			// keeps its place; header items of streams behind it wait
			// too, which keeps the turn order simple.
			return true, nil
		}
		quota := l.out.StreamQuota(&s.out)
		if quota <= 0 {
			l.active.remove(s)
			s.state = stateWaitingQuota
			return false, nil
		}
		n := int(min(int64(left), int64(l.maxFrame), quota, conn))
		l.writeData(s, d, n, d.EndStream && n == left)
	} else if d.EndStream {
		// Nothing left but END_STREAM: an empty DATA frame carries it.
		l.w.data(s.id, true, nil, nil)
		if l.cfg.OnDataWritten != nil {
			l.cfg.OnDataWritten()
		}
	}
	if s.sent == total {
		s.items.pop()
		s.sent = 0
		if d.OnDone != nil {
			// Data may still be referenced by the write batch.
			l.w.afterFlush(d.OnDone)
		}
	}
	l.active.remove(s)
	if s.items.len() == 0 {
		s.state = stateEmpty
	} else {
		l.schedule(s)
	}
	return false, nil
}

// writeData writes the next n bytes of d (Prefix, then Data) as one DATA
// frame and charges them to flow control.
func (l *Loopy) writeData(s *Stream, d *DataFrame, n int, endStream bool) {
	var a, b []byte
	off := s.sent
	if off < len(d.Prefix) {
		a = d.Prefix[off:min(len(d.Prefix), off+n)]
		off = len(d.Prefix)
	}
	off -= len(d.Prefix)
	b = d.Data[off : off+n-len(a)]
	l.w.data(s.id, endStream, a, b)
	if l.cfg.OnDataWritten != nil {
		l.cfg.OnDataWritten()
	}
	if d.Budgeted {
		l.w.wrote(n)
	}
	s.sent += n
	s.out.Consume(n)
	l.out.ConsumeConn(n)
	if s.wq != nil {
		s.wq.Replenish(n)
	}
}

// writeStreamHeaders writes h on the open stream s, then runs h's cleanup.
// A header list the peer would refuse is not sent: the stream is reset
// with INTERNAL_ERROR and removed, and h is orphaned.
func (l *Loopy) writeStreamHeaders(s *Stream, h *HeaderFrame) error {
	if err := l.checkHeaderList(h.Fields); err != nil {
		h.orphaned(err)
		l.w.rstStream(s.id, http2.ErrCodeInternal)
		l.removeStream(s, err)
		if h.Cleanup != nil && h.Cleanup.OnWrite != nil {
			h.Cleanup.OnWrite()
		}
		return l.afterRemoval()
	}
	l.writeHeaderBlock(s.id, h.Fields, h.EndStream)
	if h.OnWrite != nil {
		h.OnWrite()
	}
	if h.Cleanup != nil {
		return l.cleanup(h.Cleanup, s)
	}
	return nil
}

// checkHeaderList refuses a header list larger than the peer's
// SETTINGS_MAX_HEADER_LIST_SIZE, counted as RFC 9113 §6.5.2 says (name +
// value + 32 per field).
func (l *Loopy) checkHeaderList(fields []hpack.HeaderField) error {
	if l.maxHeaderList == 1<<64-1 {
		return nil
	}
	var size uint64
	for _, f := range fields {
		size += uint64(f.Size())
	}
	if size > l.maxHeaderList {
		return fmt.Errorf("controlbuf: header list of %d bytes, peer allows %d: %w",
			size, l.maxHeaderList, ErrHeaderListTooLarge)
	}
	return nil
}

// writeHeaderBlock encodes fields and writes them as HEADERS and, when the
// block exceeds the peer's max frame size, CONTINUATION frames.
func (l *Loopy) writeHeaderBlock(streamID uint32, fields []hpack.HeaderField, endStream bool) {
	l.hbuf.b = l.hbuf.b[:0]
	for _, f := range fields {
		// headerBuf never fails.
		_ = l.enc.WriteField(f)
	}
	l.w.headerBlock(streamID, l.hbuf.b, endStream, l.maxFrame)
	if cap(l.hbuf.b) > headerBufRetain {
		l.hbuf.b = nil
	}
}

// earlyAbort answers a stream loopy never registered with a trailers-only
// response and, if asked, RST_STREAM.
func (l *Loopy) earlyAbort(e *EarlyAbort) {
	if err := l.checkHeaderList(e.Fields); err != nil {
		l.log.Debug("controlbuf: early abort headers too large, resetting", "stream", e.StreamID, "err", err)
		code := http2.ErrCodeInternal
		if e.RST {
			code = e.Code
		}
		l.w.rstStream(e.StreamID, code)
		return
	}
	l.writeHeaderBlock(e.StreamID, e.Fields, true)
	if e.RST {
		l.w.rstStream(e.StreamID, e.Code)
	}
}

// cleanup removes a stream and writes RST_STREAM if asked. s, if non-nil,
// is the stream whose trailers carried c.
func (l *Loopy) cleanup(c *CleanupStream, s *Stream) error {
	if c.Stream != nil {
		s = c.Stream
	}
	if s == nil && c.StreamID != 0 {
		s = l.streams[c.StreamID]
	}
	id := c.StreamID
	if s != nil && s.id != 0 {
		id = s.id
	}
	removed := false
	if s != nil && s.state != stateClosed {
		l.removeStream(s, ErrStreamClosed)
		removed = true
	}
	if c.RST && id != 0 {
		l.w.rstStream(id, c.Code)
	}
	if c.OnWrite != nil {
		c.OnWrite()
	}
	if removed {
		return l.afterRemoval()
	}
	return nil
}

// removeStream takes s out of loopy for good: off the round-robin and the
// stream map, its items dropped and its headers orphaned with err.
func (l *Loopy) removeStream(s *Stream, err error) {
	if s.state == stateActive {
		l.active.remove(s)
	}
	if s.id != 0 && l.streams[s.id] == s {
		delete(l.streams, s.id)
	}
	s.state = stateClosed
	sent := s.sent // of the first item: written already
	s.sent = 0
	s.items.clear(func(it Item) {
		switch it := it.(type) {
		case *HeaderFrame:
			it.orphaned(err)
		case *DataFrame:
			l.dropData(it, sent)
			sent = 0
		}
	})
}

// dropData gives the write budget back the bytes of d, a budgeted item
// that will not be written, past the first sent (which were).
func (l *Loopy) dropData(d *DataFrame, sent int) {
	if d.Budgeted && l.cfg.WriteBudget != nil {
		l.cfg.WriteBudget.Release(int64(len(d.Prefix) + len(d.Data) - sent))
	}
}

// afterRemoval runs after a stream left loopy: a client opens held
// streams, and a draining loopy may be done.
func (l *Loopy) afterRemoval() error {
	if l.cfg.Client {
		l.releaseHeld()
	}
	return l.checkDrained()
}

// incomingWindowUpdate applies the peer's WINDOW_UPDATE. Overflowing the
// connection window is a connection error, a stream window a stream error
// (RFC 9113 §6.9.1). Updates for streams loopy does not know (closed
// already) are ignored.
func (l *Loopy) incomingWindowUpdate(id, inc uint32) error {
	if id == 0 {
		if err := l.out.AddConn(inc); err != nil {
			return l.connError(http2.ErrCodeFlowControl, err)
		}
		return nil
	}
	s := l.streams[id]
	if s == nil {
		return nil
	}
	if err := l.out.AddStream(&s.out, inc); err != nil {
		l.log.Debug("controlbuf: stream flow-control error", "stream", s.id, "err", err)
		l.w.rstStream(s.id, http2.ErrCodeFlowControl)
		l.removeStream(s, err)
		if l.cfg.OnStreamError != nil {
			l.cfg.OnStreamError(s.id, err)
		}
		return l.afterRemoval()
	}
	if s.state == stateWaitingQuota && l.out.StreamQuota(&s.out) > 0 {
		s.state = stateActive
		l.active.pushBack(s)
	}
	return nil
}
