package flowcontrol

import (
	"errors"
	"math"
	"sync"
	"testing"
)

func trData(t *testing.T, f *TrInFlow, n, want uint32) {
	t.Helper()
	got, err := f.OnData(n)
	if err != nil {
		t.Fatalf("OnData(%d) error %v", n, err)
	}
	if got != want {
		t.Fatalf("OnData(%d) = %d, want %d", n, got, want)
	}
}

func trOverrun(t *testing.T, f *TrInFlow, n uint32) {
	t.Helper()
	inc, err := f.OnData(n)
	if !errors.Is(err, ErrFlowControl) {
		t.Fatalf("OnData(%d) error = %v, want error wrapping ErrFlowControl", n, err)
	}
	if inc != 0 {
		t.Fatalf("OnData(%d) increment = %d with an error, want 0", n, inc)
	}
}

func TestTrInFlowThreshold(t *testing.T) {
	f := NewTrInFlow(1000)
	trData(t, f, 249, 0)
	trData(t, f, 1, 250)
	trData(t, f, 100, 0)
	trData(t, f, 900, 1000)
	trData(t, f, 0, 0)
}

func TestTrInFlowOverrun(t *testing.T) {
	f := NewTrInFlow(100)
	trOverrun(t, f, 101)
	trData(t, f, 24, 0) // 24 not yet returned: the window is 76
	trOverrun(t, f, 77)
	trData(t, f, 76, 100) // the failed OnData recorded nothing
	trData(t, f, 100, 100)
	trOverrun(t, f, math.MaxUint32)
}

func TestTrInFlowSetLimit(t *testing.T) {
	f := NewTrInFlow(100)
	trData(t, f, 10, 0)
	if got := f.SetLimit(1000); got != 910 {
		t.Fatalf("SetLimit(1000) = %d, want 910 (raise + owed bytes)", got)
	}
	if got := f.Limit(); got != 1000 {
		t.Fatalf("Limit() = %d, want 1000", got)
	}
	if got := f.SetLimit(10); got != 0 {
		t.Fatalf("SetLimit(10) = %d, want 0", got)
	}
	if got := f.Limit(); got != 1000 {
		t.Fatalf("Limit() after lowering = %d, want 1000", got)
	}
	trData(t, f, 249, 0) // threshold is now 250
	trOverrun(t, f, 752)
	trData(t, f, 1, 250)
	if got := f.SetLimit(math.MaxUint32); got != MaxWindowSize-1000 {
		t.Fatalf("SetLimit(MaxUint32) = %d, want %d", got, MaxWindowSize-1000)
	}
	trData(t, f, MaxWindowSize, MaxWindowSize)

	if got := NewTrInFlow(math.MaxUint32).Limit(); got != MaxWindowSize {
		t.Fatalf("NewTrInFlow(MaxUint32).Limit() = %d, want %d", got, MaxWindowSize)
	}
}

// TestTrInFlowLimitConcurrent reads Limit from another goroutine while the
// reader raises it; the race detector checks it.
func TestTrInFlowLimitConcurrent(t *testing.T) {
	f := NewTrInFlow(DefaultWindowSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := uint32(0)
		for range 1000 {
			l := f.Limit()
			if l < last {
				t.Errorf("Limit went down from %d to %d", last, l)
				return
			}
			last = l
		}
	}()
	for i := range uint32(1000) {
		f.SetLimit(DefaultWindowSize + i)
		if _, err := f.OnData(1); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
