package flowcontrol

import (
	"sync"
	"testing"
	"time"
)

// fakeClock replaces the estimator's clock for one test.
type fakeClock struct{ t time.Time }

func useFakeClock(t *testing.T) *fakeClock {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	old := now
	now = func() time.Time { return c.t }
	t.Cleanup(func() { now = old })
	return c
}

func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// recorder collects the windows an estimator reports.
type recorder struct{ windows []uint32 }

func (r *recorder) update(w uint32) { r.windows = append(r.windows, w) }

// round runs one BDP ping round: the ping is asked for and written,
// sample bytes arrive in chunks, and the ack comes back after rtt. It
// reports whether Add asked for the ping.
func round(t *testing.T, b *BDPEstimator, c *fakeClock, sample uint32, rtt time.Duration) bool {
	t.Helper()
	if !b.Add(1) {
		return false
	}
	b.Timesnap(BDPPing)
	const chunk = 16 << 10
	for left := sample; left > 0; {
		n := min(left, chunk)
		if b.Add(n) {
			t.Fatal("Add asked for a second ping while one is outstanding")
		}
		left -= n
	}
	c.advance(rtt)
	b.Calculate(BDPPing)
	return true
}

func TestBDPPingData(t *testing.T) {
	immediateRounds(t)
	if BDPPingData() != BDPPing {
		t.Fatalf("BDPPingData() = %v, want BDPPing %v", BDPPingData(), BDPPing)
	}
}

func TestBDPGrowsByDoublingToCap(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)

	var want []uint32
	for w := uint64(DefaultWindowSize) * 2; ; w *= 2 {
		if w >= uint64(MaxBDPWindow) {
			want = append(want, MaxBDPWindow)
			break
		}
		want = append(want, uint32(w))
	}

	// Each round the sender fills the whole window within one round trip.
	window := DefaultWindowSize
	for i := 0; i < 2*len(want); i++ {
		if !round(t, b, c, window, 10*time.Millisecond) {
			break
		}
		if len(r.windows) > 0 {
			window = r.windows[len(r.windows)-1]
		}
	}
	if len(r.windows) != len(want) {
		t.Fatalf("update calls = %v, want %v", r.windows, want)
	}
	for i := range want {
		if r.windows[i] != want[i] {
			t.Fatalf("update calls = %v, want %v", r.windows, want)
		}
	}
	// At the cap there is nothing left to learn: no more pings.
	for range 3 {
		if b.Add(1 << 20) {
			t.Fatal("Add asked for a ping at MaxBDPWindow")
		}
	}
}

func TestBDPNoGrowthWhenSampleSmall(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)
	for i := range 20 {
		// Bandwidth rises each round, but the sender never comes near the
		// window: it is not window-limited.
		if !round(t, b, c, DefaultWindowSize/10+uint32(i)*100, 10*time.Millisecond) {
			t.Fatal("Add did not ask for a ping at the start of a round")
		}
	}
	if len(r.windows) != 0 {
		t.Fatalf("update called with %v, want no calls", r.windows)
	}
}

func TestBDPNoGrowthBelowPeakBandwidth(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)
	round(t, b, c, DefaultWindowSize, 10*time.Millisecond)
	if len(r.windows) != 1 || r.windows[0] != 2*DefaultWindowSize {
		t.Fatalf("update calls = %v, want [%d]", r.windows, 2*DefaultWindowSize)
	}
	// The next sample fills the new window but took ten times as long:
	// bandwidth fell, so the window stays.
	round(t, b, c, 2*DefaultWindowSize, 100*time.Millisecond)
	if len(r.windows) != 1 {
		t.Fatalf("update calls = %v, want no new call", r.windows)
	}
}

