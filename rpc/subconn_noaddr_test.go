package rpc

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// TestSubConnWithoutAddressesFailsItsAttempt: a balancer of its own that
// empties a subchannel's address list (through UpdateAddresses, as
// pick_first reaches it) and then connects it gets a failed attempt
// (TRANSIENT_FAILURE, then backoff), not a nil transport made READY that
// crashes the process; given an address again, the subchannel connects.
func TestSubConnWithoutAddressesFailsItsAttempt(t *testing.T) {
	bk := startBackend(t, "127.0.0.1")
	cc, c, b := ctlClientAt(t, bk.addr)
	u := b.sc.(interface{ UpdateAddresses([]resolver.Address) })
	// READY to IDLE (its address left the list), and ctlBalancer
	// connects an IDLE subchannel at once: an attempt over no address.
	cc.ser.run(func() { u.UpdateAddresses(nil) })
	sc := b.sc.(*subConn)
	ctx := ctxWait(t)
	for {
		sc.mu.Lock()
		st := sc.state
		sc.mu.Unlock()
		if st == connectivity.TransientFailure {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the subchannel without addresses is %v, want TRANSIENT_FAILURE", st)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cc.ser.run(func() { u.UpdateAddresses([]resolver.Address{{Addr: bk.addr}}) })
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
}
