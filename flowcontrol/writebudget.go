package flowcontrol

import (
	"context"
	"sync"
	"sync/atomic"
)

// WriteBudget bounds how many message bytes all the streams of one
// connection together may have queued for the writer (loopy) but not yet
// written to the socket. A stream's WriteQuota stops one stream from
// queueing without limit; the WriteBudget stops many streams from doing so
// together, for example when the peer grants no window, or never reads
// its socket.
//
// A writer takes bytes with Get before queueing a message, and the writer
// goroutine gives them back with Release once they went to the socket, or
// were dropped unsent. Like WriteQuota, Get succeeds while any budget is
// left, even for more bytes than are left (the budget then goes
// negative), so a message larger than the whole budget still passes: the
// bytes outstanding never exceed the size plus one message.
//
// Writers that must wait are served first come first served, so that no
// stream starves the others. While budget is left and no one waits, Get
// and Release are a few atomic operations: no lock, no allocation.
type WriteBudget struct {
	avail atomic.Int64 // budget left; negative when overdrawn
	nwait atomic.Int32 // writers queued in waiters
	// low is the lowest avail has been (0 until the budget is
	// overdrawn); tests read it to check the bound.
	low  atomic.Int64
	size int64
	done <-chan struct{}

	mu      sync.Mutex
	waiters []*budgetWaiter // guarded by mu: in arrival order
}

// budgetWaiter is one Get waiting for budget.
type budgetWaiter struct {
	n       int64
	ch      chan struct{} // closed when granted
	granted bool          // guarded by WriteBudget.mu
}

// NewWriteBudget returns a budget of size bytes. Get gives up with
// ErrQuotaClosed once done is closed; done may be nil.
func NewWriteBudget(size int64, done <-chan struct{}) *WriteBudget {
	b := new(WriteBudget)
	b.Init(size, done)
	return b
}

// Init sets up b, which may be a field of a larger struct, as
// NewWriteBudget does; b must not be in use.
func (b *WriteBudget) Init(size int64, done <-chan struct{}) {
	b.size = size
	b.done = done
	b.waiters = nil
	b.nwait.Store(0)
	b.low.Store(0)
	b.avail.Store(size)
}

// tryTake takes n bytes if any budget is left.
func (b *WriteBudget) tryTake(n int64) bool {
	for {
		v := b.avail.Load()
		if v <= 0 {
			return false
		}
		if b.avail.CompareAndSwap(v, v-n) {
			if v-n < 0 {
				b.noteLow(v - n)
			}
			return true
		}
	}
}

// noteLow records v as the lowest avail seen, if it is.
func (b *WriteBudget) noteLow(v int64) {
	for {
		l := b.low.Load()
		if v >= l || b.low.CompareAndSwap(l, v) {
			return
		}
	}
}

// Get takes n bytes of the budget, waiting, behind earlier waiters, while
// none is left. It returns ctx.Err() itself, unwrapped, when ctx ends
// first, and ErrQuotaClosed when the budget's done channel or stop (the
// stream's end; may be nil) closes first. Nothing is taken when Get fails.
// Get(0) never waits. Get does not allocate when budget is left.
func (b *WriteBudget) Get(ctx context.Context, n int64, stop <-chan struct{}) error {
	if n <= 0 {
		return nil
	}
	if b.nwait.Load() == 0 && b.tryTake(n) {
		return nil
	}
	b.mu.Lock()
	w := &budgetWaiter{n: n, ch: make(chan struct{})}
	b.nwait.Add(1)
	b.waiters = append(b.waiters, w)
	b.dispatchLocked()
	b.mu.Unlock()
	var err error
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-b.done:
		err = ErrQuotaClosed
	case <-stop:
		err = ErrQuotaClosed
	}
	b.mu.Lock()
	if w.granted {
		// Granted while we gave up: give it back.
		b.mu.Unlock()
		b.Release(n)
		return err
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	b.nwait.Add(-1)
	b.mu.Unlock()
	return err
}

// Release gives n bytes back: the writer wrote them to the socket, or
// dropped them unsent. It wakes waiters, in order, while budget is left.
func (b *WriteBudget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.avail.Add(n)
	if b.nwait.Load() > 0 {
		b.mu.Lock()
		b.dispatchLocked()
		b.mu.Unlock()
	}
}

// dispatchLocked grants budget to waiters, in order, while some is left.
func (b *WriteBudget) dispatchLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if !b.tryTake(w.n) {
			return
		}
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		if len(b.waiters) == 0 {
			b.waiters = nil // let the array go once the queue drained
		}
		w.granted = true
		b.nwait.Add(-1)
		close(w.ch)
	}
}

// Outstanding returns the bytes taken and not yet released.
func (b *WriteBudget) Outstanding() int64 { return b.size - b.avail.Load() }

// MaxOutstanding returns the most bytes that were ever outstanding at
// once, when that was more than the size (an overdrawn budget); otherwise
// it returns the size.
func (b *WriteBudget) MaxOutstanding() int64 { return b.size - b.low.Load() }

// Waiting returns how many Get calls wait for budget.
func (b *WriteBudget) Waiting() int { return int(b.nwait.Load()) }

// Size returns the budget's size.
func (b *WriteBudget) Size() int64 { return b.size }
