package rpc

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// badServer accepts loopback connections and runs serve on each (on a
// goroutine of its own), then closes it; it counts the connections.
func badServer(t *testing.T, serve func(net.Conn)) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), accepted
}

// TestReconnectBacksOffAgainstBadServers: against a server that accepts
// and hangs up, answers garbage, or never answers, the channel makes one
// attempt per backoff step (not thousands a second), sits in
// TRANSIENT_FAILURE, and fail-fast calls get UNAVAILABLE saying why.
func TestReconnectBacksOffAgainstBadServers(t *testing.T) {
	const window = 2 * time.Second
	// Attempts start at 0, then 100 ms, 160 ms, 256 ms, 410 ms, 655 ms,
	// ... (±20%) apart, each lasting at least the connect timeout:
	// about 6 in 2 s. The bound leaves room for slow machines, not for
	// a loop without backoff.
	const maxAttempts = 8
	silent := func(c net.Conn) {
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return // the client hung up
			}
		}
	}
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		cause string
	}{
		{"accept and close", func(net.Conn) {}, "closed before the server's SETTINGS"},
		{"garbage", func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, "closed before the server's SETTINGS"},
		{"never answers", silent, "no SETTINGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := badServer(t, tc.serve)
			cc, c := dial(t, addr, WithLogger(discardLogger()), WithConnectParams(ConnectParams{
				Backoff:           BackoffConfig{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second},
				MinConnectTimeout: 200 * time.Millisecond,
			}))
			// Fail-fast calls keep coming while the channel fails (the
			// storm was made of a connection per call).
			ctx := ctxWait(t)
			stop := time.Now().Add(window)
			for time.Now().Before(stop) {
				c.Unary(ctx, wrapperspb.Bytes(nil))
				time.Sleep(5 * time.Millisecond)
			}
			n := accepted.Load()
			if n > maxAttempts {
				t.Errorf("%d connections in %v, want at most %d (backoff)", n, window, maxAttempts)
			}
			if n < 2 {
				t.Errorf("%d connections in %v: the channel did not retry", n, window)
			}
			if s := cc.State(); s != TransientFailure {
				t.Errorf("state %v while failing, want TRANSIENT_FAILURE", s)
			}
			_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
			if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), tc.cause) {
				t.Errorf("fail-fast call: %v, want UNAVAILABLE saying %q", err, tc.cause)
			}
		})
	}
}

// TestReadyThenDeadConnectionDoesNotReconnectByItself: a server that
// sends its SETTINGS and hangs up makes the connection READY, then lost:
// the channel goes IDLE and, as in grpc-go, reconnects only when a call
// asks, not in a loop of its own.
func TestReadyThenDeadConnectionDoesNotReconnectByItself(t *testing.T) {
	settings := []byte{0, 0, 0, 4, 0, 0, 0, 0, 0} // an empty SETTINGS frame
	addr, accepted := badServer(t, func(c net.Conn) {
		c.Write(settings)
		// Hang up with FIN, reading what the client sent: closing with
		// its preface unread would reset the connection, and the client
		// might then lose our SETTINGS and count a failed attempt.
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	cc, _ := dial(t, addr, WithLogger(discardLogger()), WithConnectParams(ConnectParams{
		Backoff: BackoffConfig{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second},
	}))
	cc.Connect()
	ctx := ctxWait(t)
	for s := cc.State(); s != Idle; s = cc.State() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("channel never went IDLE after the connection died (state %v)", s)
		}
	}
	time.Sleep(500 * time.Millisecond) // room for a reconnect loop to show
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections without any call, want 1", n)
	}
}
