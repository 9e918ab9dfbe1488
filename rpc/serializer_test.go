package rpc

import (
	"sync"
	"testing"
)

// TestSerializerRunsInOrderOneAtATime: callbacks scheduled from many
// goroutines, and from inside callbacks, run one at a time, each
// goroutine's in the order it scheduled them; a callback's own
// scheduling runs after it returns.
func TestSerializerRunsInOrderOneAtATime(t *testing.T) {
	var s serializer
	var running, maxRunning int
	var mu sync.Mutex // only to let the race detector see overlaps
	var got []int
	enter := func() {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
	}
	leave := func() {
		mu.Lock()
		running--
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				s.schedule(func() {
					enter()
					got = append(got, g*1000+i) // unguarded: serialised
					leave()
				})
			}
		}()
	}
	wg.Wait()
	inner := false
	s.run(func() {
		s.schedule(func() { inner = true })
		if inner {
			t.Error("a callback scheduled from a callback ran inside it")
		}
	})
	s.run(func() {})
	if !inner {
		t.Error("a callback scheduled from a callback never ran")
	}
	if maxRunning != 1 {
		t.Errorf("%d callbacks ran at once", maxRunning)
	}
	last := map[int]int{}
	for _, v := range got {
		g, i := v/1000, v%1000
		if prev, ok := last[g]; ok && i != prev+1 {
			t.Fatalf("goroutine %d: callback %d ran after %d", g, i, prev)
		}
		last[g] = i
	}
	if len(got) != 400 {
		t.Errorf("%d callbacks ran, want 400", len(got))
	}
	s.close()
	if s.schedule(func() { t.Error("ran after close") }) {
		t.Error("schedule accepted a callback after close")
	}
}
