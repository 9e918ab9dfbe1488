package oauth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStaticToken(t *testing.T) {
	c := NewStaticToken("abc")
	md, err := c.GetRequestMetadata(context.Background(), "https://h/s")
	if err != nil || md["authorization"] != "Bearer abc" || len(md) != 1 {
		t.Fatalf("metadata %v, %v", md, err)
	}
	if !c.RequireTransportSecurity() {
		t.Error("a bearer token may go over plaintext")
	}
}

// fakeClock is a settable now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestTokenSourceCachesUntilShortlyBeforeExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var n atomic.Int32
	src := TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		i := n.Add(1)
		return "tok-" + string(rune('0'+i)), clock.now().Add(time.Minute), nil
	})
	c := NewTokenSource(src).(*refreshing)
	c.now = clock.now
	get := func() string {
		t.Helper()
		md, err := c.GetRequestMetadata(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return md["authorization"]
	}
	if got := get(); got != "Bearer tok-1" {
		t.Fatalf("first token %q", got)
	}
	clock.add(time.Minute - RefreshMargin - time.Second)
	if got := get(); got != "Bearer tok-1" {
		t.Errorf("token before the refresh margin %q, want the cached one", got)
	}
	clock.add(time.Second)
	if got := get(); got != "Bearer tok-2" {
		t.Errorf("token within the refresh margin %q, want a new one", got)
	}
	if n.Load() != 2 {
		t.Errorf("%d fetches, want 2", n.Load())
	}
	if !c.RequireTransportSecurity() {
		t.Error("tokens may go over plaintext")
	}
}

func TestTokenSourceRefreshesOnceForConcurrentCalls(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var n atomic.Int32
	src := TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		n.Add(1)
		entered <- struct{}{}
		<-release
		return "shared", time.Time{}, nil
	})
	c := NewTokenSource(src).(*refreshing)
	const callers = 8
	var wg sync.WaitGroup
	got := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			md, err := c.GetRequestMetadata(context.Background())
			if err != nil {
				got <- err.Error()
				return
			}
			got <- md["authorization"]
		}()
	}
	<-entered
	// Every other caller is waiting for the one refresh under way.
	for i := 0; c.waiting.Load() < callers-1; i++ {
		if i > 10000 {
			t.Fatalf("%d callers waiting, want %d", c.waiting.Load(), callers-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(got)
	for v := range got {
		if v != "Bearer shared" {
			t.Errorf("a caller got %q", v)
		}
	}
	if n.Load() != 1 {
		t.Errorf("%d fetches for %d concurrent callers, want 1", n.Load(), callers)
	}
}

func TestTokenSourceWaiterHonoursItsContext(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	src := TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		close(entered)
		<-release
		return "late", time.Time{}, nil
	})
	c := NewTokenSource(src)
	first := make(chan error, 1)
	go func() {
		_, err := c.GetRequestMetadata(context.Background())
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetRequestMetadata(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled context: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestTokenSourceErrors(t *testing.T) {
	boom := errors.New("token endpoint down")
	var fail atomic.Bool
	fail.Store(true)
	c := NewTokenSource(TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		if fail.Load() {
			return "", time.Time{}, boom
		}
		return "", time.Time{}, nil // empty
	}))
	if _, err := c.GetRequestMetadata(context.Background()); !errors.Is(err, boom) {
		t.Errorf("error %v, want it to wrap the source's", err)
	}
	fail.Store(false)
	if _, err := c.GetRequestMetadata(context.Background()); !errors.Is(err, ErrEmptyToken) {
		t.Errorf("error %v, want ErrEmptyToken", err)
	}
}

// TestTokenSourcePanicDoesNotWedgeLaterCalls: a TokenSource that panics
// (recovered up the caller's stack, as net/http does for a handler)
// leaves no refresh marked under way: the next call fetches a token
// instead of waiting for a refresh that will never end.
func TestTokenSourcePanicDoesNotWedgeLaterCalls(t *testing.T) {
	var n atomic.Int32
	c := NewTokenSource(TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		if n.Add(1) == 1 {
			panic("token source bug")
		}
		return "tok", time.Time{}, nil
	}))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the token source's panic did not reach the caller")
			}
		}()
		c.GetRequestMetadata(context.Background())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := c.GetRequestMetadata(ctx)
	if err != nil || md["authorization"] != "Bearer tok" {
		t.Fatalf("call after the panic: %v, %v", md, err)
	}
}
