package backoff

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDelayGrowsToItsCap(t *testing.T) {
	c := Default
	prevLow := time.Duration(0)
	for n := range 20 {
		want := float64(c.BaseDelay)
		for range n {
			want *= c.Multiplier
		}
		want = min(want, float64(c.MaxDelay))
		low, high := time.Duration(want*(1-c.Jitter)), time.Duration(want*(1+c.Jitter))
		for range 20 {
			if d := c.Delay(n); d < low || d > high {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, d, low, high)
			}
		}
		if low < prevLow {
			t.Fatalf("Delay(%d) can be shorter than Delay(%d)", n, n-1)
		}
		prevLow = low
	}
}

func TestDelayWithoutJitterIsExact(t *testing.T) {
	c := Config{BaseDelay: 10 * time.Millisecond, Multiplier: 2, MaxDelay: 50 * time.Millisecond}
	for n, want := range []time.Duration{10, 20, 40, 50, 50} {
		if d := c.Delay(n); d != want*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", n, d, want*time.Millisecond)
		}
	}
}