func TestBDPAddOncePerRound(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)
	if !b.Add(100) {
		t.Fatal("first Add = false, want true")
	}
	for range 5 {
		if b.Add(100) {
			t.Fatal("Add = true while a ping is outstanding")
		}
	}
	b.Timesnap(BDPPing)
	c.advance(time.Millisecond)

	// An ack of some other ping does not end the round.
	other := [8]byte{1, 2, 3}
	b.Calculate(other)
	if b.Add(100) {
		t.Fatal("Add = true after an unrelated ping ack")
	}
	b.Calculate(BDPPing)
	if !b.Add(100) {
		t.Fatal("Add = false after the BDP ping ack, want a new round")
	}
	if b.Add(100) {
		t.Fatal("Add = true twice in the new round")
	}
	// A second ack for a round that already ended is ignored.
	b.Calculate(BDPPing)
	b.Calculate(BDPPing)
	if !b.Add(1) {
		t.Fatal("Add = false after ack, want a new round")
	}
	if len(r.windows) != 0 {
		t.Fatalf("update called with %v for tiny samples", r.windows)
	}
}

func TestBDPAckWithoutTimesnap(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)
	if !b.Add(1) {
		t.Fatal("Add = false, want true")
	}
	b.Add(DefaultWindowSize)
	b.Timesnap([8]byte{9}) // not a BDP ping: no send time recorded
	c.advance(10 * time.Millisecond)
	b.Calculate(BDPPing)
	if len(r.windows) != 0 {
		t.Fatalf("update called with %v without a measured round trip", r.windows)
	}
	if !b.Add(1) {
		t.Fatal("the round did not end")
	}
}

func TestBDPZeroRTT(t *testing.T) {
	immediateRounds(t)
	c := useFakeClock(t)
	var r recorder
	b := NewBDPEstimator(DefaultWindowSize, r.update)
	// A clock too coarse to see the round trip must not break the
	// arithmetic.
	round(t, b, c, DefaultWindowSize, 0)
	if len(r.windows) != 1 || r.windows[0] != 2*DefaultWindowSize {
		t.Fatalf("update calls = %v, want [%d]", r.windows, 2*DefaultWindowSize)
	}
}

// TestBDPConcurrentTimesnap has a writer goroutine call Timesnap, as loopy
// does, while the reader goroutine calls Add and Calculate; the race
// detector checks the hand-off. It uses the real clock.
func TestBDPConcurrentTimesnap(t *testing.T) {
	immediateRounds(t)
	var (
		mu      sync.Mutex
		windows []uint32
	)
	b := NewBDPEstimator(DefaultWindowSize, func(w uint32) {
		mu.Lock()
		windows = append(windows, w)
		mu.Unlock()
	})
	pings := make(chan [8]byte)
	acks := make(chan [8]byte)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // loopy: writes the ping, the peer acks it
		defer wg.Done()
		for d := range pings {
			b.Timesnap(d)
			acks <- d
		}
	}()
	for range 100 {
		if !b.Add(1) {
			continue
		}
		pings <- BDPPing
		for range 10 {
			b.Add(1 << 10)
		}
		b.Calculate(<-acks)
	}
	close(pings)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, w := range windows {
		if w > MaxBDPWindow {
			t.Fatalf("window %d above MaxBDPWindow", w)
		}
	}
}

// immediateRounds makes a BDP round start with the first DATA byte, as the
// single-round tests here expect.
func immediateRounds(t testing.TB) {
	old := bdpRoundStartBytes
	bdpRoundStartBytes = 0
	t.Cleanup(func() { bdpRoundStartBytes = old })
}

func TestBDPSmallTrafficStartsNoRound(t *testing.T) {
	b := NewBDPEstimator(DefaultWindowSize, func(uint32) {})
	// A stream of small RPCs: no ping until bdpRoundStartBytes arrived.
	var sent int
	for range 1000 {
		if b.Add(10) {
			sent++
		}
	}
	if want := int(1000 * 10 / bdpRoundStartBytes); sent != want {
		t.Fatalf("1000 small frames started %d rounds, want %d", sent, want)
	}
	// A bulk transfer starts a round with its first full frame.
	b2 := NewBDPEstimator(DefaultWindowSize, func(uint32) {})
	if !b2.Add(16 << 10) {
		t.Fatal("a full 16 KiB frame started no round")
	}
}
