package netfault

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// TestKill9MidStreamAndReconnect: kill -9 of the server process while
// several server-streaming RPCs receive fails every one of them with
// UNAVAILABLE at once; a wait-for-ready RPC then waits while the channel
// retries with backoff (attempts spaced, not a storm), and completes, as
// new RPCs do, once the server process is back on the same address.
func TestKill9MidStreamAndReconnect(t *testing.T) {
	e := newEnv(t)
	e.link.SetRate(4e6, 0) // keep the streams' flow within what 2 cores spare
	srv := e.startServer(serverConfig{})
	cc := e.client()
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	const streams = 4
	var killedAt atomic.Int64
	type result struct {
		err   error
		after time.Duration // from the kill to the error
		bytes int
	}
	results := make(chan result, streams)
	var first sync.WaitGroup
	first.Add(streams)
	for i := range streams {
		s, err := c.Expand(ctx, &echov1.ExpandRequest{Message: fmt.Sprint("stream-", i), Count: 1 << 30, Payload: make([]byte, 1024)})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			n := 0
			for {
				m, err := s.Recv()
				if err != nil {
					if n == 0 {
						first.Done()
					}
					results <- result{err, time.Since(time.Unix(0, killedAt.Load())), n}
					return
				}
				if n == 0 {
					first.Done()
				}
				n += len(m.GetPayload())
			}
		}()
	}
	first.Wait()
	time.Sleep(300 * time.Millisecond) // mid-stream: data flowing on every stream

	killedAt.Store(time.Now().UnixNano())
	srv.kill()
	var slowest time.Duration
	for range streams {
		r := <-results
		slowest = max(slowest, r.after)
		if status.Code(r.err) != codes.Unavailable {
			t.Errorf("open stream (%d bytes received) failed with %v, want UNAVAILABLE", r.bytes, r.err)
		}
		if r.after > 5*time.Second {
			t.Errorf("open stream failed %v after the kill, want at once", r.after)
		}
	}
	t.Logf("kill -9: all %d open streams failed UNAVAILABLE within %v", streams, slowest.Round(time.Millisecond))

	// The channel reconnects when asked; the server stays down a while.
	before := len(e.dials())
	wfr := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctx, &echov1.EchoRequest{Message: "wait-for-ready"}, rpc.WaitForReady(true))
		wfr <- err
	}()
	time.Sleep(3 * time.Second)
	select {
	case err := <-wfr:
		t.Fatalf("wait-for-ready RPC ended while the server was down: %v", err)
	default:
	}
	restarted := time.Now()
	e.startServer(serverConfig{})
	if err := <-wfr; err != nil {
		t.Fatalf("wait-for-ready RPC after the restart: %v", err)
	}
	t.Logf("wait-for-ready RPC completed %v after the restart", time.Since(restarted).Round(time.Millisecond))
	if _, err := c.Unary(ctx, &echov1.EchoRequest{Message: "after"}); err != nil {
		t.Fatalf("new RPC after the restart: %v", err)
	}
	dials := e.dials()[before:]
	gaps := make([]time.Duration, 0, len(dials))
	for i := 1; i < len(dials); i++ {
		gaps = append(gaps, dials[i].Sub(dials[i-1]).Round(time.Millisecond))
	}
	t.Logf("%d connection attempts while the server was down or restarting, gaps %v", len(dials), gaps)
	if len(dials) < 2 {
		t.Errorf("%d connection attempts: the channel did not retry", len(dials))
	}
	// Backoff: base 1 s, jitter ±20 %: no two attempts closer than 0.8 s
	// (0.5 s asserted), and so at most a handful over a few seconds.
	for _, g := range gaps {
		if g < 500*time.Millisecond {
			t.Errorf("attempts %v apart: no backoff (gaps %v)", g, gaps)
			break
		}
	}
}

// TestGracefulStopLosesNoAcknowledgedRPC: many concurrent unary calls
// while the server process gets SIGTERM (GracefulStop): every call the
// client saw succeed was handled exactly once, every call the server
// started completed, and every failed call failed UNAVAILABLE.
func TestGracefulStopLosesNoAcknowledgedRPC(t *testing.T) {
	e := newEnv(t)
	srv := e.startServer(serverConfig{unaryDelay: 20 * time.Millisecond})
	c := echov1.NewEchoClient(e.client())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	const workers = 16
	var ok atomic.Int64
	var mu sync.Mutex
	failures := map[codes.Code]int{}
	var bad []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Unary(ctx, &echov1.EchoRequest{Message: fmt.Sprintf("w%d-%d", w, i)})
				if err == nil {
					ok.Add(1)
					continue
				}
				code := status.Code(err)
				mu.Lock()
				failures[code]++
				if code != codes.Unavailable && len(bad) < 5 {
					bad = append(bad, err)
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // a failing channel fails fast
			}
		}()
	}
	for deadline := time.Now().Add(testTimeout / 2); ok.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	atTerm := ok.Load()
	if err := srv.term(); err != nil {
		t.Errorf("server process: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // calls keep failing on the stopped server
	close(stop)
	wg.Wait()

	line, found := srv.waitLine("tally ", 0)
	if !found {
		t.Fatal("the server process printed no tally")
	}
	var started, completed, unique int64
	if _, err := fmt.Sscanf(line, "tally started=%d completed=%d unique=%d", &started, &completed, &unique); err != nil {
		t.Fatalf("tally %q: %v", line, err)
	}
	t.Logf("GracefulStop under load: %d calls succeeded (%d before SIGTERM), failures by code %v; server started %d, completed %d, distinct %d",
		ok.Load(), atTerm, failures, started, completed, unique)
	if started != completed {
		t.Errorf("server started %d calls but completed %d: in-flight calls were cut", started, completed)
	}
	if unique != completed {
		t.Errorf("server completed %d calls but only %d distinct ones", completed, unique)
	}
	if ok.Load() != completed {
		t.Errorf("client saw %d calls succeed, server completed %d", ok.Load(), completed)
	}
	for _, err := range bad {
		t.Errorf("a call failed with %v, want UNAVAILABLE", err)
	}
}
