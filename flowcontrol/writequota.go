package flowcontrol

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrQuotaClosed is returned by WriteQuota.Get when the quota's done channel
// is closed (the stream or its transport went away) while Get waits.
var ErrQuotaClosed = errors.New("flowcontrol: write quota closed")

// WriteQuota bounds how many bytes of one stream may be queued for the
// writer (loopy) but not yet written to the connection. The application
// goroutine takes quota with Get before queueing data; loopy gives it back
// with Replenish as it writes. Get lets the quota go negative, so a message
// larger than the whole quota is still accepted when some quota is left;
// the next Get then waits until loopy caught up.
//
// The counter is atomic; a one-slot channel wakes a waiting Get, so the
// fast path takes no lock and allocates nothing. The channel is made the
// first time the quota runs out, so a stream that never fills it (every
// unary call) never makes one.
type WriteQuota struct {
	quota atomic.Int32
	done  <-chan struct{}

	mu sync.Mutex
	// wake holds at most one token, sent by Replenish when the quota turns
	// positive. Made on first use, under mu.
	wake chan struct{}
}

// NewWriteQuota returns a quota of size bytes. Get gives up with
// ErrQuotaClosed once done is closed; done may be nil.
func NewWriteQuota(size int32, done <-chan struct{}) *WriteQuota {
	w := new(WriteQuota)
	w.Init(size, done)
	return w
}

// Init sets up w, which may be a field of a larger struct, as
// NewWriteQuota does; w must not be in use.
func (w *WriteQuota) Init(size int32, done <-chan struct{}) {
	w.done = done
	w.wake = nil
	w.quota.Store(size)
}

// wakeChan returns the wake-up channel, making it on first use.
func (w *WriteQuota) wakeChan() chan struct{} {
	w.mu.Lock()
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	c := w.wake
	w.mu.Unlock()
	return c
}

// Get waits while the quota is zero or negative, then takes n bytes of it
// (the quota may go negative). It returns ctx.Err() itself, unwrapped, when
// ctx ends first, and ErrQuotaClosed when the done channel closes first.
// Get does not allocate when quota is available.
func (w *WriteQuota) Get(ctx context.Context, n int32) error {
	if w.quota.Load() > 0 {
		w.quota.Add(-n)
		return nil
	}
	wake := w.wakeChan()
	for {
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			return ErrQuotaClosed
		}
		if w.quota.Load() > 0 {
			if w.quota.Add(-n) > 0 {
				// Quota is left: pass the wake-up on to any other waiter.
				w.signal()
			}
			return nil
		}
	}
}

// Replenish returns n bytes of quota; loopy calls it after writing n bytes
// of the stream's data. It wakes a waiting Get when the quota turns
// positive.
func (w *WriteQuota) Replenish(n int) {
	delta := int32(n)
	after := w.quota.Add(delta)
	if after > 0 && after-delta <= 0 {
		w.signal()
	}
}

// signal leaves a wake-up token unless one is already pending.
func (w *WriteQuota) signal() {
	select {
	case w.wakeChan() <- struct{}{}:
	default:
	}
}
