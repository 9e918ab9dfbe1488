package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// TestStreamSlotWaitersQueueNothingAndLeaveOnCancel: under the server's
// MAX_CONCURRENT_STREAMS of 1, NewStream waits for a slot before it
// queues anything; waiters whose context is cancelled return CANCELLED
// and never reach the server, and a later call still gets the slot.
func TestStreamSlotWaitersQueueNothingAndLeaveOnCancel(t *testing.T) {
	release := make(chan struct{})
	var waiterCalls atomic.Int32
	ts := newTestServer(t, ServerConfig{MaxConcurrentStreams: 1}, func(s *ServerStream) {
		switch s.Method() {
		case "/test.Slots/Hold":
			<-release
		case "/test.Slots/Waiter":
			waiterCalls.Add(1)
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	var releaseOnce sync.Once
	releaseHold := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseHold) // before the server stops, if the test fails
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	hold, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Slots/Hold"})
	if err != nil {
		t.Fatal(err)
	}
	hold.Write(frameMsg(0), nil, WriteOptions{Last: true})
	sc := ts.conn(0)
	pollUntil(t, "the held call at the server", func() bool { return sc.activeStreams() == 1 })
	pollUntil(t, "the server's limit at the client", func() bool { return c.quota.avail.Load()+quotaBase == 0 })
	const waiters = 300
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Slots/Waiter"})
			if err == nil {
				s.Write(frameMsg(0), nil, WriteOptions{Last: true})
				s.Close(nil)
			}
			errs <- err
		}()
	}
	pollUntil(t, "the waiters to queue", func() bool { return c.quota.nwait.Load() == waiters })
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.Canceled {
			t.Fatalf("cancelled waiter: %v, want CANCELLED", err)
		}
	}
	releaseHold()
	if st := hold.Status(); st.Code() != codes.OK {
		t.Fatalf("held call: %v", st)
	}
	// The slot is free again: a new call runs.
	if _, _, err := unary(rawCtx(t), c, "/test.Slots/After", nil, nil); err != nil {
		t.Fatalf("call after the waiters left: %v", err)
	}
	if n := waiterCalls.Load(); n != 0 {
		t.Fatalf("the server ran %d cancelled waiters", n)
	}
}
