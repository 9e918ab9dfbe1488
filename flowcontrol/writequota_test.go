package flowcontrol

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// startGet runs w.Get(ctx, n) on its own goroutine and returns the channel
// its result arrives on.
func startGet(ctx context.Context, w *WriteQuota, n int32) <-chan error {
	res := make(chan error, 1)
	go func() { res <- w.Get(ctx, n) }()
	return res
}

// wantBlocked fails the test if the Get behind res returned within
// shortTimeout.
func wantBlocked(t *testing.T, res <-chan error) {
	t.Helper()
	select {
	case err := <-res:
		t.Fatalf("Get returned %v, want it to block", err)
	case <-time.After(shortTimeout):
	}
}

// wantReturn waits up to longTimeout for the Get behind res and returns its
// error.
func wantReturn(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(longTimeout):
		t.Fatal("Get still blocked")
		return nil
	}
}

func wantQuota(t *testing.T, w *WriteQuota, want int32) {
	t.Helper()
	if got := w.quota.Load(); got != want {
		t.Fatalf("quota = %d, want %d", got, want)
	}
}

func TestWriteQuotaFastPath(t *testing.T) {
	w := NewWriteQuota(10, nil)
	ctx := context.Background()
	if err := w.Get(ctx, 4); err != nil {
		t.Fatal(err)
	}
	wantQuota(t, w, 6)
	// A request larger than what is left still passes and drives the
	// quota negative.
	if err := w.Get(ctx, 100); err != nil {
		t.Fatal(err)
	}
	wantQuota(t, w, -94)
}

func TestWriteQuotaBlocksUntilReplenish(t *testing.T) {
	w := NewWriteQuota(1, nil)
	ctx := context.Background()
	if err := w.Get(ctx, 1); err != nil {
		t.Fatal(err)
	}
	res := startGet(ctx, w, 5)
	wantBlocked(t, res)
	w.Replenish(1)
	if err := wantReturn(t, res); err != nil {
		t.Fatalf("Get after Replenish = %v, want nil", err)
	}
	wantQuota(t, w, -4)
}

func TestWriteQuotaNegative(t *testing.T) {
	w := NewWriteQuota(10, nil)
	ctx := context.Background()
	if err := w.Get(ctx, 110); err != nil {
		t.Fatal(err)
	}
	wantQuota(t, w, -100)
	res := startGet(ctx, w, 1)
	// Replenishing that leaves the quota at or below zero wakes no one.
	w.Replenish(60)
	wantBlocked(t, res)
	w.Replenish(40)
	wantBlocked(t, res)
	w.Replenish(1)
	if err := wantReturn(t, res); err != nil {
		t.Fatalf("Get = %v, want nil", err)
	}
	wantQuota(t, w, 0)
}

func TestWriteQuotaContextCanceled(t *testing.T) {
	w := NewWriteQuota(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	res := startGet(ctx, w, 1)
	wantBlocked(t, res)
	cancel()
	err := wantReturn(t, res)
	if !errors.Is(err, context.Canceled) || err != context.Canceled {
		t.Fatalf("Get = %v, want context.Canceled itself", err)
	}
	wantQuota(t, w, 0)
}

func TestWriteQuotaDeadline(t *testing.T) {
	w := NewWriteQuota(0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	err := wantReturn(t, startGet(ctx, w, 1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want context.DeadlineExceeded", err)
	}
}

func TestWriteQuotaDone(t *testing.T) {
	done := make(chan struct{})
	w := NewWriteQuota(-5, done)
	res := startGet(context.Background(), w, 1)
	wantBlocked(t, res)
	close(done)
	if err := wantReturn(t, res); !errors.Is(err, ErrQuotaClosed) {
		t.Fatalf("Get = %v, want ErrQuotaClosed", err)
	}
	// Already closed: a Get that would block returns at once.
	if err := w.Get(context.Background(), 1); !errors.Is(err, ErrQuotaClosed) {
		t.Fatalf("Get after done = %v, want ErrQuotaClosed", err)
	}
}

func TestWriteQuotaManyWaiters(t *testing.T) {
	w := NewWriteQuota(0, nil)
	ctx := context.Background()
	const waiters = 4
	results := make([]<-chan error, waiters)
	for i := range results {
		results[i] = startGet(ctx, w, 1)
	}
	// Enough for all of them: the first one woken passes the wake-up on.
	w.Replenish(100)
	for _, res := range results {
		if err := wantReturn(t, res); err != nil {
			t.Fatalf("Get = %v, want nil", err)
		}
	}
	wantQuota(t, w, 100-waiters)
}

// TestWriteQuotaStress has an application goroutine take quota while a
// writer goroutine returns it, as with loopy; every byte must pass.
func TestWriteQuotaStress(t *testing.T) {
	const (
		size   = 1000
		chunk  = 64
		chunks = 20000
	)
	w := NewWriteQuota(size, nil)
	queue := make(chan int, chunks)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		for n := range queue {
			w.Replenish(n)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	defer cancel()
	for i := range chunks {
		if err := w.Get(ctx, chunk); err != nil {
			t.Errorf("Get #%d: %v", i, err)
			break
		}
		queue <- chunk
	}
	close(queue)
	wg.Wait()
	wantQuota(t, w, size)
}

func TestWriteQuotaNoAllocs(t *testing.T) {
	w := NewWriteQuota(1<<16, nil)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Get(ctx, 1024); err != nil {
			t.Fatal(err)
		}
		w.Replenish(1024)
	})
	if allocs != 0 {
		t.Fatalf("Get+Replenish allocated %v times per run, want 0", allocs)
	}
}
