package keepalive

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServerConn records what RunServer does.
type fakeServerConn struct {
	streams atomic.Int32
	pings   atomic.Int32
	onPing  func()

	mu        sync.Mutex
	idleSince time.Time

	drained chan string // Drain's reasons
	closed  chan error  // Close's error
}

func newFakeServerConn() *fakeServerConn {
	return &fakeServerConn{idleSince: time.Now(), drained: make(chan string, 10), closed: make(chan error, 1)}
}

func (c *fakeServerConn) ActiveStreams() int { return int(c.streams.Load()) }

func (c *fakeServerConn) IdleSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idleSince
}

func (c *fakeServerConn) setIdleSince(t time.Time) {
	c.mu.Lock()
	c.idleSince = t
	c.mu.Unlock()
}

func (c *fakeServerConn) Drain(reason string) { c.drained <- reason }

func (c *fakeServerConn) Ping() {
	c.pings.Add(1)
	if c.onPing != nil {
		c.onPing()
	}
}

func (c *fakeServerConn) Close(err error) { c.closed <- err }

func TestServerIdleDrain(t *testing.T) {
	p := ServerParameters{MaxConnectionIdle: 50 * time.Millisecond}
	var act Activity
	c := newFakeServerConn()
	start := c.IdleSince()
	stop, _ := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })

	select {
	case reason := <-c.drained:
		if reason != DrainMaxIdle {
			t.Fatalf("Drain(%q), want %q", reason, DrainMaxIdle)
		}
		if el := time.Since(start); el < p.MaxConnectionIdle {
			t.Fatalf("drained after %v idle, before MaxConnectionIdle", el)
		}
	case <-time.After(longTimeout):
		t.Fatal("idle connection not drained")
	}
	select {
	case reason := <-c.drained:
		t.Fatalf("second Drain(%q)", reason)
	case err := <-c.closed:
		t.Fatalf("Close(%v) without age or ping limits", err)
	case <-time.After(shortTimeout):
	}
	stop()
}

func TestServerIdleNotWhileStreamsActive(t *testing.T) {
	p := ServerParameters{MaxConnectionIdle: 30 * time.Millisecond}
	var act Activity
	c := newFakeServerConn()
	c.streams.Store(1)
	c.setIdleSince(time.Time{})
	stop, _ := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })

	select {
	case reason := <-c.drained:
		t.Fatalf("Drain(%q) while a stream was active", reason)
	case <-time.After(shortTimeout):
	}
	// The stream ends: the idle period starts now.
	c.setIdleSince(time.Now())
	c.streams.Store(0)
	select {
	case reason := <-c.drained:
		if reason != DrainMaxIdle {
			t.Fatalf("Drain(%q), want %q", reason, DrainMaxIdle)
		}
	case <-time.After(longTimeout):
		t.Fatal("connection not drained after its last stream ended")
	}
	stop()
}

func TestServerAgeDrainThenClose(t *testing.T) {
	p := ServerParameters{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 100 * time.Millisecond}
	var act Activity
	c := newFakeServerConn()
	c.streams.Store(1) // busy: the age limit applies anyway
	start := time.Now()
	_, done := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })

	var drainedAt time.Time
	select {
	case reason := <-c.drained:
		drainedAt = time.Now()
		if reason != DrainMaxAge {
			t.Fatalf("Drain(%q), want %q", reason, DrainMaxAge)
		}
		if el := drainedAt.Sub(start); el < p.MaxConnectionAge-p.MaxConnectionAge/10 {
			t.Fatalf("drained after %v, before MaxConnectionAge-10%%", el)
		}
	case err := <-c.closed:
		t.Fatalf("Close(%v) before Drain", err)
	case <-time.After(longTimeout):
		t.Fatal("connection not drained at MaxConnectionAge")
	}
	select {
	case err := <-c.closed:
		if !errors.Is(err, ErrMaxConnectionAge) {
			t.Fatalf("Close(%v), want an error wrapping ErrMaxConnectionAge", err)
		}
		if el := time.Since(drainedAt); el < p.MaxConnectionAgeGrace {
			t.Fatalf("closed %v after the drain, before the grace period", el)
		}
	case <-time.After(longTimeout):
		t.Fatal("connection not closed after MaxConnectionAgeGrace")
	}
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("RunServer did not return after Close")
	}
	if len(c.drained) != 0 {
		t.Fatalf("Drain called again: %q", <-c.drained)
	}
}

func TestServerAgeAfterIdleDrain(t *testing.T) {
	// Idle drain first; the age limit then skips its own Drain but still
	// closes after the grace period.
	p := ServerParameters{
		MaxConnectionIdle:     10 * time.Millisecond,
		MaxConnectionAge:      100 * time.Millisecond,
		MaxConnectionAgeGrace: 10 * time.Millisecond,
	}
	var act Activity
	c := newFakeServerConn()
	c.setIdleSince(time.Now().Add(-time.Hour))
	runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })
	select {
	case err := <-c.closed:
		if !errors.Is(err, ErrMaxConnectionAge) {
			t.Fatalf("Close(%v), want an error wrapping ErrMaxConnectionAge", err)
		}
	case <-time.After(longTimeout):
		t.Fatal("connection not closed after age and grace")
	}
	if got := len(c.drained); got != 1 {
		t.Fatalf("Drain called %d times, want 1", got)
	}
	if reason := <-c.drained; reason != DrainMaxIdle {
		t.Fatalf("Drain(%q), want %q", reason, DrainMaxIdle)
	}
}

