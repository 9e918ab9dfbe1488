//go:build linux

package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// bystander is a well-behaved h2rpc client on a connection of its own:
// it makes 1 KiB UnaryCalls back to back and records how each went.
type bystander struct {
	cc     *rpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	latencies []time.Duration
	failed    int
	lastErr   error
}

// callTimeout bounds one bystander call: a call slower than this counts
// as failed.
const callTimeout = 10 * time.Second

func startBystander(addr string) (*bystander, error) {
	cc, err := rpc.NewClient(addr, rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bystander{cc: cc, cancel: cancel, done: make(chan struct{})}
	client := testpb.NewTestServiceClient(cc)
	req := &testpb.SimpleRequest{
		ResponseSize: 1024,
		Payload:      &testpb.Payload{Body: make([]byte, 1024)},
	}
	go func() {
		defer close(b.done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, callTimeout)
			start := time.Now()
			_, err := client.UnaryCall(cctx, req)
			lat := time.Since(start)
			ccancel()
			if ctx.Err() != nil {
				return // stopped mid-call: not the server's fault
			}
			b.mu.Lock()
			if err != nil {
				b.failed++
				b.lastErr = err
			} else {
				b.latencies = append(b.latencies, lat)
			}
			b.mu.Unlock()
			if err != nil {
				time.Sleep(10 * time.Millisecond) // no hot loop on a dead server
			}
		}
	}()
	return b, nil
}

// reset forgets what was recorded so far (the warm-up).
func (b *bystander) reset() {
	b.mu.Lock()
	b.latencies, b.failed, b.lastErr = b.latencies[:0], 0, nil
	b.mu.Unlock()
}

// okCount returns the calls that succeeded since the last reset.
func (b *bystander) okCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.latencies)
}

// bystanderStats sums up the calls of one attack.
type bystanderStats struct {
	ok, failed int
	p50, p99   time.Duration
	lastErr    error
}

func (b *bystander) stats() bystanderStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := bystanderStats{ok: len(b.latencies), failed: b.failed, lastErr: b.lastErr}
	if len(b.latencies) > 0 {
		l := slices.Clone(b.latencies)
		slices.Sort(l)
		s.p50 = l[len(l)*50/100]
		s.p99 = l[min(len(l)-1, len(l)*99/100)]
	}
	return s
}

// stop ends the calls and closes the connection.
func (b *bystander) stop() {
	b.cancel()
	<-b.done
	b.cc.Close()
}
