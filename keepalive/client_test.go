package keepalive

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClientConn records what RunClient does. onPing, if set, runs inside
// Ping (to answer it).
type fakeClientConn struct {
	streams atomic.Int32
	pings   atomic.Int32
	onPing  func()
	pinged  chan struct{} // gets a token per ping (never blocks)
	closed  chan error    // gets Close's error
}

func newFakeClientConn() *fakeClientConn {
	return &fakeClientConn{pinged: make(chan struct{}, 1000), closed: make(chan error, 1)}
}

func (c *fakeClientConn) ActiveStreams() int { return int(c.streams.Load()) }

func (c *fakeClientConn) Ping() {
	c.pings.Add(1)
	if c.onPing != nil {
		c.onPing()
	}
	select {
	case c.pinged <- struct{}{}:
	default:
	}
}

func (c *fakeClientConn) Close(err error) { c.closed <- err }

// runLoop runs f on a goroutine; the returned stop cancels it and waits for
// it to return (failing the test if it does not).
func runLoop(t *testing.T, f func(ctx context.Context)) (stop func(), done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := make(chan struct{})
	go func() {
		defer close(d)
		f(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-d:
			case <-time.After(longTimeout):
				t.Errorf("loop did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop, d
}

func TestClientSilentPeerCloses(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ClientParameters{Time: 30 * time.Millisecond, Timeout: 30 * time.Millisecond}
	var act Activity
	c := newFakeClientConn()
	c.streams.Store(1)
	start := time.Now()
	_, done := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })

	select {
	case err := <-c.closed:
		if !errors.Is(err, ErrKeepaliveTimeout) {
			t.Fatalf("Close(%v), want an error wrapping ErrKeepaliveTimeout", err)
		}
		if el := time.Since(start); el < p.Time+p.Timeout {
			t.Fatalf("closed after %v, before Time+Timeout", el)
		}
	case <-time.After(longTimeout):
		t.Fatal("silent peer: connection not closed")
	}
	if c.pings.Load() != 1 {
		t.Fatalf("sent %d pings, want 1", c.pings.Load())
	}
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("RunClient did not return after Close")
	}
}

func TestClientAnsweredPingsKeepAlive(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	// Timeout is generous: the answer is a read inside Ping, and the check
	// is only that no close happens.
	p := ClientParameters{Time: 10 * time.Millisecond, Timeout: time.Second}
	var act Activity
	c := newFakeClientConn()
	c.streams.Store(1)
	c.onPing = act.Read // the ack arrives at once
	stop, _ := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })

	for i := range 3 {
		select {
		case <-c.pinged:
		case <-time.After(longTimeout):
			t.Fatalf("ping %d not sent", i+1)
		}
	}
	select {
	case err := <-c.closed:
		t.Fatalf("answered pings: Close(%v)", err)
	case <-time.After(shortTimeout):
	}
	stop()
}

func TestClientTimeoutLongerThanTime(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	// With Timeout >> Time, prompt answers keep pings Time apart.
	p := ClientParameters{Time: 10 * time.Millisecond, Timeout: time.Hour, PermitWithoutStream: true}
	var act Activity
	c := newFakeClientConn()
	c.onPing = act.Read
	stop, _ := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })
	for i := range 3 {
		select {
		case <-c.pinged:
		case <-time.After(longTimeout):
			t.Fatalf("ping %d not sent", i+1)
		}
	}
	stop()
}

func TestClientNoPingWithoutStreams(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ClientParameters{Time: 20 * time.Millisecond, Timeout: time.Hour}
	var act Activity
	c := newFakeClientConn()
	stop, _ := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })

	// The loop goes dormant at its first check, after Time.
	deadline := time.Now().Add(longTimeout)
	for !act.dormant.Load() {
		if time.Now().After(deadline) {
			t.Fatal("loop without streams never went dormant")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-c.pinged:
		t.Fatal("pinged without streams and without PermitWithoutStream")
	case <-time.After(shortTimeout):
	}
	c.streams.Store(1)
	act.StreamStarted()
	select {
	case <-c.pinged:
	case <-time.After(longTimeout):
		t.Fatal("no ping after a stream started")
	}
	stop()
	if act.dormant.Load() {
		t.Fatal("dormant flag left set after RunClient returned")
	}
}

// TestStreamStartedWake checks the wake-up itself; timing cannot tell it
// from the loop's periodic re-check without flaking.
func TestStreamStartedWake(t *testing.T) {
	var act Activity
	act.StreamStarted()
	if n := len(act.wakeChan()); n != 0 {
		t.Fatalf("StreamStarted while not dormant queued %d wake-ups", n)
	}
	act.dormant.Store(true)
	act.StreamStarted()
	act.StreamStarted()
	if n := len(act.wakeChan()); n != 1 {
		t.Fatalf("StreamStarted while dormant queued %d wake-ups, want 1", n)
	}
}

func TestClientStreamWithoutWakeStillPings(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ClientParameters{Time: 20 * time.Millisecond, Timeout: time.Hour}
	var act Activity
	c := newFakeClientConn()
	stop, _ := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })
	time.Sleep(50 * time.Millisecond)
	c.streams.Store(1) // no StreamStarted: the periodic re-check finds it
	select {
	case <-c.pinged:
	case <-time.After(longTimeout):
		t.Fatal("no ping for a stream opened without StreamStarted")
	}
	stop()
}

func TestClientDisabledReturns(t *testing.T) {
	var act Activity
	c := newFakeClientConn()
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunClient(context.Background(), ClientParameters{}, &act, c)
	}()
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("RunClient with keepalive disabled did not return")
	}
}

func TestClientCancel(t *testing.T) {
	// Default minimum: nothing happens in the 10s before the cancel.
	p := ClientParameters{Time: 10 * time.Second, PermitWithoutStream: true}
	var act Activity
	c := newFakeClientConn()
	stop, done := runLoop(t, func(ctx context.Context) { RunClient(ctx, p, &act, c) })
	stop()
	select {
	case <-done:
	default:
		t.Fatal("RunClient still running after stop")
	}
	if c.pings.Load() != 0 || len(c.closed) != 0 {
		t.Fatal("RunClient acted before cancel")
	}
}
