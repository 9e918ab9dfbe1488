package rpc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testhook"
)

// TestCallsCrossStreamIDDrainOnNewConnections: with connections that
// drain after a few streams (ids start near the drain point), dozens of
// sequential and concurrent calls all succeed, moving to new connections
// as the old ones drain.
func TestCallsCrossStreamIDDrainOnNewConnections(t *testing.T) {
	testhook.ClientStreamsBeforeDrain.Store(5)
	t.Cleanup(func() { testhook.ClientStreamsBeforeDrain.Store(0) })
	_, addr := startServer(t, &testService{})
	var dials atomic.Int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	_, c := dial(t, addr, WithContextDialer(dialer), WithLogger(discardLogger()))
	ctx := ctxWait(t)
	for i := range 24 {
		if _, err := c.Unary(ctx, wrapperspb.Bytes([]byte{byte(i)})); err != nil {
			t.Fatalf("sequential call %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 48)
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Unary(ctx, wrapperspb.Bytes([]byte{byte(i)})); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	if n := dials.Load(); n < 2 {
		t.Errorf("%d connections used, want more than one", n)
	}
}
