package keepalive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// maxAgeJitterDivisor sets the jitter of MaxConnectionAge to ±1/10 of it, so
// that connections opened together are not all drained (and all reconnect)
// at the same moment (gRPC A9, as in grpc-go).
const maxAgeJitterDivisor = 10

// ServerConn is what RunServer needs from a server connection. Its methods
// are called from the keepalive goroutine and must not block for long.
type ServerConn interface {
	// ActiveStreams returns the number of streams open now.
	ActiveStreams() int
	// IdleSince returns when the last stream closed, or when the connection
	// started if it never had one. It is ignored while streams are active
	// (a zero Time is fine then).
	IdleSince() time.Time
	// Drain starts a graceful shutdown: the two-step GOAWAY of "gRPC over
	// HTTP2" (GOAWAY 2^31-1 and a PING, then GOAWAY with the real last
	// stream id after the ack). reason is DrainMaxIdle or DrainMaxAge.
	Drain(reason string)
	// Ping queues a keepalive PING; it must not block.
	Ping()
	// Close closes the connection; err wraps ErrKeepaliveTimeout or
	// ErrMaxConnectionAge.
	Close(err error)
}

// RunServer runs the keepalive and connection management of one server
// connection (gRPC A8, A9) until ctx is done or it closes the connection.
// StartServer does the same without a goroutine, and StartServerTimers
// without a context (what the h2rpc transport uses).
//
//   - No active stream for p.MaxConnectionIdle (from c.IdleSince): c.Drain
//     with DrainMaxIdle.
//   - Connection older than p.MaxConnectionAge ±10% jitter: c.Drain with
//     DrainMaxAge; p.MaxConnectionAgeGrace later, c.Close with an error
//     wrapping ErrMaxConnectionAge. If the idle drain came first, the age
//     limit still closes the connection after the grace period.
//   - Nothing read for p.Time: a PING, whether or not streams are active;
//     nothing read within p.Timeout after it: c.Close with an error wrapping
//     ErrKeepaliveTimeout. Pings go on while the connection drains, so a
//     dead client cannot hold a draining connection open.
//
// Drain is called at most once. p is passed through Effective first. act
// must be the Activity the connection's reader calls Read on.
func RunServer(ctx context.Context, p ServerParameters, act *Activity, c ServerConn) {
	<-StartServer(ctx, p, act, c)
}

// StartServer does what RunServer does without a goroutine of its own: it
// returns at once and the work runs in timer callbacks, so an idle server
// connection costs a timer, not a goroutine and its stack. The returned
// channel is closed when the work is over: ctx is done, or c was closed
// for a keepalive timeout or the connection age. No method of c is called
// after that.
func StartServer(ctx context.Context, p ServerParameters, act *Activity, c ServerConn) <-chan struct{} {
	if ctx.Err() != nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	st := StartServerTimers(p, act, c)
	st.loop.mu.Lock()
	st.loop.ctx = ctx // no step runs once ctx is done
	st.loop.mu.Unlock()
	// stop runs on a goroutine of its own, so it may wait for a step in
	// progress (which may itself have ended ctx).
	context.AfterFunc(ctx, st.stop)
	return st.Done()
}

// ServerTimers is the keepalive and connection management of one server
// connection, run in timer callbacks (see RunServer for what it does).
// Unlike StartServer it watches no context: the connection calls Stop when
// it closes, which spares an idle connection the context's bookkeeping.
type ServerTimers struct {
	loop serverLoop
}

// StartServerTimers starts the work for c; it returns at once. The
// connection must call Stop when it closes (unless Done is closed already:
// c was closed for a keepalive timeout or the connection age).
func StartServerTimers(p ServerParameters, act *Activity, c ServerConn) *ServerTimers {
	p = p.Effective()
	st := &ServerTimers{}
	s := &st.loop
	*s = serverLoop{
		p:   p,
		c:   c,
		pg:  pinger{time: p.Time, timeout: p.Timeout, act: act},
		age: jitterAge(p.MaxConnectionAge),
	}
	s.start = nanotime()
	s.pg.start = s.start

	s.mu.Lock()
	defer s.mu.Unlock()
	wait, done := s.step(s.start)
	if done {
		s.finishLocked()
		return st
	}
	s.timer = time.AfterFunc(wait, s.fire)
	return st
}

// Stop ends the work. It does not wait: it may be called from a method of
// c that the work itself called (Close). Done is closed once no method of
// c runs or will run.
func (st *ServerTimers) Stop() {
	if !st.loop.stopping.Swap(true) {
		go st.stop()
	}
}

