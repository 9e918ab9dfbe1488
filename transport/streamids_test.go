package transport

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/h2rpc/h2rpc/internal/testhook"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// streamsBeforeDrain sets testhook.ClientStreamsBeforeDrain for the test.
func streamsBeforeDrain(t *testing.T, n int32) {
	testhook.ClientStreamsBeforeDrain.Store(n)
	t.Cleanup(func() { testhook.ClientStreamsBeforeDrain.Store(0) })
}

// TestClientDrainsWhenStreamIDsRunLow: a connection whose stream ids pass
// the drain point takes no new stream (NewStream fails UNAVAILABLE before
// anything is sent), tells its watcher it went away, lets the streams it
// took finish, and then closes.
func TestClientDrainsWhenStreamIDsRunLow(t *testing.T) {
	const n = 3
	streamsBeforeDrain(t, n)
	started := make(chan struct{}, n+1)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		started <- struct{}{}
		<-release
		echoHandler(s)
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	t.Cleanup(releaseAll) // before the server's stop, which waits for handlers
	var wentAway, closed atomic.Bool
	c.Watch(func() { wentAway.Store(true) }, func() { closed.Store(true) })
	ctx := rawCtx(t)
	var open []*ClientStream
	for i := range n {
		s, err := c.NewStream(ctx, &CallHdr{Method: echoMethod})
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if err := s.Write(frameMsg(1), []byte{byte(i)}, WriteOptions{Last: true}); err != nil {
			t.Fatalf("stream %d: Write: %v", i, err)
		}
		rawRecv(t, started, "a handler")
		open = append(open, s)
	}
	if wentAway.Load() {
		t.Fatal("connection went away before its ids ran low")
	}
	for range 2 {
		if _, err := c.NewStream(ctx, &CallHdr{Method: echoMethod}); status.Code(err) != codes.Unavailable {
			t.Fatalf("NewStream past the drain point: %v, want UNAVAILABLE", err)
		}
	}
	if !wentAway.Load() {
		t.Error("the watcher was not told the connection went away")
	}
	select {
	case <-c.Done():
		t.Fatal("connection closed under open streams")
	default:
	}
	releaseAll()
	for i, s := range open {
		m, err := readMsg(s)
		if err != nil || !bytes.Equal(m, []byte{byte(i)}) {
			t.Errorf("stream %d: read %v, %v", i, m, err)
		}
		if st := s.Status(); st.Code() != codes.OK {
			t.Errorf("stream %d: status %v, want OK", i, st)
		}
	}
	waitClosed(t, c.Done(), "drained connection")
	if !closed.Load() {
		t.Error("the watcher was not told the connection closed")
	}
	select {
	case <-started:
		t.Error("a stream past the drain point reached the server")
	default:
	}
}
