package keepalive

import (
	"testing"
	"time"
)

// These tests drive the ping schedule with a synthetic clock, so that the
// rules (measure from the last read, any read answers a ping) are checked
// without depending on goroutine scheduling.

const ms = int64(time.Millisecond)

func TestPingerMeasuresFromLastRead(t *testing.T) {
	var act Activity
	p := pinger{time: 100 * time.Millisecond, timeout: 20 * time.Millisecond, act: &act, start: 1000 * ms}

	// Nothing read yet: the start stands in for the last read.
	if a, w := p.step(1050 * ms); a != pingWait || w != 50*time.Millisecond {
		t.Fatalf("step before Time = %v, %v; want wait 50ms", a, w)
	}
	// Reads keep postponing the ping: it is due Time after the last one.
	act.last.Store(1080 * ms)
	if a, w := p.step(1100 * ms); a != pingWait || w != 80*time.Millisecond {
		t.Fatalf("step after a read = %v, %v; want wait 80ms", a, w)
	}
	act.last.Store(1170 * ms)
	if a, w := p.step(1180 * ms); a != pingWait || w != 90*time.Millisecond {
		t.Fatalf("step after another read = %v, %v; want wait 90ms", a, w)
	}
	if a, _ := p.step(1270 * ms); a != pingDue {
		t.Fatalf("step Time after the last read = %v, want pingDue", a)
	}
	// A read older than the start does not count.
	var old Activity
	old.last.Store(500 * ms)
	q := pinger{time: 100 * time.Millisecond, timeout: time.Second, act: &old, start: 1000 * ms}
	if a, w := q.step(1000 * ms); a != pingWait || w != 100*time.Millisecond {
		t.Fatalf("step with a read before start = %v, %v; want wait 100ms", a, w)
	}
}

func TestPingerTimeout(t *testing.T) {
	var act Activity
	p := pinger{time: 100 * time.Millisecond, timeout: 20 * time.Millisecond, act: &act, start: 1000 * ms}
	if a, _ := p.step(1100 * ms); a != pingDue {
		t.Fatalf("step = %v, want pingDue", a)
	}
	if w := p.pinged(1100 * ms); w != 20*time.Millisecond {
		t.Fatalf("pinged wait = %v, want the timeout 20ms", w)
	}
	if a, w := p.step(1110 * ms); a != pingWait || w != 10*time.Millisecond {
		t.Fatalf("step during timeout = %v, %v; want wait 10ms", a, w)
	}
	if a, _ := p.step(1120 * ms); a != pingTimedOut {
		t.Fatalf("step at timeout = %v, want pingTimedOut", a)
	}
}

func TestPingerAnyReadAnswers(t *testing.T) {
	var act Activity
	p := pinger{time: 100 * time.Millisecond, timeout: 20 * time.Millisecond, act: &act, start: 1000 * ms}
	p.step(1100 * ms)
	p.pinged(1100 * ms)
	act.last.Store(1105 * ms) // the ack, or any other frame
	if a, w := p.step(1120 * ms); a != pingWait || w != 85*time.Millisecond {
		t.Fatalf("step after an answer = %v, %v; want wait 85ms", a, w)
	}
	if p.outstanding {
		t.Fatal("ping still outstanding after a read")
	}
	if a, _ := p.step(1205 * ms); a != pingDue {
		t.Fatalf("step Time after the answer = %v, want pingDue", a)
	}
}

func TestPingerTimeoutLongerThanTime(t *testing.T) {
	var act Activity
	p := pinger{time: 10 * time.Millisecond, timeout: time.Hour, act: &act, start: 0}
	p.step(10 * ms)
	if w := p.pinged(10 * ms); w != 10*time.Millisecond {
		t.Fatalf("pinged wait = %v, want Time 10ms", w)
	}
	// Unanswered at the next ping time: keep waiting for the timeout.
	if a, w := p.step(20 * ms); a != pingWait || w != time.Hour-10*time.Millisecond {
		t.Fatalf("step = %v, %v; want wait for the rest of the timeout", a, w)
	}
	act.last.Store(25 * ms)
	if a, w := p.step(30 * ms); a != pingWait || w != 5*time.Millisecond {
		t.Fatalf("step after a late answer = %v, %v; want wait 5ms", a, w)
	}
}

func TestPingerInfinity(t *testing.T) {
	var act Activity
	p := pinger{time: Infinity, timeout: Infinity, act: &act, start: 1}
	if a, w := p.step(1 << 62); a != pingWait || w <= 0 {
		t.Fatalf("step with Time Infinity = %v, %v; want a positive wait", a, w)
	}
	q := pinger{time: time.Millisecond, timeout: Infinity, act: &act, start: 1}
	q.step(2 * ms)
	q.pinged(2 * ms)
	if a, w := q.step(1 << 62); a != pingWait || w <= 0 {
		t.Fatalf("step with Timeout Infinity = %v, %v; want a positive wait", a, w)
	}
}
