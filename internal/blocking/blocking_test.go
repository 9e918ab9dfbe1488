package blocking

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCountStopsAtFailure(t *testing.T) {
	i := 0
	step := func() error {
		i++
		if i > 3 {
			return errors.New("full")
		}
		return nil
	}
	if n := Count(10, time.Minute, step, func() { t.Error("unblock called") }); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	if n := Count(2, time.Minute, func() error { return nil }, nil); n != 2 {
		t.Fatalf("Count with limit 2 = %d", n)
	}
}

func TestCountUnblocks(t *testing.T) {
	release := make(chan struct{})
	i := 0
	step := func() error {
		i++
		if i == 3 {
			<-release // blocks until unblock
			return errors.New("released")
		}
		return nil
	}
	if n := Count(10, 10*time.Millisecond, step, func() { close(release) }); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
}
