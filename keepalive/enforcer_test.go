package keepalive

import (
	"sync"
	"testing"
	"time"
)

// pingSeq feeds OnPing pings at the given offsets from a base time and
// returns the tooMany results.
func pingSeq(e *Enforcer, base time.Time, streams int, offsets ...time.Duration) []bool {
	var got []bool
	for _, off := range offsets {
		got = append(got, e.OnPing(base.Add(off), streams))
	}
	return got
}

func TestEnforcerStrikes(t *testing.T) {
	base := time.Now()
	e := NewEnforcer(EnforcementPolicy{MinTime: time.Minute})
	// First ping: never a strike. Then three pings 1s apart: strikes 1, 2, 3.
	got := pingSeq(e, base, 1, 0, time.Second, 2*time.Second, 3*time.Second)
	want := []bool{false, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("OnPing results %v, want %v", got, want)
		}
	}
}

func TestEnforcerRespectingPolicy(t *testing.T) {
	base := time.Now()
	e := NewEnforcer(EnforcementPolicy{MinTime: time.Minute})
	for i := range 100 {
		if e.OnPing(base.Add(time.Duration(i)*time.Minute), 1) {
			t.Fatalf("ping %d exactly MinTime after the previous one was too many", i)
		}
	}
	// Default MinTime is 5 minutes: pings every 5 minutes are fine, every 4 are not.
	e = NewEnforcer(EnforcementPolicy{})
	if got := pingSeq(e, base, 1, 0, 5*time.Minute, 10*time.Minute, 15*time.Minute); got[3] {
		t.Fatalf("pings every 5m rejected with default policy")
	}
	if got := pingSeq(e, base, 1, 19*time.Minute, 23*time.Minute, 27*time.Minute); !got[2] {
		t.Fatalf("pings every 4m accepted with default policy: %v", got)
	}
}

func TestEnforcerReset(t *testing.T) {
	base := time.Now()
	e := NewEnforcer(EnforcementPolicy{MinTime: time.Minute})
	pingSeq(e, base, 1, 0, time.Second, 2*time.Second) // 2 strikes
	e.Reset()
	// After the reset: a ping that is not a strike, then 2 strikes are
	// forgiven, the third is too many.
	got := pingSeq(e, base, 1, 3*time.Second, 4*time.Second, 5*time.Second, 6*time.Second)
	want := []bool{false, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after Reset: OnPing results %v, want %v", got, want)
		}
	}
}

func TestEnforcerNoStreams(t *testing.T) {
	base := time.Now()
	// Not permitted: pings without streams must be 2h apart.
	e := NewEnforcer(EnforcementPolicy{MinTime: time.Second})
	got := pingSeq(e, base, 0, 0, time.Hour, 2*time.Hour, 3*time.Hour)
	if !got[3] {
		t.Fatalf("hourly pings without streams accepted: %v", got)
	}
	e = NewEnforcer(EnforcementPolicy{MinTime: time.Second})
	got = pingSeq(e, base, 0, 0, 2*time.Hour, 4*time.Hour, 6*time.Hour, 8*time.Hour)
	for i, tooMany := range got {
		if tooMany {
			t.Fatalf("ping %d, 2h after the previous one without streams, was too many", i)
		}
	}
	// The same hourly pings with an active stream follow MinTime.
	e = NewEnforcer(EnforcementPolicy{MinTime: time.Second})
	for i, tooMany := range pingSeq(e, base, 1, 0, time.Hour, 2*time.Hour, 3*time.Hour) {
		if tooMany {
			t.Fatalf("ping %d with a stream was too many", i)
		}
	}
	// PermitWithoutStream: MinTime applies without streams too.
	e = NewEnforcer(EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true})
	for i, tooMany := range pingSeq(e, base, 0, 0, time.Hour, 2*time.Hour, 3*time.Hour) {
		if tooMany {
			t.Fatalf("ping %d permitted without stream was too many", i)
		}
	}
	e = NewEnforcer(EnforcementPolicy{MinTime: time.Minute, PermitWithoutStream: true})
	if got := pingSeq(e, base, 0, 0, 1, 2, 3); !got[3] {
		t.Fatalf("rapid pings without streams accepted with PermitWithoutStream: %v", got)
	}
}

// TestEnforcerResetConcurrent checks with -race that Reset may run on other
// goroutines while the reader calls OnPing.
func TestEnforcerResetConcurrent(t *testing.T) {
	e := NewEnforcer(EnforcementPolicy{MinTime: time.Minute})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				e.Reset()
			}
		})
	}
	base := time.Now()
	for i := range 1000 {
		e.OnPing(base.Add(time.Duration(i)*time.Millisecond), 1)
	}
	wg.Wait()
}
