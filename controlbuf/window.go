package controlbuf

import "sync/atomic"

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
