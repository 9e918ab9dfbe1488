package rpc

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

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
