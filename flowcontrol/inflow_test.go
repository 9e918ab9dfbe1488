package flowcontrol

import (
	"errors"
	"math"
	"sync"
	"testing"
)

// mustData calls OnData and fails the test on error.
func mustData(t *testing.T, f *InFlow, n uint32) {
	t.Helper()
	if err := f.OnData(n); err != nil {
		t.Fatalf("OnData(%d) = %v, want nil", n, err)
	}
}

// mustOverrun calls OnData and fails the test unless it reports a
// flow-control error.
func mustOverrun(t *testing.T, f *InFlow, n uint32) {
	t.Helper()
	err := f.OnData(n)
	if !errors.Is(err, ErrFlowControl) {
		t.Fatalf("OnData(%d) = %v, want error wrapping ErrFlowControl", n, err)
	}
}

func wantInc(t *testing.T, what string, got, want uint32) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %d, want %d", what, got, want)
	}
}

func TestInFlowOverrun(t *testing.T) {
	f := NewInFlow(100)
	mustData(t, f, 60)
	mustData(t, f, 40)
	mustOverrun(t, f, 1)

	// Reads below the update threshold do not reopen the window.
	wantInc(t, "OnRead(10)", f.OnRead(10), 0)
	mustOverrun(t, f, 1)

	// Once a WINDOW_UPDATE is due, exactly that much window is back.
	wantInc(t, "OnRead(20)", f.OnRead(20), 30)
	mustOverrun(t, f, 31)
	mustData(t, f, 30) // the failed OnData recorded nothing
	mustOverrun(t, f, 1)
}

func TestInFlowOverrunLargeFrame(t *testing.T) {
	f := NewInFlow(DefaultWindowSize)
	mustOverrun(t, f, math.MaxUint32)
	mustOverrun(t, f, DefaultWindowSize+1)
	mustData(t, f, DefaultWindowSize)
}

func TestInFlowUpdateThreshold(t *testing.T) {
	f := NewInFlow(1000)
	mustData(t, f, 1000)
	for range 249 {
		wantInc(t, "OnRead(1)", f.OnRead(1), 0)
	}
	wantInc(t, "OnRead(1) reaching limit/4", f.OnRead(1), 250)
	wantInc(t, "OnRead(249)", f.OnRead(249), 0)
	wantInc(t, "OnRead(501)", f.OnRead(501), 750)
	wantInc(t, "OnRead(1) with nothing unread", f.OnRead(1), 0)
}

func TestInFlowPaddingRefund(t *testing.T) {
	f := NewInFlow(100)
	// A 100-byte DATA frame of which 30 bytes are padding (RFC 9113 §6.1):
	// the padding is refunded at once, the message bytes wait for the app.
	mustData(t, f, 100)
	wantInc(t, "padding refund", f.OnRead(30), 30)
	mustData(t, f, 30)
	mustOverrun(t, f, 1)
	wantInc(t, "app reads the message", f.OnRead(70), 70)
	wantInc(t, "app reads the rest", f.OnRead(30), 30)
	mustData(t, f, 100)
}

func TestInFlowRequestMessage(t *testing.T) {
	f := NewInFlow(100)
	wantInc(t, "RequestMessage(50)", f.RequestMessage(50), 0)
	wantInc(t, "RequestMessage(100)", f.RequestMessage(100), 0)

	// A 1000-byte message does not fit a 100-byte window: grant the rest.
	wantInc(t, "RequestMessage(1000)", f.RequestMessage(1000), 900)
	wantInc(t, "RequestMessage(1000) again", f.RequestMessage(1000), 0)
	mustData(t, f, 1000)
	mustOverrun(t, f, 1)

	// Reads use up the extra grant first; the window returns to the limit.
	wantInc(t, "OnRead(900)", f.OnRead(900), 0)
	mustOverrun(t, f, 1)
	wantInc(t, "OnRead(100)", f.OnRead(100), 100)
	mustData(t, f, 100)
	mustOverrun(t, f, 1)
}

func TestInFlowRequestMessagePartlyBuffered(t *testing.T) {
	f := NewInFlow(100)
	mustData(t, f, 100)
	wantInc(t, "OnRead(20)", f.OnRead(20), 0) // 20 owed, 80 buffered
	// The message needs 200 more bytes; the peer's window is 0. The 20 owed
	// bytes go out with the grant of 180.
	wantInc(t, "RequestMessage(200)", f.RequestMessage(200), 200)
	mustData(t, f, 200)
	mustOverrun(t, f, 1)
	// 280 buffered; the first 180 read use up the grant.
	wantInc(t, "OnRead(180)", f.OnRead(180), 0)
	wantInc(t, "OnRead(100)", f.OnRead(100), 100)
	mustData(t, f, 100)
	mustOverrun(t, f, 1)
}

func TestInFlowRequestMessageMaxWindow(t *testing.T) {
	f := NewInFlow(DefaultWindowSize)
	wantInc(t, "RequestMessage(MaxUint32)", f.RequestMessage(math.MaxUint32), MaxWindowSize-DefaultWindowSize)
	wantInc(t, "RequestMessage(MaxUint32) again", f.RequestMessage(math.MaxUint32), 0)
	mustData(t, f, MaxWindowSize)
	mustOverrun(t, f, 1)

	g := NewInFlow(MaxWindowSize)
	wantInc(t, "RequestMessage at max window", g.RequestMessage(math.MaxUint32), 0)
	mustData(t, g, 1000)
	// 1000 bytes buffered: the window may grow back by at most 1000.
	wantInc(t, "RequestMessage after data", g.RequestMessage(math.MaxUint32), 1000)
	mustData(t, g, MaxWindowSize)
	mustOverrun(t, g, 1)

	h := NewInFlow(math.MaxUint32)
	if got := h.Limit(); got != MaxWindowSize {
		t.Fatalf("NewInFlow(MaxUint32).Limit() = %d, want %d", got, MaxWindowSize)
	}
}

