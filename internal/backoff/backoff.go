// Package backoff is the exponential backoff of the gRPC document "gRPC
// connection backoff", shared by the channel's reconnects and the DNS
// resolver's retries.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Config is a backoff: the n-th retry (from 0) waits
// BaseDelay * Multiplier^n, capped at MaxDelay, randomised by ±Jitter.
// Its fields match rpc.BackoffConfig's, so that one converts to the other.
type Config struct {
	// BaseDelay is the wait after the first failure.
	BaseDelay time.Duration
	// Multiplier grows the wait after each further failure.
	Multiplier float64
	// Jitter randomises each wait by this fraction either way.
	Jitter float64
	// MaxDelay caps the wait.
	MaxDelay time.Duration
}

// Default is the backoff the gRPC document prescribes: 1 s, ×1.6 per
// failure, ±20 % jitter, at most 120 s.
var Default = Config{
	BaseDelay:  time.Second,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   120 * time.Second,
}

// Delay returns the wait before retry number retries (0 for the first).
func (c Config) Delay(retries int) time.Duration {
	d := float64(c.BaseDelay)
	limit := float64(c.MaxDelay)
	for i := 0; i < retries && d < limit; i++ {
		d *= c.Multiplier
	}
	if retries > 0 {
		d = min(d, limit)
	}
	d *= 1 + c.Jitter*(2*rand.Float64()-1)
	return time.Duration(max(d, 0))
}
