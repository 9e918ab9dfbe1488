package controlbuf

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"golang.org/x/net/http2"
)

// gateConn is a memConn whose writes block while the gate is shut, as a
// socket does when the peer stops reading.
type gateConn struct {
	*memConn
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	blocked chan struct{} // gets a token each time a Write blocks
}

func newGateConn() *gateConn {
	return &gateConn{memConn: newMemConn(), blocked: make(chan struct{}, 1)}
}

func (c *gateConn) shut() {
	c.mu.Lock()
	c.gate = make(chan struct{})
	c.mu.Unlock()
}

func (c *gateConn) open() {
	c.mu.Lock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
	c.mu.Unlock()
}

func (c *gateConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	if g != nil {
		select {
		case c.blocked <- struct{}{}:
		default:
		}
		<-g
	}
	return c.memConn.Write(p)
}

// budgetHarness runs a loopy with a write budget over a gateConn.
func budgetHarness(t *testing.T, size int64) (*harness, *gateConn, *flowcontrol.WriteBudget) {
	t.Helper()
	gc := newGateConn()
	b := flowcontrol.NewWriteBudget(size, nil)
	h := &harness{t: t, buf: NewBuffer(), conn: gc.memConn, runErr: make(chan error, 1)}
	h.loopy = NewLoopy(Config{Buffer: h.buf, Conn: gc, WriteBudget: b})
	h.peer = newPeer(t, gc.memConn, false)
	t.Cleanup(h.close)
	t.Cleanup(gc.open) // before close: loopy must not stay blocked
	h.start()
	return h, gc, b
}

// putBudgeted takes n bytes of b and queues them as a budgeted DataFrame
// on s.
func putBudgeted(h *harness, b *flowcontrol.WriteBudget, s *Stream, n int, end bool) {
	h.t.Helper()
	if err := b.Get(context.Background(), int64(n), nil); err != nil {
		h.t.Fatal(err)
	}
	h.put(&DataFrame{Stream: s, Data: payload(n, 7), EndStream: end, Budgeted: true})
}

func pollOutstanding(t *testing.T, b *flowcontrol.WriteBudget, want int64) {
	t.Helper()
	deadline := time.Now().Add(longTimeout)
	for b.Outstanding() != want {
		if time.Now().After(deadline) {
			t.Fatalf("write budget outstanding %d, want %d", b.Outstanding(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteBudgetReturnedOnlyOnceWritten: loopy gives the write budget
// back for DATA it wrote to the connection, and not for DATA still
// waiting in its batch while the connection's writes block (a peer that
// does not read its socket).
func TestWriteBudgetReturnedOnlyOnceWritten(t *testing.T) {
	h, gc, b := budgetHarness(t, 1<<20)
	s := h.register(1)
	putBudgeted(h, b, s, 1000, false)
	h.readData(1, 1000)
	pollOutstanding(t, b, 0)

	gc.shut()
	putBudgeted(h, b, s, 3000, true)
	<-gc.blocked // loopy tries to write the frame and blocks
	time.Sleep(shortTimeout)
	if got := b.Outstanding(); got != 3000 {
		t.Fatalf("outstanding %d while the write blocks, want 3000", got)
	}
	gc.open()
	h.readData(1, 3000)
	pollOutstanding(t, b, 0)
}

// TestWriteBudgetReturnedWhenDataDropped: budgeted DATA that loopy will
// never write gives its bytes back at once: the unsent rest of a stream
// that is cleaned up (here while the peer's window is shut), and DATA
// that arrives for a stream already closed.
func TestWriteBudgetReturnedWhenDataDropped(t *testing.T) {
	h, _, b := budgetHarness(t, 1<<20)
	h.settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	s := h.register(1)
	putBudgeted(h, b, s, 2500, false)
	putBudgeted(h, b, s, 4000, true)
	h.readData(1, 1000) // the window's worth; 5500 bytes wait
	h.sync()
	if got := b.Outstanding(); got != 5500 {
		t.Fatalf("outstanding %d with the window shut, want 5500", got)
	}
	h.put(&CleanupStream{Stream: s, RST: true, Code: http2.ErrCodeCancel})
	h.peer.expect(http2.FrameRSTStream, 1)
	pollOutstanding(t, b, 0)

	putBudgeted(h, b, s, 700, true) // s is closed now
	h.sync()
	pollOutstanding(t, b, 0)
}

// TestDataWithoutBudgetLeavesItAlone: DATA not marked Budgeted gives
// nothing back, so producers that took no budget cannot inflate it.
func TestDataWithoutBudgetLeavesItAlone(t *testing.T) {
	h, _, b := budgetHarness(t, 1<<20)
	s := h.register(1)
	b.Get(context.Background(), 100, nil)
	h.put(&DataFrame{Stream: s, Data: payload(5000, 1), EndStream: true})
	h.readData(1, 5000)
	h.sync()
	if got := b.Outstanding(); got != 100 {
		t.Fatalf("outstanding %d, want 100", got)
	}
}
