package keepalive

import "time"

// pinger is the ping schedule shared by the client and server loops: ping
// after Time without reads, give up after Timeout without reads following the
// ping. All times are nanotime() values; durations are computed as
// differences so that an Infinity Time or Timeout never overflows.
//
// Any read counts as an answer to the ping, not only its ack: a peer that is
// sending frames is alive, and this is what gRPC's keepalive document asks.
type pinger struct {
	time, timeout time.Duration
	act           *Activity
	// start is when the loop began; it stands in for the last read until
	// the first one happens.
	start int64
	// outstanding is set while a ping waits for a read; sentAt is when it
	// was queued.
	outstanding bool
	sentAt      int64
}

// pingAction is what pinger.step asks its caller to do.
type pingAction int

const (
	// pingWait: nothing to do; evaluate again after the returned duration.
	pingWait pingAction = iota
	// pingDue: the connection was silent for Time; the caller pings (and
	// calls pinged) or decides not to.
	pingDue
	// pingTimedOut: a ping went Timeout without any read after it.
	pingTimedOut
)

// step evaluates the schedule at now.
func (p *pinger) step(now int64) (pingAction, time.Duration) {
	last := p.act.lastReadSince(p.start)
	if p.outstanding {
		if last >= p.sentAt {
			// Something arrived after the ping was queued: the peer is alive.
			p.outstanding = false
		} else {
			waited := time.Duration(now - p.sentAt)
			if waited >= p.timeout {
				return pingTimedOut, 0
			}
			wait := p.timeout - waited
			if waited < p.time {
				// Wake at the next ping time too, so that a prompt answer
				// keeps the ping interval at Time even when Timeout is longer.
				wait = min(wait, p.time-waited)
			}
			return pingWait, wait
		}
	}
	idle := time.Duration(now - last)
	if idle < p.time {
		return pingWait, p.time - idle
	}
	return pingDue, 0
}

// pinged records that a ping was queued at now and returns when to evaluate
// again.
func (p *pinger) pinged(now int64) time.Duration {
	p.outstanding = true
	p.sentAt = now
	return min(p.time, p.timeout)
}
