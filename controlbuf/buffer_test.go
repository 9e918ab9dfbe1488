package controlbuf

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueRing(t *testing.T) {
	var q queue[int]
	next, want := 0, 0
	// Interleave pushes and pops so the ring wraps and grows.
	for round := range 50 {
		for range round % 7 {
			q.push(next)
			next++
		}
		for range round % 5 {
			if q.len() == 0 {
				break
			}
			if got := q.pop(); got != want {
				t.Fatalf("pop = %d, want %d", got, want)
			}
			want++
		}
	}
	for q.len() > 0 {
		if got := q.pop(); got != want {
			t.Fatalf("pop = %d, want %d", got, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d, pushed %d", want, next)
	}
}

func TestBufferFIFOAndLen(t *testing.T) {
	b := NewBuffer()
	s := NewServerStream(1, nil)
	items := []Item{
		&HeaderFrame{Stream: s},
		&Ping{Ack: true},
		&DataFrame{Stream: s},
		&ResetStream{StreamID: 1},
		&OutgoingWindowUpdate{StreamID: 1, Increment: 5}, // our own: not counted
	}
	for _, it := range items {
		if err := b.Put(it); err != nil {
			t.Fatal(err)
		}
	}
	if c, n := b.Len(); c != 2 || n != 5 {
		t.Fatalf("Len() = %d, %d; want 2, 5", c, n)
	}
	for i, want := range items {
		got, err := b.Get(false)
		if err != nil || got != want {
			t.Fatalf("Get #%d = %v, %v; want %v", i, got, err, want)
		}
	}
	if got, err := b.Get(false); got != nil || err != nil {
		t.Fatalf("Get on empty buffer = %v, %v", got, err)
	}
	if c, n := b.Len(); c != 0 || n != 0 {
		t.Fatalf("Len() = %d, %d; want 0, 0", c, n)
	}
}

func TestBufferGetBlocksUntilPut(t *testing.T) {
	b := NewBuffer()
	got := make(chan Item, 1)
	go func() {
		it, _ := b.Get(true)
		got <- it
	}()
	select {
	case it := <-got:
		t.Fatalf("Get returned %v on an empty buffer", it)
	case <-time.After(shortTimeout):
	}
	p := &Ping{}
	if err := b.Put(p); err != nil {
		t.Fatal(err)
	}
	select {
	case it := <-got:
		if it != p {
			t.Fatalf("Get = %v, want the ping", it)
		}
	case <-time.After(longTimeout):
		t.Fatal("Get did not wake up after Put")
	}
}

func TestBufferExecuteAndPut(t *testing.T) {
	b := NewBuffer()
	ok, err := b.ExecuteAndPut(func() bool { return false }, &Ping{})
	if ok || err != nil {
		t.Fatalf("ExecuteAndPut(false) = %v, %v", ok, err)
	}
	if _, n := b.Len(); n != 0 {
		t.Fatalf("item queued although f returned false")
	}
	ran := false
	ok, err = b.ExecuteAndPut(func() bool { ran = true; return true }, &Ping{})
	if !ok || err != nil || !ran {
		t.Fatalf("ExecuteAndPut(true) = %v, %v (ran %v)", ok, err, ran)
	}
	b.Finish(nil)
	ran = false
	ok, err = b.ExecuteAndPut(func() bool { ran = true; return true }, &Ping{})
	if ok || !errors.Is(err, ErrClosed) || ran {
		t.Fatalf("ExecuteAndPut after Finish = %v, %v (ran %v); want ErrClosed, f not run", ok, err, ran)
	}
}

// throttleReturns runs Throttle in a goroutine and reports on the channel
// when it returns.
func throttleReturns(b *Buffer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		b.Throttle()
		close(done)
	}()
	return done
}

func TestBufferThrottle(t *testing.T) {
	b := NewBuffer()
	s := NewServerStream(1, nil)
	for range MaxQueuedControl {
		if err := b.Put(&Ping{Ack: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Headers and data do not count.
	for range 100 {
		_ = b.Put(&DataFrame{Stream: s})
		_ = b.Put(&HeaderFrame{Stream: s})
	}
	select {
	case <-throttleReturns(b):
	case <-time.After(longTimeout):
		t.Fatalf("Throttle blocked with %d control items queued", MaxQueuedControl)
	}

	// One more control item: the reader must wait.
	_ = b.Put(&ResetStream{StreamID: 1})
	done := throttleReturns(b)
	select {
	case <-done:
		t.Fatalf("Throttle returned with %d control items queued", MaxQueuedControl+1)
	case <-time.After(shortTimeout):
	}
	if c, n := b.Len(); c != MaxQueuedControl+1 || n != MaxQueuedControl+201 {
		t.Fatalf("Len() = %d, %d", c, n)
	}

	// Draining the items (loopy's Get) releases it once the count is back
	// at the limit.
	for {
		it, err := b.Get(false)
		if err != nil {
			t.Fatal(err)
		}
		if it.PeerCaused() {
			break
		}
	}
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("Throttle still blocked after the queue drained")
	}

	// Over the limit again; Finish releases the waiter.
	_ = b.Put(&Ping{Ack: true})
	done = throttleReturns(b)
	select {
	case <-done:
		t.Fatal("Throttle returned over the limit")
	case <-time.After(shortTimeout):
	}
	b.Finish(nil)
	select {
	case <-done:
	case <-time.After(longTimeout):
		t.Fatal("Throttle still blocked after Finish")
	}
}

func TestBufferFinish(t *testing.T) {
	b := NewBuffer()
	s := NewStream(nil)
	var orphaned atomic.Int32
	var gotErr error
	for range 3 {
		h := &HeaderFrame{Stream: s, OnOrphaned: func(err error) {
			orphaned.Add(1)
			gotErr = err
		}}
		if err := b.Put(h); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.Put(&DataFrame{Stream: s})
	_ = b.Put(&HeaderFrame{Stream: s}) // no OnOrphaned: must not panic

	blocked := make(chan error, 1)
	b2 := NewBuffer()
	go func() {
		_, err := b2.Get(true)
		blocked <- err
	}()

	b.Finish(errTest)
	b.Finish(errors.New("second finish is ignored"))
	if got := orphaned.Load(); got != 3 {
		t.Fatalf("OnOrphaned called %d times, want 3", got)
	}
	if !errors.Is(gotErr, ErrClosed) || !errors.Is(gotErr, errTest) {
		t.Fatalf("OnOrphaned error = %v, want ErrClosed and the Finish error", gotErr)
	}
	if err := b.Put(&Ping{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Finish = %v, want ErrClosed", err)
	}
	if it, err := b.Get(true); it != nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Finish = %v, %v", it, err)
	}
	if c, n := b.Len(); c != 0 || n != 0 {
		t.Fatalf("Len() after Finish = %d, %d", c, n)
	}

	// Finish must wake a Get that is already waiting.
	for {
		b2.mu.Lock()
		waiting := b2.sleeping
		b2.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	b2.Finish(nil)
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Get = %v, want ErrClosed", err)
		}
	case <-time.After(longTimeout):
		t.Fatal("Finish did not wake a blocked Get")
	}
}
