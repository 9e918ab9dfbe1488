package controlbuf

import (
	"sync/atomic"

	"github.com/h2rpc/h2rpc/flowcontrol"
)

// pendingWindow accumulates the refunds of one receive window (a
// stream's or the connection's) until loopy writes them as one
// WINDOW_UPDATE, so at most one update per window waits in the Buffer
// however often the application reads. Producers add to inc and queue
// due when inc leaves zero; loopy takes inc (swapping in zero) when it
// handles due. So due is queued at most once at a time, and no refund is
// lost: one added after loopy took inc queues due again.
type pendingWindow struct {
	inc atomic.Uint32
	due windowUpdateDue
}

// windowUpdateDue tells loopy that w has an increment to write; s is the
// stream, nil for the connection.
type windowUpdateDue struct {
	w *pendingWindow
	s *Stream
}

// add adds inc to w and queues w's item if none is queued.
func (b *Buffer) addWindow(w *pendingWindow, inc uint32) error {
	if inc == 0 || w.inc.Add(inc) != inc {
		// Nothing to do, or an item is already queued (or being handled
		// by loopy, which will see the sum).
		return nil
	}
	return b.Put(&w.due)
}

// AddConnWindow refunds inc bytes of the connection's receive window: it
// is announced with a WINDOW_UPDATE on stream 0 that coalesces with the
// refunds not yet written. It allocates nothing and never throttles the
// reader. After Finish it returns an error wrapping ErrClosed.
func (b *Buffer) AddConnWindow(inc uint32) error {
	return b.addWindow(&b.connWindow, inc)
}

// AddStreamWindow refunds inc bytes of s's receive window: loopy writes
// one WINDOW_UPDATE for all refunds of s not yet written, once s is open
// (a client stream still waiting for its id gets it right after its
// HEADERS), and drops them once s was cleaned up. It allocates nothing
// and never throttles the reader. After Finish it returns an error
// wrapping ErrClosed.
func (b *Buffer) AddStreamWindow(s *Stream, inc uint32) error {
	return b.addWindow(&s.window, inc)
}

// windowUpdate writes what d's window accumulated, if its stream (if any)
// is open.
func (l *Loopy) windowUpdate(d *windowUpdateDue) {
	var id uint32
	if s := d.s; s != nil {
		switch s.state {
		case stateNew, stateHeld:
			// Not on the wire yet: open writes it after the HEADERS.
			return
		case stateClosed:
			d.w.inc.Swap(0)
			return
		}
		id = s.id
	}
	if inc := d.w.inc.Swap(0); inc > 0 {
		l.w.windowUpdate(id, inc)
	}
}

// peerWindow accumulates the increments of the WINDOW_UPDATE frames the
// peer sent for one of our send windows (a stream's or the connection's)
// until loopy applies them, so that at most one item per window waits in
// the Buffer however many updates the peer sends while loopy is busy (or
// blocked writing to a peer that does not read). The reader goroutine,
// the only producer, adds to inc and queues due when inc leaves zero;
// loopy takes inc (swapping in zero) when it handles due.
type peerWindow struct {
	inc atomic.Uint64
	due peerWindowDue
}

// peerWindowDue tells loopy that w holds increments to apply; s is the
// stream, nil for the connection.
type peerWindowDue struct {
	w *peerWindow
	s *Stream
}

// peerWindowSaturated is a sum of increments past which more are not
// added: applying it overflows any window already (RFC 9113 §6.9.1), and
// inc cannot wrap around however long loopy is kept from handling it.
const peerWindowSaturated = 1 << 62

// addPeerWindow adds inc to w and queues w's item if none is queued.
func (b *Buffer) addPeerWindow(w *peerWindow, inc uint32) error {
	if inc == 0 || w.inc.Load() >= peerWindowSaturated {
		return nil
	}
	if w.inc.Add(uint64(inc)) != uint64(inc) {
		// An item is already queued (or being handled by loopy, which
		// will see the sum).
		return nil
	}
	return b.Put(&w.due)
}

// AddPeerConnWindow applies, in loopy, a WINDOW_UPDATE the peer sent for
// the connection (stream 0), coalesced with the ones loopy has not
// applied yet. It allocates nothing, and never throttles the reader: the
// peer cannot make it queue more than one item. Only the reader goroutine
// may call it. After Finish it returns an error wrapping ErrClosed.
func (b *Buffer) AddPeerConnWindow(inc uint32) error {
	return b.addPeerWindow(&b.peerConnWindow, inc)
}

// AddPeerStreamWindow applies, in loopy, a WINDOW_UPDATE the peer sent for
// s, coalesced with the ones for s loopy has not applied yet. s must be
// known to loopy already (a server stream's RegisterStream put before, a
// client stream opened: it has its id); the increments are dropped once s
// was cleaned up. For a stream the transport no longer tracks, put an
// IncomingWindowUpdate. It allocates nothing, and never throttles the
// reader. Only the reader goroutine may call it. After Finish it returns
// an error wrapping ErrClosed.
//
// Coalesced updates are applied at the place of the first: one the peer
// sent after a SETTINGS_INITIAL_WINDOW_SIZE may be applied before that
// setting. The window they reach is the same; only when a lowered setting
// would have kept a stream's window within 2^31-1 where the updates
// applied first push it past is the stream reset with FLOW_CONTROL_ERROR,
// a case only a peer working against its own streams can make.
func (b *Buffer) AddPeerStreamWindow(s *Stream, inc uint32) error {
	return b.addPeerWindow(&s.peerWindow, inc)
}

// peerWindowUpdate applies what d's window accumulated.
func (l *Loopy) peerWindowUpdate(d *peerWindowDue) error {
	inc := d.w.inc.Swap(0)
	var id uint32
	if s := d.s; s != nil {
		if s.id == 0 || s.state == stateClosed {
			return nil // not open (cannot be: the peer saw no HEADERS), or gone
		}
		id = s.id
	}
	// In steps a WINDOW_UPDATE can carry: the window only grows from one
	// to the next, so it passes 2^31-1 at a step exactly when it would
	// have at one of the peer's frames. A stream reset at a step takes no
	// more.
	for inc > 0 {
		step := min(inc, uint64(flowcontrol.MaxWindowSize))
		inc -= step
		if err := l.incomingWindowUpdate(id, uint32(step)); err != nil {
			return err
		}
		if id != 0 && l.streams[id] == nil {
			return nil
		}
	}
	return nil
}
