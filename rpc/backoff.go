package rpc

import (
	"math/rand/v2"
	"time"
)

// BackoffConfig is the reconnect backoff of the gRPC document "gRPC
// connection backoff": the n-th retry waits BaseDelay * Multiplier^n,
// capped at MaxDelay, randomised by ±Jitter.
type BackoffConfig struct {
	// BaseDelay is the wait after the first failure.
	BaseDelay time.Duration
	// Multiplier grows the wait after each further failure.
	Multiplier float64
	// Jitter randomises each wait by this fraction either way.
	Jitter float64
	// MaxDelay caps the wait.
	MaxDelay time.Duration
}

// DefaultBackoffConfig is the backoff the gRPC document prescribes.
var DefaultBackoffConfig = BackoffConfig{
	BaseDelay:  time.Second,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   120 * time.Second,
}

// DefaultMinConnectTimeout is the least time one connection attempt gets.
const DefaultMinConnectTimeout = 20 * time.Second

// delay returns the wait before retry number retries (0 for the first).
func (bc BackoffConfig) delay(retries int) time.Duration {
	if retries == 0 {
		return bc.jitter(bc.BaseDelay)
	}
	d := float64(bc.BaseDelay)
	limit := float64(bc.MaxDelay)
	for i := 0; i < retries && d < limit; i++ {
		d *= bc.Multiplier
	}
	d = min(d, limit)
	return bc.jitter(time.Duration(d))
}

func (bc BackoffConfig) jitter(d time.Duration) time.Duration {
	f := float64(d) * (1 + bc.Jitter*(rand.Float64()*2-1))
	if f < 0 {
		return 0
	}
	return time.Duration(f)
}
