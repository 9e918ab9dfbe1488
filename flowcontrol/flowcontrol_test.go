package flowcontrol

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Test timeouts: long for what must happen, short for what must not.
const (
	longTimeout  = 10 * time.Second
	shortTimeout = 50 * time.Millisecond
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