func (st *ServerTimers) stop() {
	s := &st.loop
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.finishLocked()
}

// Done is closed when the work is over: after Stop, or once c was closed
// for a keepalive timeout or the connection age.
func (st *ServerTimers) Done() <-chan struct{} {
	s := &st.loop
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		// Made on demand: a connection waits only once it closed.
		s.done = make(chan struct{})
		if s.finished {
			close(s.done)
		}
	}
	return s.done
}

// fire runs a step when the timer goes off and sets it for the next one.
func (s *serverLoop) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.stopping.Load() || (s.ctx != nil && s.ctx.Err() != nil) {
		return
	}
	wait, done := s.step(nanotime())
	if done {
		s.finishLocked()
		return
	}
	s.timer.Reset(wait)
}

// finishLocked ends the work once. Caller holds s.mu.
func (s *serverLoop) finishLocked() {
	if !s.finished {
		s.finished = true
		if s.done != nil {
			close(s.done)
		}
	}
}

// serverLoop is the state of one RunServer.
type serverLoop struct {
	mu       sync.Mutex      // held while a step runs
	stopping atomic.Bool     // Stop was called: no step runs any more
	ctx      context.Context // StartServer: no step runs once it is done
	timer    *time.Timer
	done     chan struct{} // made by Done, closed when finished; guarded by mu
	finished bool          // the work is over; guarded by mu

	p     ServerParameters // effective
	c     ServerConn
	pg    pinger
	start int64         // nanotime() when RunServer began
	age   time.Duration // MaxConnectionAge with jitter applied

	drained    bool  // Drain was called
	inGrace    bool  // the age was reached; the grace period runs
	graceStart int64 // when the grace period began
}

// step does whatever is due at now and returns how long to sleep before the
// next evaluation, or done when the connection was closed.
func (s *serverLoop) step(now int64) (wait time.Duration, done bool) {
	action, wait := s.pg.step(now)
	switch action {
	case pingTimedOut:
		s.c.Close(fmt.Errorf("%w (server, timeout %v)", ErrKeepaliveTimeout, s.p.Timeout))
		return 0, true
	case pingDue:
		s.c.Ping()
		wait = s.pg.pinged(now)
	}
	wait = min(wait, s.checkIdle())
	w, done := s.checkAge(now)
	return min(wait, w), done
}

// checkIdle drains the connection once it has been without streams for
// MaxConnectionIdle, and returns when to check again.
func (s *serverLoop) checkIdle() time.Duration {
	limit := s.p.MaxConnectionIdle
	if s.drained || limit == Infinity {
		return Infinity
	}
	if s.c.ActiveStreams() > 0 {
		// Busy: the idle period cannot end sooner than a full limit from now.
		return limit
	}
	since := s.c.IdleSince()
	if since.IsZero() {
		return limit
	}
	idle := max(time.Since(since), 0)
	if idle < limit {
		return limit - idle
	}
	s.drained = true
	s.c.Drain(DrainMaxIdle)
	return Infinity
}

// checkAge drains the connection at its (jittered) maximum age, closes it at
// the end of the grace period, and returns when to check again.
func (s *serverLoop) checkAge(now int64) (wait time.Duration, done bool) {
	if s.age == Infinity {
		return Infinity, false
	}
	if !s.inGrace {
		if alive := time.Duration(now - s.start); alive < s.age {
			return s.age - alive, false
		}
		if !s.drained {
			s.drained = true
			s.c.Drain(DrainMaxAge)
		}
		s.inGrace = true
		s.graceStart = now
	}
	grace := s.p.MaxConnectionAgeGrace
	if grace == Infinity {
		return Infinity, false
	}
	if waited := time.Duration(now - s.graceStart); waited < grace {
		return grace - waited, false
	}
	s.c.Close(fmt.Errorf("%w (age %v, grace %v)", ErrMaxConnectionAge, s.age, grace))
	return 0, true
}

// jitterAge returns d moved by a random amount within ±d/10, saturating at
// Infinity; Infinity stays Infinity.
func jitterAge(d time.Duration) time.Duration {
	r := int64(d / maxAgeJitterDivisor)
	if d == Infinity || r <= 0 {
		return d
	}
	j := time.Duration(rand.Int64N(2*r+1) - r)
	if j > 0 && d > Infinity-j {
		return Infinity
	}
	return d + j
}
