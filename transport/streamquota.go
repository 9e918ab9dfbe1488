package transport

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// streamQuota is the client's count of stream slots under the server's
// SETTINGS_MAX_CONCURRENT_STREAMS. NewStream takes a slot before it
// builds or queues anything, so calls waiting for a slot hold no encoded
// request and a cancelled one leaves without a trace; the slot is given
// back when the stream ends. Taking and giving back a slot is one or two
// atomic operations while slots are free; the lock and the waiter list
// serve only calls that must wait, first come first served.
//
// The zero value is ready: its counts are kept relative to quotaBase, the
// limit until the peer says (unlimited, as loopy assumes).
type streamQuota struct {
	// avail+quotaBase is the number of free slots (negative after the
	// limit shrank below the streams open).
	avail atomic.Int64
	nwait atomic.Int32 // queued waiters

	mu      sync.Mutex
	limit   int64         // guarded by mu: the peer's limit - quotaBase
	waiters []*slotWaiter // guarded by mu: in arrival order
}

// quotaBase is the stream limit before the peer's SETTINGS.
const quotaBase = math.MaxUint32

// slotWaiter is one NewStream waiting for a slot.
type slotWaiter struct {
	ch      chan struct{} // closed when granted
	granted bool          // guarded by streamQuota.mu
}

// tryAcquire takes a free slot if there is one.
func (q *streamQuota) tryAcquire() bool {
	for {
		n := q.avail.Load()
		if n+quotaBase <= 0 {
			return false
		}
		if q.avail.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// acquire takes a slot, waiting behind earlier waiters while none is
// free. It returns ctx's error if ctx is done first, or errQuotaConnDone
// once done (the connection's closed event) fires; its channel is made
// only for a call that waits.
func (q *streamQuota) acquire(ctx context.Context, done *event) error {
	if q.nwait.Load() == 0 && q.tryAcquire() {
		return nil
	}
	q.mu.Lock()
	w := &slotWaiter{ch: make(chan struct{})}
	q.nwait.Add(1)
	q.waiters = append(q.waiters, w)
	q.dispatchLocked()
	q.mu.Unlock()
	var err error
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-done.wait():
		err = errQuotaConnDone
	}
	q.mu.Lock()
	if w.granted {
		q.mu.Unlock()
		q.release()
		return err
	}
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	q.nwait.Add(-1)
	q.mu.Unlock()
	return err
}

// release gives a slot back.
func (q *streamQuota) release() {
	q.avail.Add(1)
	if q.nwait.Load() > 0 {
		q.mu.Lock()
		q.dispatchLocked()
		q.mu.Unlock()
	}
}

// setLimit applies the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
func (q *streamQuota) setLimit(n uint32) {
	q.mu.Lock()
	l := int64(n) - quotaBase
	q.avail.Add(l - q.limit)
	q.limit = l
	q.dispatchLocked()
	q.mu.Unlock()
}

// dispatchLocked hands free slots to waiters, in order.
func (q *streamQuota) dispatchLocked() {
	for len(q.waiters) > 0 && q.tryAcquire() {
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		w.granted = true
		q.nwait.Add(-1)
		close(w.ch)
	}
}

// settingApplied runs on loopy after it applied one of the peer's
// settings: a client's stream quota follows MAX_CONCURRENT_STREAMS.
func (c *http2Conn) settingApplied(s http2.Setting) {
	if s.ID != http2.SettingMaxConcurrentStreams {
		return
	}
	if t, ok := c.side.(*http2Client); ok {
		t.quota.setLimit(s.Val)
	}
}

// errQuotaConnDone: the connection closed while NewStream waited for a
// stream slot.
var errQuotaConnDone = errors.New("transport: the connection closed while waiting for a stream slot")
