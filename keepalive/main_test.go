package keepalive

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Two test timeouts: long for what must happen (never hit unless broken),
// short for watching that something does not happen.
const (
	longTimeout  = 10 * time.Second
	shortTimeout = 300 * time.Millisecond
)

// setMinimums lowers the minimum keepalive times for one test.
func setMinimums(t *testing.T, client, server time.Duration) {
	t.Helper()
	oldC, oldS := MinClientTime, MinServerTime
	MinClientTime, MinServerTime = client, server
	t.Cleanup(func() { MinClientTime, MinServerTime = oldC, oldS })
}
