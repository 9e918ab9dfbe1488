package keepalive

import (
	"context"
	"fmt"
	"time"
)

// ClientConn is what RunClient needs from a client connection. Its methods
// are called from the keepalive goroutine and must not block for long.
type ClientConn interface {
	// ActiveStreams returns the number of streams open now.
	ActiveStreams() int
	// Ping queues a keepalive PING; it must not block.
	Ping()
	// Close closes the connection because keepalive timed out; err wraps
	// ErrKeepaliveTimeout.
	Close(err error)
}

// RunClient runs the keepalive of one client connection (gRPC A8) until ctx
// is done or it closes the connection. The transport starts it on its own
// goroutine and cancels ctx when the connection closes.
//
//   - When nothing was read for p.Time (counted from the last read, or from
//     the start of RunClient), it queues a PING.
//   - When nothing is read within p.Timeout after that PING, it calls
//     c.Close with an error wrapping ErrKeepaliveTimeout and returns. A ping
//     once sent is always seen through, even if the last stream closes
//     meanwhile: an unanswered ping means a dead connection.
//   - Without active streams and with !p.PermitWithoutStream it does not
//     ping; it goes dormant until act.StreamStarted is called, then pings at
//     once if the connection has been silent for p.Time. A transport that
//     never calls StreamStarted still gets its pings, up to p.Time late.
//
// p is passed through Effective first; a disabled Time (Infinity) makes
// RunClient return at once. act must be the Activity the connection's reader
// calls Read on.
func RunClient(ctx context.Context, p ClientParameters, act *Activity, c ClientConn) {
	p = p.Effective()
	if p.Time == Infinity {
		return
	}
	pg := pinger{time: p.Time, timeout: p.Timeout, act: act, start: nanotime()}
	wake := act.wakeChan()
	defer act.dormant.Store(false)

	timer := time.NewTimer(p.Time)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-wake: // a stream started while dormant (or a stale wake-up)
		}
		now := nanotime()
		action, wait := pg.step(now)
		switch action {
		case pingTimedOut:
			c.Close(fmt.Errorf("%w (client, timeout %v)", ErrKeepaliveTimeout, p.Timeout))
			return
		case pingDue:
			if p.PermitWithoutStream || hasStreams(act, c) {
				c.Ping()
				wait = pg.pinged(now)
			} else {
				// Dormant: StreamStarted wakes us; check again after Time
				// in case the transport does not call it.
				wait = p.Time
			}
		}
		timer.Reset(wait)
	}
}

// hasStreams reports whether c has active streams, leaving act dormant (so
// that StreamStarted sends a wake-up) when it has none. The dormant flag is
// set before the count is read: a stream counted after our read finds the
// flag set and wakes us, so no start is missed.
func hasStreams(act *Activity, c ClientConn) bool {
	act.dormant.Store(true)
	if c.ActiveStreams() > 0 {
		act.dormant.Store(false)
		return true
	}
	return false
}