func TestServerAgeInfiniteGrace(t *testing.T) {
	p := ServerParameters{MaxConnectionAge: 10 * time.Millisecond}
	var act Activity
	c := newFakeServerConn()
	c.streams.Store(1)
	stop, _ := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })
	select {
	case reason := <-c.drained:
		if reason != DrainMaxAge {
			t.Fatalf("Drain(%q), want %q", reason, DrainMaxAge)
		}
	case <-time.After(longTimeout):
		t.Fatal("connection not drained at MaxConnectionAge")
	}
	select {
	case err := <-c.closed:
		t.Fatalf("Close(%v) with an infinite grace period", err)
	case <-time.After(shortTimeout):
	}
	stop()
}

func TestServerPingTimeout(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ServerParameters{Time: 30 * time.Millisecond, Timeout: 30 * time.Millisecond}
	var act Activity
	c := newFakeServerConn() // no streams: the server pings anyway
	start := time.Now()
	_, done := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })
	select {
	case err := <-c.closed:
		if !errors.Is(err, ErrKeepaliveTimeout) {
			t.Fatalf("Close(%v), want an error wrapping ErrKeepaliveTimeout", err)
		}
		if el := time.Since(start); el < p.Time+p.Timeout {
			t.Fatalf("closed after %v, before Time+Timeout", el)
		}
	case <-time.After(longTimeout):
		t.Fatal("silent client: connection not closed")
	}
	if n := c.pings.Load(); n != 1 {
		t.Fatalf("sent %d pings, want 1", n)
	}
	<-done
}

func TestServerAnsweredPings(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ServerParameters{Time: 10 * time.Millisecond, Timeout: time.Second}
	var act Activity
	c := newFakeServerConn()
	pinged := make(chan struct{}, 1000)
	c.onPing = func() {
		act.Read() // the ack arrives at once
		pinged <- struct{}{}
	}
	stop, _ := runLoop(t, func(ctx context.Context) { RunServer(ctx, p, &act, c) })
	for i := range 3 {
		select {
		case <-pinged:
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

func TestServerCancel(t *testing.T) {
	var act Activity
	c := newFakeServerConn()
	stop, done := runLoop(t, func(ctx context.Context) { RunServer(ctx, ServerParameters{}, &act, c) })
	stop()
	select {
	case <-done:
	default:
		t.Fatal("RunServer still running after stop")
	}
	if c.pings.Load() != 0 || len(c.drained) != 0 || len(c.closed) != 0 {
		t.Fatal("RunServer acted before cancel with default parameters")
	}
}

func TestStartServerRunsNoGoroutineWhileIdle(t *testing.T) {
	// Default parameters: pings every 2 h, so nothing happens during the
	// test; the keepalive work must sit in a timer, not a goroutine.
	var act Activity
	c := newFakeServerConn()
	ctx, cancel := context.WithCancel(context.Background())
	before := runtime.NumGoroutine()
	done := StartServer(ctx, ServerParameters{}, &act, c)
	for range 3 {
		runtime.Gosched()
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("StartServer left %d goroutines running while idle", after-before)
	}
	select {
	case <-done:
		t.Fatal("done before ctx ended")
	case <-time.After(shortTimeout):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("done not closed after ctx ended")
	}
	if c.pings.Load() != 0 || len(c.drained) != 0 || len(c.closed) != 0 {
		t.Fatal("an idle, default-configured connection was pinged, drained or closed")
	}
}

func TestServerTimersStop(t *testing.T) {
	var act Activity
	c := newFakeServerConn()
	st := StartServerTimers(ServerParameters{}, &act, c)
	select {
	case <-st.Done():
		t.Fatal("done before Stop")
	case <-time.After(shortTimeout):
	}
	st.Stop()
	st.Stop() // a second Stop does nothing
	select {
	case <-st.Done():
	case <-time.After(longTimeout):
		t.Fatal("done not closed after Stop")
	}
	if c.pings.Load() != 0 || len(c.drained) != 0 || len(c.closed) != 0 {
		t.Fatal("an idle, default-configured connection was pinged, drained or closed")
	}
}

// stoppingServerConn stops the timers from Close, as a server connection
// does when keepalive closes it.
type stoppingServerConn struct {
	*fakeServerConn
	st atomic.Pointer[ServerTimers]
}

func (c *stoppingServerConn) Close(err error) {
	for c.st.Load() == nil {
		runtime.Gosched() // Close may come before StartServerTimers returned
	}
	c.st.Load().Stop()
	c.fakeServerConn.Close(err)
}

func TestServerTimersStopFromClose(t *testing.T) {
	// The ping is never acknowledged: the timers close the connection,
	// whose Close calls Stop from inside the step. That must not deadlock,
	// and no method may be called once Done is closed.
	p := ServerParameters{Time: 10 * time.Millisecond, Timeout: 10 * time.Millisecond}
	setMinimums(t, time.Millisecond, time.Millisecond)
	var act Activity
	c := &stoppingServerConn{fakeServerConn: newFakeServerConn()}
	c.st.Store(StartServerTimers(p, &act, c))
	select {
	case err := <-c.closed:
		if !errors.Is(err, ErrKeepaliveTimeout) {
			t.Fatalf("Close(%v), want ErrKeepaliveTimeout", err)
		}
	case <-time.After(longTimeout):
		t.Fatal("silent connection not closed")
	}
	select {
	case <-c.st.Load().Done():
	case <-time.After(longTimeout):
		t.Fatal("done not closed after Close")
	}
	pings := c.pings.Load()
	time.Sleep(5 * p.Time)
	if got := c.pings.Load(); got != pings {
		t.Errorf("%d pings after Done, want none", got-pings)
	}
}
