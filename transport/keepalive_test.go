package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// setKeepaliveMinimums lowers keepalive's minimum ping intervals for one
// test and restores them when it ends. Call it before the test starts any
// connection: cleanups run last-in first-out, so the connections (and
// their keepalive goroutines, which read the minimums) are gone before
// the values are restored.
func setKeepaliveMinimums(t *testing.T, client, server time.Duration) {
	t.Helper()
	oldC, oldS := keepalive.MinClientTime, keepalive.MinServerTime
	keepalive.MinClientTime, keepalive.MinServerTime = client, server
	t.Cleanup(func() { keepalive.MinClientTime, keepalive.MinServerTime = oldC, oldS })
}

// quietLogger drops transport logs a test provokes on purpose.
var quietLogger = slog.New(slog.DiscardHandler)

// frameSniffer counts the frames read through a connection: the server
// side of a test wraps its connection with it to see what the client
// sent. Only one goroutine reads; the counts are safe to read from any.
type frameSniffer struct {
	net.Conn
	preface int    // client preface bytes still to skip
	hdr     []byte // a partial frame header
	payload int    // payload bytes of the current frame still to skip
	mu      sync.Mutex
	pings   int // PING frames without ACK
}

func sniffServerConn(c net.Conn) (*frameSniffer, error) {
	return &frameSniffer{Conn: c, preface: len(http2.ClientPreface)}, nil
}

func (f *frameSniffer) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.feed(p[:n])
	return n, err
}

func (f *frameSniffer) feed(b []byte) {
	for len(b) > 0 {
		switch {
		case f.preface > 0:
			k := min(f.preface, len(b))
			f.preface -= k
			b = b[k:]
		case f.payload > 0:
			k := min(f.payload, len(b))
			f.payload -= k
			b = b[k:]
		default:
			k := min(http2FrameHeaderLen-len(f.hdr), len(b))
			f.hdr = append(f.hdr, b[:k]...)
			b = b[k:]
			if len(f.hdr) < http2FrameHeaderLen {
				return
			}
			h := f.hdr
			f.payload = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
			if http2.FrameType(h[3]) == http2.FramePing && http2.Flags(h[4])&http2.FlagPingAck == 0 {
				f.mu.Lock()
				f.pings++
				f.mu.Unlock()
			}
			f.hdr = f.hdr[:0]
		}
	}
}

func (f *frameSniffer) pingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings
}

// sniffingServer starts a test server whose connections count the PINGs
// they read; sniffers receives each connection's sniffer.
func sniffingServer(t *testing.T, cfg ServerConfig, handler func(*ServerStream)) (*testServer, <-chan *frameSniffer) {
	sniffers := make(chan *frameSniffer, 10)
	ts := newTestServerWith(t, cfg, handler, func(c net.Conn) (net.Conn, error) {
		f, err := sniffServerConn(c)
		sniffers <- f
		return f, err
	})
	return ts, sniffers
}

// silentServer accepts one connection, completes the HTTP/2 handshake
// (reads the preface and SETTINGS, sends SETTINGS and its ack) and then
// never answers anything: it reads and drops frames until the connection
// closes. The returned channel yields the number of PINGs it ignored.
func silentServer(t *testing.T) (addr string, pings <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan int, 1)
	done := make(chan struct{})
	var conn net.Conn
	var mu sync.Mutex
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			out <- 0
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		c.SetDeadline(time.Now().Add(longWait))
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil {
			out <- 0
			return
		}
		fr := http2.NewFramer(c, c)
		if err := fr.WriteSettings(); err != nil {
			out <- 0
			return
		}
		n, acked := 0, false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				out <- n
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && !acked {
					acked = true
					fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					n++
				}
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-done
	})
	return ln.Addr().String(), out
}

// waitClosed waits (long) for ch to close.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(longWait):
		t.Fatalf("%s: not closed within %v", what, longWait)
	}
}