func TestInFlowSetLimit(t *testing.T) {
	f := NewInFlow(100)
	wantInc(t, "SetLimit(200)", f.SetLimit(200), 100)
	if got := f.Limit(); got != 200 {
		t.Fatalf("Limit() = %d, want 200", got)
	}
	mustOverrun(t, f, 201)
	mustData(t, f, 200)

	// Lowering is ignored.
	wantInc(t, "SetLimit(50)", f.SetLimit(50), 0)
	wantInc(t, "SetLimit(200)", f.SetLimit(200), 0)
	if got := f.Limit(); got != 200 {
		t.Fatalf("Limit() after lowering = %d, want 200", got)
	}
	// The threshold follows the new limit: 200/4 = 50.
	wantInc(t, "OnRead(49)", f.OnRead(49), 0)
	// Raising returns the owed bytes too.
	wantInc(t, "SetLimit(300)", f.SetLimit(300), 100+49)
	mustData(t, f, 149)
	mustOverrun(t, f, 1)

	wantInc(t, "SetLimit(MaxUint32)", f.SetLimit(math.MaxUint32), MaxWindowSize-300)
	if got := f.Limit(); got != MaxWindowSize {
		t.Fatalf("Limit() = %d, want %d", got, MaxWindowSize)
	}
}

func TestInFlowSetLimitAfterGrant(t *testing.T) {
	f := NewInFlow(100)
	wantInc(t, "RequestMessage(1000)", f.RequestMessage(1000), 900)
	// The grant already gave the peer a 1000-byte window: a raise to 500 is
	// covered by it, a raise to 2000 needs 1000 more.
	wantInc(t, "SetLimit(500)", f.SetLimit(500), 0)
	wantInc(t, "SetLimit(2000)", f.SetLimit(2000), 1000)
	mustData(t, f, 2000)
	mustOverrun(t, f, 1)

	// A grant up to the maximum window, then the largest raise, must not
	// take the window past MaxWindowSize.
	g := NewInFlow(DefaultWindowSize)
	g.RequestMessage(MaxWindowSize)
	wantInc(t, "SetLimit(max) after max grant", g.SetLimit(MaxWindowSize), 0)
	mustData(t, g, MaxWindowSize)
	mustOverrun(t, g, 1)
}

// TestInFlowRaiseLimit: a raise announced with SETTINGS_INITIAL_WINDOW_SIZE
// moves the peer's window by the difference, on top of a grant and of
// bytes still owed; the accounting must follow exactly.
func TestInFlowRaiseLimit(t *testing.T) {
	f := NewInFlow(100)
	wantInc(t, "RequestMessage(1000)", f.RequestMessage(1000), 900)
	// The peer's window is 1000; SETTINGS 100 -> 500 makes it 1400.
	f.RaiseLimit(500)
	if got := f.Limit(); got != 500 {
		t.Fatalf("Limit() = %d, want 500", got)
	}
	mustData(t, f, 1400)
	mustOverrun(t, f, 1)

	// Bytes read but not yet returned stay owed across a raise: with
	// limit 500, reading 1000 uses up the grant (900) and owes 100, below
	// the 125 threshold.
	wantInc(t, "OnRead(1000)", f.OnRead(1000), 0)
	f.RaiseLimit(600) // the peer's window: 0 + 100
	mustData(t, f, 100)
	mustOverrun(t, f, 1)
	wantInc(t, "OnRead(100)", f.OnRead(100), 200)
	mustData(t, f, 200)
	mustOverrun(t, f, 1)

	// Lowering is ignored; the cap is MaxWindowSize.
	f.RaiseLimit(10)
	if got := f.Limit(); got != 600 {
		t.Fatalf("Limit() after lowering = %d, want 600", got)
	}
	f.RaiseLimit(math.MaxUint32)
	if got := f.Limit(); got != MaxWindowSize {
		t.Fatalf("Limit() = %d, want %d", got, MaxWindowSize)
	}
}

// TestInFlowConcurrent runs a peer and an application against one InFlow
// the way the transport does; the peer respects the window it was given,
// so no error may occur, and the race detector checks the locking.
func TestInFlowConcurrent(t *testing.T) {
	const (
		limit = 1000
		chunk = 100
		total = 1 << 20
	)
	f := NewInFlow(limit)
	data := make(chan uint32, limit/chunk+1)
	updates := make(chan uint32, total/(limit/4)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // application
		defer wg.Done()
		for n := range data {
			if inc := f.OnRead(n); inc > 0 {
				updates <- inc
			}
		}
	}()
	window := uint32(limit)
	for sent := 0; sent < total; sent += chunk {
		for window < chunk {
			window += <-updates
		}
		if err := f.OnData(chunk); err != nil {
			t.Errorf("OnData after %d bytes: %v", sent, err)
			break
		}
		window -= chunk
		data <- chunk
	}
	close(data)
	wg.Wait()
}
