package flowcontrol

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// startBudgetGet runs b.Get(ctx, n, stop) on its own goroutine, waits
// until it queued as a waiter, and returns the channel its result
// arrives on.
func startBudgetGet(t *testing.T, ctx context.Context, b *WriteBudget, n int64, stop <-chan struct{}) <-chan error {
	t.Helper()
	before := b.Waiting()
	res := make(chan error, 1)
	go func() { res <- b.Get(ctx, n, stop) }()
	waitFor(t, "the Get to queue", func() bool { return b.Waiting() > before })
	return res
}

// waitFor polls cond until it holds, failing the test after longTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(longTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantOutstanding(t *testing.T, b *WriteBudget, want int64) {
	t.Helper()
	if got := b.Outstanding(); got != want {
		t.Fatalf("outstanding = %d, want %d", got, want)
	}
}

func TestWriteBudgetFastPath(t *testing.T) {
	b := NewWriteBudget(100, nil)
	ctx := context.Background()
	if err := b.Get(ctx, 40, nil); err != nil {
		t.Fatal(err)
	}
	wantOutstanding(t, b, 40)
	// More than is left still passes while some is left, once.
	if err := b.Get(ctx, 1000, nil); err != nil {
		t.Fatal(err)
	}
	wantOutstanding(t, b, 1040)
	if got := b.MaxOutstanding(); got != 1040 {
		t.Fatalf("MaxOutstanding = %d, want 1040", got)
	}
	b.Release(1040)
	wantOutstanding(t, b, 0)
	// Get(0) never waits, even with nothing left.
	b.Get(ctx, 200, nil)
	if err := b.Get(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
}

// TestWriteBudgetBlocksWhenSpent: with the budget spent, Get waits until
// Release brings it back above zero.
func TestWriteBudgetBlocksWhenSpent(t *testing.T) {
	b := NewWriteBudget(10, nil)
	ctx := context.Background()
	if err := b.Get(ctx, 15, nil); err != nil {
		t.Fatal(err)
	}
	res := startBudgetGet(t, ctx, b, 5, nil)
	b.Release(5) // back to 0: still nothing left
	wantBlocked(t, res)
	b.Release(1)
	if err := wantReturn(t, res); err != nil {
		t.Fatalf("Get after Release = %v", err)
	}
	wantOutstanding(t, b, 14)
}

// TestWriteBudgetFIFO: waiters are served in arrival order, and one
// Release that leaves budget for several wakes them all.
func TestWriteBudgetFIFO(t *testing.T) {
	b := NewWriteBudget(1, nil)
	ctx := context.Background()
	b.Get(ctx, 1, nil)
	big := startBudgetGet(t, ctx, b, 100, nil)
	small := startBudgetGet(t, ctx, b, 1, nil)
	// One byte comes back: the first waiter takes it (and overdraws);
	// the second, though it asks for less, waits behind it.
	b.Release(1)
	if err := wantReturn(t, big); err != nil {
		t.Fatal(err)
	}
	wantBlocked(t, small)
	// A newcomer does not jump the queue either.
	late := startBudgetGet(t, ctx, b, 1, nil)
	b.Release(101) // the overdraft, and one byte for each
	if err := wantReturn(t, small); err != nil {
		t.Fatal(err)
	}
	if err := wantReturn(t, late); err != nil {
		t.Fatal(err)
	}
	wantOutstanding(t, b, 1)
}

// TestWriteBudgetContextCanceled: a waiting Get returns ctx's error when
// ctx ends, takes nothing, and leaves later waiters queued.
func TestWriteBudgetContextCanceled(t *testing.T) {
	b := NewWriteBudget(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	res := startBudgetGet(t, ctx, b, 7, nil)
	other := startBudgetGet(t, context.Background(), b, 3, nil)
	cancel()
	if err := wantReturn(t, res); err != context.Canceled {
		t.Fatalf("Get = %v, want context.Canceled itself", err)
	}
	if b.Waiting() != 1 {
		t.Fatalf("%d waiting, want 1", b.Waiting())
	}
	b.Release(1)
	if err := wantReturn(t, other); err != nil {
		t.Fatal(err)
	}
	wantOutstanding(t, b, 2) // -1 released, +3 taken
}

// TestWriteBudgetStopAndDone: a waiting Get gives up with ErrQuotaClosed
// when its stream ends (stop) or the budget's connection does (done).
func TestWriteBudgetStopAndDone(t *testing.T) {
	done := make(chan struct{})
	b := NewWriteBudget(0, done)
	stop := make(chan struct{})
	res := startBudgetGet(t, context.Background(), b, 1, stop)
	close(stop)
	if err := wantReturn(t, res); !errors.Is(err, ErrQuotaClosed) {
		t.Fatalf("Get after stop = %v, want ErrQuotaClosed", err)
	}
	res = startBudgetGet(t, context.Background(), b, 1, nil)
	close(done)
	if err := wantReturn(t, res); !errors.Is(err, ErrQuotaClosed) {
		t.Fatalf("Get after done = %v, want ErrQuotaClosed", err)
	}
	wantOutstanding(t, b, 0)
	if b.Waiting() != 0 {
		t.Fatalf("%d still waiting", b.Waiting())
	}
}

// TestWriteBudgetBoundWithManyWriters: however many writers race for the
// budget, the bytes outstanding never exceed the size plus one write.
func TestWriteBudgetBoundWithManyWriters(t *testing.T) {
	const (
		size    = 1000
		chunk   = 300
		writers = 16
		each    = 500
	)
	b := NewWriteBudget(size, nil)
	queue := make(chan int64, writers*each)
	var wg, writer sync.WaitGroup
	writer.Add(1)
	go func() { // the writer goroutine, as loopy
		defer writer.Done()
		for n := range queue {
			if got := b.Outstanding(); got > size+chunk {
				t.Errorf("outstanding %d > size %d + one write %d", got, size, chunk)
			}
			b.Release(n)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	defer cancel()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := b.Get(ctx, chunk, nil); err != nil {
					t.Error(err)
					return
				}
				queue <- chunk
			}
		}()
	}
	wg.Wait()
	close(queue)
	writer.Wait()
	wantOutstanding(t, b, 0)
	if got := b.MaxOutstanding(); got > size+chunk {
		t.Fatalf("MaxOutstanding %d > size %d + one write %d", got, size, chunk)
	}
}

func TestWriteBudgetNoAllocs(t *testing.T) {
	b := NewWriteBudget(1<<20, nil)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := b.Get(ctx, 1024, nil); err != nil {
			t.Fatal(err)
		}
		b.Release(1024)
	})
	if allocs != 0 {
		t.Fatalf("Get+Release allocated %v times per run, want 0", allocs)
	}
}

// TestWriteBudgetCancelRacesGrant: waiters whose contexts end while
// Release grants them budget either return nil and keep it, or fail and
// give it back: nothing is lost or counted twice.
func TestWriteBudgetCancelRacesGrant(t *testing.T) {
	for range 200 {
		b := NewWriteBudget(1000, nil)
		var wg sync.WaitGroup
		taken := make(chan int64, 50)
		for i := range 50 {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Get(ctx, 300, nil); err == nil {
					taken <- 300
				}
			}()
			if i%2 == 0 {
				go cancel()
			}
		}
		// The writer gives back what was taken until every Get returned.
		stop := make(chan struct{})
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			for {
				select {
				case n := <-taken:
					b.Release(n)
				case <-stop:
					return
				}
			}
		}()
		wg.Wait()
		close(stop)
		<-exited
		for len(taken) > 0 {
			b.Release(<-taken)
		}
		if b.Outstanding() != 0 || b.Waiting() != 0 {
			t.Fatalf("outstanding %d, %d waiting; want 0, 0", b.Outstanding(), b.Waiting())
		}
	}
}