func TestKeepaliveClientDetectsSilentServer(t *testing.T) {
	kp := keepalive.ClientParameters{Time: 50 * time.Millisecond, Timeout: 100 * time.Millisecond, PermitWithoutStream: true}
	for _, withStream := range []bool{false, true} {
		name := "idle"
		if withStream {
			name = "open stream"
		}
		t.Run(name, func(t *testing.T) {
			setKeepaliveMinimums(t, time.Millisecond, time.Millisecond)
			addr, pings := silentServer(t)
			start := time.Now()
			c := newTestClient(t, addr, ConnectOptions{Keepalive: kp, Logger: quietLogger})
			var s *ClientStream
			if withStream {
				var err error
				s, err = c.NewStream(context.Background(), &CallHdr{Method: "/test.Echo/Wait"})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Write(frameMsg(1), []byte{1}, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			waitClosed(t, c.Done(), "client transport")
			elapsed := time.Since(start)
			if !errors.Is(c.Err(), keepalive.ErrKeepaliveTimeout) {
				t.Fatalf("Err() = %v, want it to wrap keepalive.ErrKeepaliveTimeout", c.Err())
			}
			// Nothing was read for Time + Timeout before the close, and
			// the last read came after start.
			if min := kp.Time + kp.Timeout; elapsed < min {
				t.Errorf("closed after %v, before Time + Timeout = %v", elapsed, min)
			}
			if n := <-pings; n < 1 {
				t.Errorf("the server saw %d PINGs, want at least 1", n)
			}
			t.Logf("silent server detected after %v", elapsed.Round(time.Millisecond))

			// Everything that fails afterwards fails UNAVAILABLE.
			if s != nil {
				if st := s.Status(); st.Code() != codes.Unavailable {
					t.Errorf("open stream status %v, want UNAVAILABLE", st)
				}
				// A write on an ended stream is io.EOF; reads give the status.
				if err := s.Write(frameMsg(1), []byte{2}, WriteOptions{}); err != io.EOF {
					t.Errorf("Write after keepalive close: %v, want io.EOF", err)
				}
				if _, err := s.Read(make([]byte, 1)); status.Code(err) != codes.Unavailable {
					t.Errorf("Read after keepalive close: %v, want UNAVAILABLE", err)
				}
			}
			if _, err := c.NewStream(context.Background(), &CallHdr{Method: "/test.Echo/Unary"}); status.Code(err) != codes.Unavailable {
				t.Errorf("NewStream after keepalive close: %v, want UNAVAILABLE", err)
			}
		})
	}
}

func TestKeepaliveServerClosesSilentClient(t *testing.T) {
	setKeepaliveMinimums(t, time.Millisecond, time.Millisecond)
	kp := keepalive.ServerParameters{Time: 50 * time.Millisecond, Timeout: 100 * time.Millisecond}
	ts := newTestServer(t, ServerConfig{Keepalive: kp, Logger: quietLogger}, echoHandler)

	// A raw client: the preface and SETTINGS, then silence. It reads what
	// the server sends, but never answers.
	start := time.Now()
	conn, err := net.Dial("tcp", ts.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(longWait))
	fr := http2.NewFramer(conn, conn)
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	pings := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the server did not close the connection: %v", err)
			}
			break
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			pings++
		}
	}
	elapsed := time.Since(start)
	if pings < 1 {
		t.Errorf("the server sent %d PINGs before closing, want at least 1", pings)
	}
	sc := ts.conn(0)
	waitClosed(t, sc.Done(), "server transport")
	if !errors.Is(sc.Err(), keepalive.ErrKeepaliveTimeout) {
		t.Errorf("server Err() = %v, want it to wrap keepalive.ErrKeepaliveTimeout", sc.Err())
	}
	if min := kp.Time + kp.Timeout; elapsed < min {
		t.Errorf("closed after %v, before Time + Timeout = %v", elapsed, min)
	}
	t.Logf("silent client closed after %v, %d PINGs", elapsed.Round(time.Millisecond), pings)
}

