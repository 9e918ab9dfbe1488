package controlbuf

import (
	"errors"
	"fmt"
	"sync"
)

// MaxQueuedControl is how many items the peer caused (Item.PeerCaused:
// SETTINGS acks, PING acks, RST_STREAMs answering its frames, its
// WINDOW_UPDATEs, RST_STREAMs for streams the transport forgot and the
// registrations of streams it opened) may wait in
// a Buffer before Throttle blocks the reader goroutine: a peer that floods
// us with frames while not reading our answers must not grow our memory
// without bound. Work our own side queued never counts: if it did, two
// busy peers could both stop reading while their writers wait for the
// other to read, and deadlock. Our window updates coalesce instead (see
// AddConnWindow, AddStreamWindow), and so do the peer's for the windows
// the transport tracks (AddPeerConnWindow, AddPeerStreamWindow).
const MaxQueuedControl = 50

// Buffer is the queue of outbound work between producers and the loopy
// goroutine. Put never blocks; Get blocks (if asked) until an item
// arrives. The queue is a ring over a slice, so putting an item allocates
// nothing once the ring has grown to the connection's working size.
type Buffer struct {
	mu       sync.Mutex
	items    queue[Item] // guarded by mu
	control  int         // queued peer-caused items; guarded by mu
	err      error       // set by Finish; guarded by mu
	sleeping bool        // Get waits on wake; guarded by mu
	// throttle is non-nil while more than MaxQueuedControl control items
	// are queued; it is closed when the count drops back, or by Finish.
	// Guarded by mu.
	throttle chan struct{}

	// wake holds one token: an item arrived for a waiting Get, or Finish
	// was called. Get waits on this one channel only: every channel a
	// goroutine blocks on in a select costs it a runtime record for as
	// long as it waits, and loopy waits here for as long as its
	// connection is idle.
	wake chan struct{}

	// resets is a ring of the ids of the last streams an item put on
	// the Buffer resets (RST_STREAM), next the slot to fill; guarded by
	// mu. See RecentlyReset. It is made at the first reset: most
	// connections never reset a stream, and an idle one should not
	// carry the ring's kilobyte.
	resets *[recentResets]uint32
	next   int

	// connWindow accumulates the connection's receive window refunds
	// until loopy writes them as one WINDOW_UPDATE.
	connWindow pendingWindow
	// peerConnWindow accumulates the peer's WINDOW_UPDATEs for the
	// connection until loopy applies them.
	peerConnWindow peerWindow
}

// NewBuffer returns an empty Buffer.
func NewBuffer() *Buffer {
	b := &Buffer{wake: make(chan struct{}, 1)}
	b.connWindow.due.w = &b.connWindow
	b.peerConnWindow.due.w = &b.peerConnWindow
	return b
}

// Put queues it. After Finish it returns an error wrapping ErrClosed and
// drops it (without calling its callbacks).
func (b *Buffer) Put(it Item) error {
	_, err := b.ExecuteAndPut(nil, it)
	return err
}

// ExecuteAndPut runs f under the Buffer's lock and queues it only if f
// returns true, so that a state change and the item announcing it happen
// as one step with respect to other producers. f must be quick and must
// not call the Buffer. A nil f counts as true. After Finish, f is not run
// and the error wraps ErrClosed.
func (b *Buffer) ExecuteAndPut(f func() bool, it Item) (bool, error) {
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return false, err
	}
	if f != nil && !f() {
		b.mu.Unlock()
		return false, nil
	}
	b.items.push(it)
	if id := resetID(it); id != 0 {
		if b.resets == nil {
			b.resets = new([recentResets]uint32)
		}
		b.resets[b.next] = id
		b.next = (b.next + 1) % recentResets
	}
	if it.PeerCaused() {
		b.control++
		if b.control > MaxQueuedControl && b.throttle == nil {
			b.throttle = make(chan struct{})
		}
	}
	wake := b.sleeping
	b.sleeping = false
	b.mu.Unlock()
	if wake {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return true, nil
}

