package dns

import (
	"math/rand/v2"
	"time"
)

// backoff is the gRPC connection backoff: the n-th retry (from 0)
// waits base * multiplier^n, capped at max, randomised by ±jitter.
type backoff struct {
	base       time.Duration
	multiplier float64
	jitter     float64
	max        time.Duration
}

// defaultBackoff is the backoff of the gRPC connection backoff document.
var defaultBackoff = backoff{base: time.Second, multiplier: 1.6, jitter: 0.2, max: 120 * time.Second}

// delay returns the wait before retry n (0 for the first).
func (b backoff) delay(n int) time.Duration {
	d := float64(b.base)
	for i := 0; i < n && d < float64(b.max); i++ {
		d *= b.multiplier
	}
	d = min(d, float64(b.max))
	d *= 1 + b.jitter*(2*rand.Float64()-1)
	return time.Duration(max(d, 0))
}