func TestKeepaliveTooManyPings(t *testing.T) {
	setKeepaliveMinimums(t, time.Millisecond, time.Millisecond)
	// The server's default policy: MinTime 5 minutes, no pings without
	// streams.
	ts, sniffers := sniffingServer(t, ServerConfig{Logger: quietLogger}, echoHandler)
	kp := keepalive.ClientParameters{Time: 10 * time.Millisecond, Timeout: time.Second, PermitWithoutStream: true}
	c := newTestClient(t, ts.addr(), ConnectOptions{Keepalive: kp, Logger: quietLogger})

	waitClosed(t, c.GoAway(), "GoAway")
	reason, debug := c.GoAwayReason()
	if reason != GoAwayTooManyPings || debug != keepalive.TooManyPingsDebugData {
		t.Errorf("GoAwayReason() = %v, %q; want GoAwayTooManyPings, %q", reason, debug, keepalive.TooManyPingsDebugData)
	}
	waitClosed(t, c.Done(), "client transport")
	waitClosed(t, ts.conn(0).Done(), "server transport")
	// The first ping is free, then MaxPingStrikes are forgiven: the
	// next one is too many.
	if n, want := (<-sniffers).pingCount(), keepalive.MaxPingStrikes+2; n != want {
		t.Errorf("the server read %d PINGs before GOAWAY, want %d", n, want)
	}
	// The caller reconnects with the backed-off parameters.
	if got := kp.Backoff().Time; got != 2*kp.Time {
		t.Errorf("Backoff().Time = %v, want %v", got, 2*kp.Time)
	}
	if got := kp.Backoff().Backoff().Time; got != 4*kp.Time {
		t.Errorf("Backoff twice: Time = %v, want %v", got, 4*kp.Time)
	}
	if _, err := c.NewStream(context.Background(), &CallHdr{Method: "/test.Echo/Unary"}); status.Code(err) != codes.Unavailable {
		t.Errorf("NewStream after GOAWAY: %v, want UNAVAILABLE", err)
	}
}

func TestKeepaliveWithinPolicyKeepsConnection(t *testing.T) {
	setKeepaliveMinimums(t, time.Millisecond, time.Millisecond)
	policy := keepalive.EnforcementPolicy{MinTime: 20 * time.Millisecond}
	ts, sniffers := sniffingServer(t, ServerConfig{KeepalivePolicy: policy}, echoHandler)
	// Pings only while a stream is open, at least Time apart: each ping
	// follows Time of silence after the previous ack, so the server sees
	// them more than Time > MinTime apart however the goroutines are
	// scheduled.
	kp := keepalive.ClientParameters{Time: 50 * time.Millisecond, Timeout: longWait}
	c := newTestClient(t, ts.addr(), ConnectOptions{Keepalive: kp})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()

	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Bidi"})
	if err != nil {
		t.Fatal(err)
	}
	echo := func(msg string) {
		t.Helper()
		if err := s.Write(frameMsg(len(msg)), []byte(msg), WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if m, err := readMsg(s); err != nil || string(m) != msg {
			t.Fatalf("echo %q: %q, %v", msg, m, err)
		}
	}
	echo("before")
	sn := <-sniffers
	// Several ping intervals: one BDP ping (the echo's DATA triggered it)
	// and at least five keepalive pings.
	const wantPings = 6
	for deadline := time.Now().Add(longWait); sn.pingCount() < wantPings; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d keepalive PINGs within %v", sn.pingCount(), longWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	echo("after")
	select {
	case <-c.GoAway():
		r, d := c.GoAwayReason()
		t.Fatalf("GOAWAY %v %q for pings within the policy", r, d)
	case <-c.Done():
		t.Fatalf("connection closed: %v", c.Err())
	default:
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatalf("stream status %v", st)
	}
}

func TestKeepaliveMaxConnectionIdle(t *testing.T) {
	const idle = 100 * time.Millisecond
	ts := newTestServer(t, ServerConfig{Keepalive: keepalive.ServerParameters{MaxConnectionIdle: idle}}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	start := time.Now()
	if _, _, err := unary(ctx, c, "/test.Echo/Unary", []byte("hi"), nil); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c.GoAway(), "GoAway")
	if elapsed := time.Since(start); elapsed < idle {
		t.Errorf("GOAWAY after %v, before MaxConnectionIdle %v", elapsed, idle)
	}
	if r, d := c.GoAwayReason(); r != GoAwayNoReason || d != keepalive.DrainMaxIdle {
		t.Errorf("GoAwayReason() = %v, %q; want GoAwayNoReason, %q", r, d, keepalive.DrainMaxIdle)
	}
	if _, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Unary"}); status.Code(err) != codes.Unavailable {
		t.Errorf("NewStream after GOAWAY: %v, want UNAVAILABLE", err)
	}
	waitClosed(t, c.Done(), "client transport")
	waitClosed(t, ts.conn(0).Done(), "server transport")
	if !errors.Is(c.Err(), ErrConnClosing) {
		t.Errorf("client Err() = %v, want ErrConnClosing", c.Err())
	}
}

