package keepalive

import (
	"sync/atomic"
	"time"
)

// epoch anchors the monotonic clock readings stored by Activity: times are
// kept as nanoseconds since epoch, which time.Since measures with the
// monotonic clock, so wall-clock jumps never fire or delay a keepalive.
var epoch = time.Now()

// nanotime returns monotonic nanoseconds since epoch; always > 0 in practice.
func nanotime() int64 { return int64(time.Since(epoch)) }

// Activity records when a connection last read a frame, and lets the
// transport wake a dormant client keepalive loop. The zero value is ready to
// use; an Activity must not be copied after first use, and serves one
// connection and at most one keepalive loop.
//
// Read is called by the reader goroutine, StreamStarted by whoever opens
// streams; the keepalive loop reads both. All methods are safe for concurrent
// use.
type Activity struct {
	// last is nanotime() of the latest Read, 0 if there was none.
	last atomic.Int64
	// dormant is set while RunClient waits for a stream to start.
	dormant atomic.Bool
	// wake (lazily made, capacity 1) carries StreamStarted's wake-up.
	wake atomic.Pointer[chan struct{}]
}

// Read records that a frame was just read from the peer. The reader
// goroutine calls it after every frame; it costs one monotonic clock reading
// and one atomic store, and never allocates.
func (a *Activity) Read() {
	a.last.Store(max(nanotime(), 1))
}

// LastRead returns when Read was last called, or the zero Time if it never
// was. The result carries a monotonic clock reading, so time.Since on it is
// immune to wall-clock changes.
func (a *Activity) LastRead() time.Time {
	n := a.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(n))
}

// StreamStarted tells a client keepalive loop that a stream was opened. The
// transport calls it after the stream counts in ClientConn.ActiveStreams.
//
// A RunClient loop whose parameters forbid pings without streams goes dormant
// while there are none; StreamStarted wakes it at once so the new stream is
// protected by keepalive without delay. If the transport never calls it, the
// loop still notices the stream, but only up to one keepalive Time later.
//
// It is cheap when the loop is not dormant (one atomic load), so it can be
// called for every new stream.
func (a *Activity) StreamStarted() {
	if !a.dormant.Load() {
		return
	}
	select {
	case a.wakeChan() <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// wakeChan returns the wake-up channel, making it on first use.
func (a *Activity) wakeChan() chan struct{} {
	if c := a.wake.Load(); c != nil {
		return *c
	}
	c := make(chan struct{}, 1)
	if a.wake.CompareAndSwap(nil, &c) {
		return c
	}
	return *a.wake.Load()
}

// lastReadSince returns nanotime() of the latest read, or ref if there was
// none or it happened before ref.
func (a *Activity) lastReadSince(ref int64) int64 {
	return max(a.last.Load(), ref)
}