// recentResets is how many reset stream ids a Buffer remembers: enough
// for the streams reset within a round trip on a busy connection, and a
// fixed amount of memory however many streams a peer makes us reset.
const recentResets = 256

// resetID returns the id of the stream it resets with RST_STREAM, or 0.
// It reads only fields the producer set.
func resetID(it Item) uint32 {
	switch it := it.(type) {
	case *DataFrame:
		return 0 // the common case first
	case *HeaderFrame:
		if c := it.Cleanup; c != nil && c.RST {
			return c.StreamID
		}
	case *CleanupStream:
		if it.RST {
			return it.StreamID
		}
	case *ResetStream:
		return it.StreamID
	case *EarlyAbort:
		if it.RST {
			return it.StreamID
		}
	}
	return 0
}

// RecentlyReset reports whether id is among the last streams (a few
// hundred) an item put on the Buffer reset with RST_STREAM. RFC 9113
// §5.1 and §6.4: frames the peer sent before it saw our RST_STREAM
// arrive after it, and are to be ignored rather than answered.
func (b *Buffer) RecentlyReset(id uint32) bool {
	if id == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.resets == nil {
		return false
	}
	for _, r := range b.resets {
		if r == id {
			return true
		}
	}
	return false
}

// Throttle blocks while more than MaxQueuedControl peer-caused items are
// queued. The reader goroutine calls it before reading each frame, so a
// peer that makes us queue answers faster than we can write them is
// stopped from sending more. It returns at once after Finish.
func (b *Buffer) Throttle() {
	b.mu.Lock()
	ch := b.throttle
	b.mu.Unlock()
	if ch != nil {
		<-ch // closed when the queue shrinks, or by Finish
	}
}

// Get returns the next item. When the Buffer is empty it returns (nil,
// nil) if block is false, and otherwise waits for an item. After Finish it
// returns an error wrapping ErrClosed. Get is for the one loopy goroutine.
func (b *Buffer) Get(block bool) (Item, error) {
	for {
		b.mu.Lock()
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return nil, err
		}
		if b.items.len() > 0 {
			it := b.items.pop()
			if it.PeerCaused() {
				b.control--
				if b.control <= MaxQueuedControl && b.throttle != nil {
					close(b.throttle)
					b.throttle = nil
				}
			}
			b.mu.Unlock()
			return it, nil
		}
		if !block {
			b.mu.Unlock()
			return nil, nil
		}
		b.sleeping = true
		b.mu.Unlock()
		<-b.wake // an item or Finish; the loop looks which
	}
}

// Finish closes the Buffer: Put and Get fail from now on with an error
// wrapping ErrClosed (and err, if non-nil), waiters in Get and Throttle
// wake up, and every queued HeaderFrame's OnOrphaned is called with that
// error. Queued items are dropped. Only the first call has an effect.
func (b *Buffer) Finish(err error) {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return
	}
	switch {
	case err == nil:
		b.err = ErrClosed
	case errors.Is(err, ErrClosed):
		b.err = err
	default:
		b.err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	closeErr := b.err
	var orphans []*HeaderFrame
	b.items.clear(func(it Item) {
		if h, ok := it.(*HeaderFrame); ok && h.orphanable() {
			orphans = append(orphans, h)
		}
	})
	b.items = queue[Item]{}
	b.control = 0
	if b.throttle != nil {
		close(b.throttle)
		b.throttle = nil
	}
	b.mu.Unlock()
	// Wake a waiting Get; the token stays for a later one.
	select {
	case b.wake <- struct{}{}:
	default:
	}
	for _, h := range orphans {
		h.orphaned(closeErr)
	}
}

// Len returns how many peer-caused items (those counted against
// MaxQueuedControl) and how many items in all are queued.
func (b *Buffer) Len() (control, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.control, b.items.len()
}

// closedErr returns the error Finish set, or nil.
func (b *Buffer) closedErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
