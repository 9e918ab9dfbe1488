package keepalive

import (
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// Infinity is the duration meaning "never": a disabled ping, an unlimited
// idle time or connection age.
const Infinity = time.Duration(math.MaxInt64)

// Defaults, as in the gRPC keepalive documents and grpc-go.
const (
	// DefaultClientTimeout is how long a client waits for any read after a
	// keepalive PING before it closes the connection.
	DefaultClientTimeout = 20 * time.Second
	// DefaultServerTime is how long a server lets a connection stay silent
	// before it pings the client.
	DefaultServerTime = 2 * time.Hour
	// DefaultServerTimeout is how long a server waits for any read after a
	// keepalive PING before it closes the connection.
	DefaultServerTimeout = 20 * time.Second
	// DefaultEnforcementMinTime is the shortest interval between client
	// pings a server tolerates unless configured otherwise.
	DefaultEnforcementMinTime = 5 * time.Minute
)

// Minimums applied by Effective. They are variables only so that tests of
// other packages can run keepalive with short intervals; production code must
// not change them, and tests must set them before any connection starts (they
// are read without synchronization).
var (
	// MinClientTime is the smallest ClientParameters.Time honoured; smaller
	// values are raised to it with a warning (gRPC A8: 10 seconds). Test hook.
	MinClientTime = 10 * time.Second
	// MinServerTime is the smallest ServerParameters.Time honoured; smaller
	// values are raised to it silently (grpc-go: 1 second). Test hook.
	MinServerTime = time.Second
)

// clientTimeWarned makes the "Time raised to the minimum" warning appear once
// per process rather than once per connection attempt.
var clientTimeWarned atomic.Bool

// ClientParameters configures the keepalive pings of a client connection.
// The zero value disables keepalive.
type ClientParameters struct {
	// Time is how long the connection may go without reading anything
	// before the client pings the server. 0 disables keepalive (Infinity);
	// values below MinClientTime are raised to it.
	Time time.Duration
	// Timeout is how long the client waits for any read after a ping
	// before closing the connection. 0 means DefaultClientTimeout.
	Timeout time.Duration
	// PermitWithoutStream lets the client ping while no stream is open.
	// Servers reject such pings unless their EnforcementPolicy permits them.
	PermitWithoutStream bool
}

// Effective returns p with defaults and minimums applied: Time 0 becomes
// Infinity, a Time below MinClientTime becomes MinClientTime (logged once per
// process at Warn level), Timeout 0 becomes DefaultClientTimeout.
func (p ClientParameters) Effective() ClientParameters {
	switch {
	case p.Time == 0:
		p.Time = Infinity
	case p.Time < MinClientTime:
		if clientTimeWarned.CompareAndSwap(false, true) {
			slog.Warn("keepalive: ClientParameters.Time below the minimum; raised",
				"time", p.Time, "minimum", MinClientTime)
		}
		p.Time = MinClientTime
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultClientTimeout
	}
	return p
}

// Backoff returns p with Time doubled, saturating at Infinity. A client calls
// it when the server answered its pings with GOAWAY ENHANCE_YOUR_CALM and
// debug data TooManyPingsDebugData, so the next connection pings half as
// often. A Time below MinClientTime counts as MinClientTime; a disabled Time
// (0 or Infinity) is returned unchanged.
func (p ClientParameters) Backoff() ClientParameters {
	t := p.Time
	if t <= 0 || t == Infinity {
		return p
	}
	t = max(t, MinClientTime)
	if t > Infinity/2 {
		p.Time = Infinity
	} else {
		p.Time = 2 * t
	}
	return p
}

// ServerParameters configures a server connection's pings and its idle and
// age limits. The zero value gives the defaults: no idle or age limit, a ping
// after DefaultServerTime of silence.
type ServerParameters struct {
	// MaxConnectionIdle: a connection without active streams for this long
	// is drained with a graceful GOAWAY. 0 means Infinity.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge: a connection is drained gracefully once it is this
	// old, with ±10% jitter to spread reconnection storms. 0 means Infinity.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace: after the age drain, streams still open get
	// this long to finish before the connection is closed. 0 means Infinity.
	MaxConnectionAgeGrace time.Duration
	// Time is how long the connection may go without reading anything
	// before the server pings the client. 0 means DefaultServerTime; values
	// below MinServerTime are raised to it.
	Time time.Duration
	// Timeout is how long the server waits for any read after a ping before
	// closing the connection. 0 means DefaultServerTimeout.
	Timeout time.Duration
}

// Effective returns p with defaults and minimums applied (see the field
// documentation).
func (p ServerParameters) Effective() ServerParameters {
	if p.MaxConnectionIdle <= 0 {
		p.MaxConnectionIdle = Infinity
	}
	if p.MaxConnectionAge <= 0 {
		p.MaxConnectionAge = Infinity
	}
	if p.MaxConnectionAgeGrace <= 0 {
		p.MaxConnectionAgeGrace = Infinity
	}
	if p.Time <= 0 {
		p.Time = DefaultServerTime
	}
	p.Time = max(p.Time, MinServerTime)
	if p.Timeout <= 0 {
		p.Timeout = DefaultServerTimeout
	}
	return p
}

// EnforcementPolicy is how strictly a server polices client pings. A client
// breaking it too often is sent GOAWAY ENHANCE_YOUR_CALM
// (TooManyPingsDebugData) and disconnected; see Enforcer.
type EnforcementPolicy struct {
	// MinTime is the shortest interval between client pings that is not a
	// strike. 0 means DefaultEnforcementMinTime.
	MinTime time.Duration
	// PermitWithoutStream allows pings while the connection has no active
	// stream. Without it such pings are held to NoStreamPingInterval.
	PermitWithoutStream bool
}

// Effective returns p with MinTime 0 replaced by DefaultEnforcementMinTime.
func (p EnforcementPolicy) Effective() EnforcementPolicy {
	if p.MinTime <= 0 {
		p.MinTime = DefaultEnforcementMinTime
	}
	return p
}
