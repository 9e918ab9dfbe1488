package keepalive

import (
	"sync/atomic"
	"time"
)

// MaxPingStrikes is how many policy-breaking pings a server forgives; the
// next one makes Enforcer.OnPing report too many (as in grpc-go).
const MaxPingStrikes = 2

// NoStreamPingInterval is the shortest interval between pings a server
// accepts without a strike while the connection has no active stream and the
// policy does not PermitWithoutStream. A client that respects that policy
// does not ping at all then, so only a ping long after the last one is
// forgiven (grpc-go uses the same two hours). If the policy's MinTime is
// longer, MinTime applies instead.
const NoStreamPingInterval = 2 * time.Hour

// Enforcer applies a server's EnforcementPolicy to the PINGs of one client
// connection by counting strikes. OnPing is for the reader goroutine only;
// Reset may be called from any goroutine.
type Enforcer struct {
	minTime         time.Duration
	noStreamMinTime time.Duration
	permitNoStream  bool

	// reset is set by Reset and consumed by the next OnPing.
	reset atomic.Bool

	// Owned by the reader goroutine.
	strikes  int
	lastPing time.Time // zero before the first ping (or after a reset)
}

// NewEnforcer returns an Enforcer for p (passed through Effective).
func NewEnforcer(p EnforcementPolicy) *Enforcer {
	p = p.Effective()
	return &Enforcer{
		minTime:         p.MinTime,
		noStreamMinTime: max(p.MinTime, NoStreamPingInterval),
		permitNoStream:  p.PermitWithoutStream,
	}
}

// OnPing records a PING (not a PING ack) that arrived at now while
// activeStreams streams were open, and reports whether the client has now
// pinged too often: more than MaxPingStrikes pings came less than MinTime
// after the previous one (or less than NoStreamPingInterval after it while no
// stream was active and the policy does not PermitWithoutStream). The
// transport then sends GOAWAY ENHANCE_YOUR_CALM with TooManyPingsDebugData
// and closes the connection.
//
// The first ping, and the first after a Reset, is never a strike.
func (e *Enforcer) OnPing(now time.Time, activeStreams int) (tooMany bool) {
	prev := e.lastPing
	e.lastPing = now
	if e.reset.Load() && e.reset.Swap(false) {
		e.strikes = 0
		prev = time.Time{}
	}
	if prev.IsZero() {
		return false
	}
	minTime := e.minTime
	if activeStreams < 1 && !e.permitNoStream {
		minTime = e.noStreamMinTime
	}
	if now.Sub(prev) < minTime {
		e.strikes++
	}
	return e.strikes > MaxPingStrikes
}

// Reset forgives past pings: the strikes and the time of the last ping are
// cleared (on the next OnPing). The server transport calls it whenever it
// sends HEADERS or DATA, since a client is expected to ping more while it
// receives data. It is safe from any goroutine and cheap: an atomic load,
// plus a store only when a reset is not already pending.
func (e *Enforcer) Reset() {
	if !e.reset.Load() {
		e.reset.Store(true)
	}
}
