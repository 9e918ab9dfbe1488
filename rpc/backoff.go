package rpc

import (
	"time"

	"github.com/h2rpc/h2rpc/internal/backoff"
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
	return backoff.Config(bc).Delay(retries)
}
