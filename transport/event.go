package transport

import "sync"

// event is a one-time signal whose channel is made only when someone asks
// for it: most connections are never waited on (Done, GoAway) or only once
// they close, and with many idle connections a channel each adds up.
// The zero value is an event that has not happened.
type event struct {
	mu    sync.Mutex
	ch    chan struct{} // made by wait; closed by fire
	fired bool
}

// fire makes the event happen; only the first call has an effect. It
// reports whether it was the first.
func (e *event) fire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fired {
		return false
	}
	e.fired = true
	if e.ch != nil {
		close(e.ch)
	}
	return true
}

// wait returns a channel that is closed once the event happened.
func (e *event) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch == nil {
		e.ch = make(chan struct{})
		if e.fired {
			close(e.ch)
		}
	}
	return e.ch
}

// hasFired reports whether the event happened.
func (e *event) hasFired() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fired
}
