package rpc

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// TestPickFirstMovesPastAnAddressThatSwallowsConnections: pick_first over
// [an address that accepts connections and never answers, a good one]
// reaches the good one. Each address has its own connect timeout; with
// one timeout for the whole list, the first address used it all up and
// the second was never dialled, attempt after attempt.
func TestPickFirstMovesPastAnAddressThatSwallowsConnections(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
		for _, c := range held {
			c.Close()
		}
	})
	good := startBackend(t, "127.0.0.2")
	_, cc, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: lis.Addr().String()}, {Addr: good.addr}}}, fastBackoff)
	// fastBackoff's connect timeout is 1 s: the good address is dialled
	// about 1 s in.
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatalf("pick_first never reached the second address: %v; state %v, good backend hits %d", err, cc.GetState(), good.hits.Load())
	}
}

// TestPickFirstAddressUpdateRestartsAConnectingSubchannel: while
// pick_first's subchannel is still CONNECTING to an address that never
// answers (it accepts and stays silent, or it never accepts), a resolver
// update that drops that address makes the subchannel start over on the
// new list: a wait-for-ready call reaches the new address at once, not
// after the connect timeout (200 s here).
func TestPickFirstAddressUpdateRestartsAConnectingSubchannel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (addr string, dialled *atomic.Int64, opts []DialOption)
	}{
		{"accepts and stays silent", func(t *testing.T) (string, *atomic.Int64, []DialOption) {
			addr, accepted := badServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
			return addr, accepted, nil
		}},
		{"never accepts", func(t *testing.T) (string, *atomic.Int64, []DialOption) {
			const blackhole = "127.0.0.1:1"
			dialled := new(atomic.Int64)
			dialer := func(ctx context.Context, addr string) (net.Conn, error) {
				if addr == blackhole {
					dialled.Add(1)
					<-ctx.Done()
					return nil, ctx.Err()
				}
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			}
			return blackhole, dialled, []DialOption{WithContextDialer(dialer)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stuck, dialled, opts := tc.setup(t)
			good := startBackend(t, "127.0.0.2")
			opts = append(opts, WithMinConnectTimeout(10*longWait))
			r, cc, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: stuck}}}, opts...)
			cc.Connect()
			waitFor(t, "the attempt is dialling the address that never answers", func() bool { return dialled.Load() > 0 })
			if err := r.UpdateState(resolver.State{Addresses: addrsOf(good)}); err != nil {
				t.Fatal(err)
			}
			// Far shorter than the connect timeout: the call fails
			// unless the attempt started over.
			ctx, cancel := context.WithTimeout(context.Background(), longWait/2)
			defer cancel()
			if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
				t.Fatalf("call after the address update: %v; state %v", err, cc.GetState())
			}
			if good.hits.Load() != 1 {
				t.Errorf("the new address got %d calls, want 1", good.hits.Load())
			}
		})
	}
}

// TestPickFirstEmptyAddressListFailsUntilAddressesReturn: a READY
// pick_first channel whose resolver now gives no address goes
// TRANSIENT_FAILURE;
// fail-fast calls fail UNAVAILABLE, a wait-for-ready call waits and
// succeeds once an address is back.
func TestPickFirstEmptyAddressListFailsUntilAddressesReturn(t *testing.T) {
	good := startBackend(t, "127.0.0.1")
	r, cc, c := manualClient(t, &resolver.State{Addresses: addrsOf(good)})
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	// The channel applies states asynchronously: the rejection
	// (ErrBadResolverState) shows as a ResolveNow, not here.
	if err := r.UpdateState(resolver.State{}); err != nil {
		t.Fatal(err)
	}
	for s := cc.GetState(); s != connectivity.TransientFailure; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("channel %v with no address, want TRANSIENT_FAILURE", s)
		}
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	short, cancel := context.WithTimeout(ctx, shortWait)
	defer cancel()
	_, err = c.Unary(short, wrapperspb.Bytes(nil), WaitForReady(true))
	wantCode(t, err, codes.DeadlineExceeded)
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true))
		waiting <- err
	}()
	if err := r.UpdateState(resolver.State{Addresses: addrsOf(good)}); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("wait-for-ready call once the address is back: %v", err)
	}
}
