package dns

import (
	"net/url"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// longWait bounds the wait for what must happen; it is never a timing
// assertion, only a guard against a hung test.
const longWait = 30 * time.Second

// event is one call a resolver made to its ClientConn: a state or an
// error.
type event struct {
	state *resolver.State
	err   error
}

// fakeCC is a resolver.ClientConn that records every call, fails the
// test on a call after the resolver's Close returned, and returns the
// queued errors from UpdateState.
type fakeCC struct {
	t      *testing.T
	mu     sync.Mutex
	events []event
	notify chan struct{}
	// updateErrs are returned by the next UpdateState calls, in order.
	updateErrs []error
	// onUpdate, when set, runs inside every UpdateState call.
	onUpdate func()
	closed   bool
}

func newFakeCC(t *testing.T) *fakeCC {
	return &fakeCC{t: t, notify: make(chan struct{}, 1)}
}

func (cc *fakeCC) record(e event) error {
	cc.mu.Lock()
	if cc.closed {
		cc.t.Errorf("the resolver called its ClientConn after Close: %+v", e)
	}
	cc.events = append(cc.events, e)
	var err error
	if e.state != nil && len(cc.updateErrs) > 0 {
		err, cc.updateErrs = cc.updateErrs[0], cc.updateErrs[1:]
	}
	cc.mu.Unlock()
	select {
	case cc.notify <- struct{}{}:
	default:
	}
	return err
}

func (cc *fakeCC) UpdateState(s resolver.State) error {
	if cc.onUpdate != nil {
		cc.onUpdate()
	}
	return cc.record(event{state: &s})
}
func (cc *fakeCC) ReportError(err error) { cc.record(event{err: err}) }

func (cc *fakeCC) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	c, err := serviceconfig.Parse(js)
	return &serviceconfig.ParseResult{Config: c, Err: err}
}

// markClosed makes any later call an error of the test.
func (cc *fakeCC) markClosed() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.closed = true
}

// count returns the number of calls so far.
func (cc *fakeCC) count() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.events)
}

// next waits for the next call.
func (cc *fakeCC) next(t *testing.T) event {
	t.Helper()
	deadline := time.After(longWait)
	for {
		cc.mu.Lock()
		if len(cc.events) > 0 {
			e := cc.events[0]
			cc.events = cc.events[1:]
			cc.mu.Unlock()
			return e
		}
		cc.mu.Unlock()
		select {
		case <-cc.notify:
		case <-deadline:
			t.Fatal("the resolver called its ClientConn no more")
		}
	}
}

// nextState waits for the next call and fails the test unless it is
// UpdateState.
func (cc *fakeCC) nextState(t *testing.T) resolver.State {
	t.Helper()
	e := cc.next(t)
	if e.state == nil {
		t.Fatalf("ReportError(%v), want UpdateState", e.err)
	}
	return *e.state
}

// nextError waits for the next call and fails the test unless it is
// ReportError.
func (cc *fakeCC) nextError(t *testing.T) error {
	t.Helper()
	e := cc.next(t)
	if e.state == nil {
		return e.err
	}
	t.Fatalf("UpdateState(%+v), want ReportError", *e.state)
	return nil
}

// fakeTimer is one wait the resolver asked for; the test ends it.
type fakeTimer struct {
	d    time.Duration
	fire chan time.Time
}

// fakeClock hands the resolver's waits to the test instead of running
// them, so the test sees how long each would be and decides when it
// ends.
type fakeClock struct{ timers chan fakeTimer }

func newFakeClock() *fakeClock { return &fakeClock{timers: make(chan fakeTimer, 64)} }

func (c *fakeClock) after(d time.Duration) (<-chan time.Time, func() bool) {
	ft := fakeTimer{d: d, fire: make(chan time.Time, 1)}
	c.timers <- ft
	return ft.fire, func() bool { return true }
}

// next waits for the resolver's next wait.
func (c *fakeClock) next(t *testing.T) fakeTimer {
	t.Helper()
	select {
	case ft := <-c.timers:
		return ft
	case <-time.After(longWait):
		t.Fatal("the resolver started no wait")
		return fakeTimer{}
	}
}

func parseTarget(t *testing.T, s string) resolver.Target {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return resolver.Target{URL: *u}
}

// build builds a resolver of target with b for a new fakeCC, closed
// when the test ends.
func build(t *testing.T, b *Builder, target string, opts resolver.BuildOptions) (resolver.Resolver, *fakeCC) {
	t.Helper()
	cc := newFakeCC(t)
	r, err := b.Build(parseTarget(t, target), cc, opts)
	if err != nil {
		t.Fatalf("Build(%q): %v", target, err)
	}
	t.Cleanup(func() {
		r.Close()
		cc.markClosed()
	})
	return r, cc
}
