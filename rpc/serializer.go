package rpc

import "sync"

// serializer runs callbacks one at a time, in the order they were
// scheduled, on the goroutine of whoever scheduled while nothing ran: it
// costs no goroutine while the channel is quiet. A callback that
// schedules another (a balancer connecting a subchannel, which reports
// CONNECTING) only queues it; it runs once the first returns. The
// channel serialises its balancer's methods and its subchannels' state
// listeners with it.
type serializer struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	closed  bool
}

// schedule queues f, running the queue if nobody is; it reports false
// (and drops f) once the serializer is closed. The caller must hold no
// lock a callback may take: use add and drain then.
func (s *serializer) schedule(f func()) bool {
	ok, mustDrain := s.add(f)
	if mustDrain {
		s.drain()
	}
	return ok
}

// add queues f without running it. When mustDrain, nobody runs the
// queue: the caller must call drain once it released its locks.
func (s *serializer) add(f func()) (ok, mustDrain bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	s.queue = append(s.queue, f)
	if s.running {
		return true, false
	}
	s.running = true
	return true, true
}

// drain runs the queue until it is empty; only the caller add told to
// may call it.
func (s *serializer) drain() {
	s.mu.Lock()
	for len(s.queue) > 0 {
		f := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		f()
		s.mu.Lock()
	}
	s.queue = nil
	s.running = false
	s.mu.Unlock()
}

// run schedules f and waits until it ran; it reports false (f did not
// run) once the serializer is closed. It must not be called from a
// callback.
func (s *serializer) run(f func()) bool {
	done := make(chan struct{})
	if !s.schedule(func() { f(); close(done) }) {
		return false
	}
	<-done
	return true
}

// close drops every callback scheduled from now on.
func (s *serializer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