func TestKeepaliveMaxConnectionAgeGrace(t *testing.T) {
	const age, grace = 100 * time.Millisecond, 300 * time.Millisecond
	started := make(chan struct{}, 1)
	ts := newTestServer(t, ServerConfig{Keepalive: keepalive.ServerParameters{MaxConnectionAge: age, MaxConnectionAgeGrace: grace}},
		func(s *ServerStream) {
			started <- struct{}{}
			// Outlive the grace period: read until the stream fails.
			for {
				if _, err := readMsg(s); err != nil {
					s.WriteStatus(status.Convert(err))
					return
				}
			}
		})
	start := time.Now()
	c := newTestClient(t, ts.addr(), ConnectOptions{Logger: quietLogger})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Long"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(frameMsg(1), []byte{1}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(longWait):
		t.Fatal("the handler never started")
	}

	waitClosed(t, c.GoAway(), "GoAway")
	if r, d := c.GoAwayReason(); r != GoAwayNoReason || d != keepalive.DrainMaxAge {
		t.Errorf("GoAwayReason() = %v, %q; want GoAwayNoReason, %q", r, d, keepalive.DrainMaxAge)
	}
	if _, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Unary"}); status.Code(err) != codes.Unavailable {
		t.Errorf("NewStream after GOAWAY: %v, want UNAVAILABLE", err)
	}
	// The in-flight stream is cut when the grace period ends.
	if st := s.Status(); st.Code() != codes.Unavailable {
		t.Errorf("in-flight stream status %v, want UNAVAILABLE", st)
	}
	elapsed := time.Since(start)
	waitClosed(t, c.Done(), "client transport")
	sc := ts.conn(0)
	waitClosed(t, sc.Done(), "server transport")
	if !errors.Is(sc.Err(), keepalive.ErrMaxConnectionAge) {
		t.Errorf("server Err() = %v, want it to wrap keepalive.ErrMaxConnectionAge", sc.Err())
	}
	// The age is jittered by up to 10%; the grace is not.
	if min := age*9/10 + grace; elapsed < min {
		t.Errorf("stream cut after %v, before age - 10%% + grace = %v", elapsed, min)
	}
	// A write on an ended stream is io.EOF; reads give the status.
	if err := s.Write(frameMsg(1), []byte{2}, WriteOptions{}); err != io.EOF {
		t.Errorf("Write after the close: %v, want io.EOF", err)
	}
}

// http2FrameHeaderLen is the size of an HTTP/2 frame header (RFC 9113 §4.1).
const http2FrameHeaderLen = 9

// emptySettingsFrame is a SETTINGS frame with no settings.
var emptySettingsFrame = []byte{0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0}

// TestKeepaliveClientEndsWithConnDeadAtOnce: a server that hangs up right
// after its SETTINGS closes the client's transport during setup; the
// keepalive goroutine must end with it, not keep pinging a dead
// connection (its cancel is in place before the reader can close).
func TestKeepaliveClientEndsWithConnDeadAtOnce(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			// SETTINGS make the client ready; the close then races
			// the start of its goroutines.
			c.Write(emptySettingsFrame)
			c.Close()
		}
	}()
	kp := keepalive.ClientParameters{Time: time.Hour, PermitWithoutStream: true}
	for range 20 {
		c, err := newHTTP2Client(context.Background(), lis.Addr().String(), ConnectOptions{Keepalive: kp, Logger: quietLogger})
		if err != nil {
			continue // the preface write failed or the close came first
		}
		waitClosed(t, c.Done(), "client transport")
		if c.kpDone == nil {
			t.Fatal("no keepalive goroutine was started")
		}
		waitClosed(t, c.kpDone, "keepalive goroutine")
	}
}
