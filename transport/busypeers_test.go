package transport

// Two h2rpc peers that both send as fast as they can must never stop
// reading because of work they queued themselves.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// busySocketBuffer is the kernel buffer size of both ends in
// TestBusyPeersDoNotDeadlock: small, so that a writer blocks in the
// kernel as soon as its peer stops reading.
const busySocketBuffer = 96 << 10

// withSocketBuffers sets a TCP connection's kernel send and receive
// buffers to n bytes.
func withSocketBuffers(c net.Conn, n int) (net.Conn, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if err := tc.SetReadBuffer(n); err != nil {
		return nil, err
	}
	if err := tc.SetWriteBuffer(n); err != nil {
		return nil, err
	}
	return c, nil
}

// TestBusyPeersDoNotDeadlock runs a few hundred bidi streams between an
// h2rpc client and server over sockets with small buffers, each stream
// echoing several 64 KiB messages both ways at once. Both sides then
// queue many window updates of their own while their writers block in
// the kernel; if that work throttled the readers, both readers would stop
// and the connection would hang for good.
func TestBusyPeersDoNotDeadlock(t *testing.T) {
	const (
		streams = 400
		msgs    = 8
		msgSize = 64 << 10
		// Small stream windows make many window updates; a connection
		// window larger than both socket buffers lets the writers fill
		// them.
		window     = 64 << 10
		connWindow = 16 << 20
	)
	prepare := func(c net.Conn) (net.Conn, error) { return withSocketBuffers(c, busySocketBuffer) }
	ts := newTestServerWith(t, ServerConfig{MaxConcurrentStreams: streams, InitialWindowSize: window, InitialConnWindowSize: connWindow}, echoHandler, prepare)
	c := newTestClient(t, ts.addr(), ConnectOptions{
		InitialWindowSize:     window,
		InitialConnWindowSize: connWindow,
		Dialer: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return withSocketBuffers(conn, busySocketBuffer)
		},
	})

	// The watchdog: a hang fails the test with every goroutine's stack.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	payload := func(i, j int) []byte {
		return bytes.Repeat([]byte{byte(i), byte(j)}, msgSize/2)
	}
	var wg sync.WaitGroup
	var completed atomic.Int32
	errs := make(chan error, 2*streams)
	for i := range streams {
		s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Bidi"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { // sender
			defer wg.Done()
			for j := range msgs {
				if err := s.Write(frameMsg(msgSize), payload(i, j), WriteOptions{Last: j == msgs-1}); err != nil {
					errs <- fmt.Errorf("stream %d: write %d: %w", i, j, err)
					return
				}
			}
		}()
		go func() { // receiver
			defer wg.Done()
			for j := range msgs {
				m, err := readMsg(s)
				if err != nil {
					errs <- fmt.Errorf("stream %d: read %d: %w", i, j, err)
					return
				}
				if !bytes.Equal(m, payload(i, j)) {
					errs <- fmt.Errorf("stream %d: message %d corrupted", i, j)
					return
				}
			}
			if _, err := readMsg(s); err == nil {
				errs <- fmt.Errorf("stream %d: more messages than sent", i)
				return
			}
			if st := s.Status(); st.Code() != codes.OK {
				errs <- fmt.Errorf("stream %d: status %v", i, st)
				return
			}
			completed.Add(1)
		}()
	}

	allDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-ctx.Done():
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("hung: %d of %d streams completed; goroutines:\n%s", completed.Load(), streams, buf)
		c.Close(nil) // unblocks every stream so the test can end
		<-allDone
	}
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if got := completed.Load(); got != streams {
		t.Errorf("%d of %d streams completed", got, streams)
	}
}
