package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

func newTestRecvBuffer() *recvBuffer {
	r := new(recvBuffer)
	r.init()
	return r
}

// waitPosted waits until a readDirect has posted its buffer.
func waitPosted(t *testing.T, r *recvBuffer) {
	t.Helper()
	deadline := time.Now().Add(longWait)
	for {
		r.mu.Lock()
		posted := r.post != nil
		r.mu.Unlock()
		if posted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("readDirect never posted its buffer")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRecvBufferReadDirect(t *testing.T) {
	r := newTestRecvBuffer()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48000 bytes
	// Some bytes are buffered before the reader comes.
	if k, ok := r.write(msg[:20000]); k != 0 || !ok {
		t.Fatalf("write before readDirect: direct %d ok %v", k, ok)
	}

	p := make([]byte, 40000)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.readDirect(p)
		done <- result{n, err}
	}()
	waitPosted(t, r)
	if unread, held := r.stats(); unread != 0 || held > recvChunkSize {
		t.Fatalf("while posted: %d unread, %d held; the buffered bytes should be in p", unread, held)
	}
	// The next bytes land in p directly; those past its end are buffered.
	direct := 0
	for _, piece := range [][]byte{msg[20000:30000], msg[30000:48000]} {
		k, ok := r.write(piece)
		if !ok {
			t.Fatal("write failed")
		}
		direct += k
	}
	res := <-done
	if res.err != nil || res.n != 20000 {
		t.Fatalf("readDirect = %d, %v; want 20000 bytes from chunks", res.n, res.err)
	}
	if direct != 20000 {
		t.Fatalf("%d bytes went straight into p, want 20000", direct)
	}
	if !bytes.Equal(p, msg[:40000]) {
		t.Fatal("p does not hold the first 40000 bytes in order")
	}
	// The rest is buffered, in order, and nothing is posted any more.
	if k, _ := r.write(msg[:0]); k != 0 {
		t.Fatal("a write after readDirect returned went into p")
	}
	rest := make([]byte, 8000)
	if n, err := r.readWait(rest); n != 8000 || err != nil || !bytes.Equal(rest, msg[40000:]) {
		t.Fatalf("rest: %d, %v", n, err)
	}
}

func TestRecvBufferReadDirectAllBuffered(t *testing.T) {
	r := newTestRecvBuffer()
	r.write([]byte("hello world"))
	p := make([]byte, 5)
	if n, err := r.readDirect(p); n != 5 || err != nil || string(p) != "hello" {
		t.Fatalf("readDirect = %d, %v, %q", n, err, p)
	}
	r.mu.Lock()
	posted := r.post != nil
	r.mu.Unlock()
	if posted {
		t.Fatal("a buffer already filled from chunks was posted")
	}
}

func TestRecvBufferReadDirectClosedEarly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(r *recvBuffer)
		want  error
	}{
		{"end of stream", func(r *recvBuffer) { r.close(io.EOF) }, io.EOF},
		{"reset", func(r *recvBuffer) { r.abort(errBoom) }, errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRecvBuffer()
			p := make([]byte, 100)
			done := make(chan error, 1)
			go func() {
				_, err := r.readDirect(p)
				done <- err
			}()
			waitPosted(t, r)
			r.write([]byte("abc"))
			tc.close(r)
			if err := <-done; !errors.Is(err, tc.want) {
				t.Fatalf("readDirect error %v, want %v", err, tc.want)
			}
			// The buffer is no longer posted: later bytes cannot reach p.
			r.mu.Lock()
			posted := r.post
			r.mu.Unlock()
			if posted != nil {
				t.Fatal("p is still posted after readDirect returned")
			}
			if string(p[:3]) != "abc" {
				t.Fatalf("p = %q", p[:3])
			}
		})
	}
}

var errBoom = errors.New("boom")

// TestReadBodyThroughSmallWindow reads a message much larger than the
// window with ReserveBody and ReadBody, as the codec's Parser does: the
// bytes arrive straight in the caller's buffer and are refunded as they
// land, so the peer is never stuck on the window.
func TestReadBodyThroughSmallWindow(t *testing.T) {
	const size = 10 << 20
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	c := newSmallWindowPair(t, msg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Bulk/Download"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(nil, nil, WriteOptions{Last: true}); err != nil {
		t.Fatal(err)
	}
	var prefix [5]byte
	if _, err := io.ReadFull(s, prefix[:]); err != nil {
		t.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(prefix[1:]))
	s.RequestRead(n)
	if !s.ReserveBody(n) {
		t.Fatal("ReserveBody refused 10 MiB on a fresh connection")
	}
	if got := c.bodyBudget.Load(); got != bodyBudgetPerConn-size {
		t.Fatalf("budget %d after reserving, want %d", got, bodyBudgetPerConn-size)
	}
	body := make([]byte, n)
	if err := s.ReadBody(body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, msg) {
		t.Fatal("body differs from the message sent")
	}
	if got := c.bodyBudget.Load(); got != bodyBudgetPerConn {
		t.Fatalf("budget %d after ReadBody, want it all back (%d)", got, bodyBudgetPerConn)
	}
	if _, err := io.ReadFull(s, prefix[:1]); err != io.EOF {
		t.Fatalf("after the message: %v, want io.EOF", err)
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatal(st)
	}
}

// TestReserveBodyBudget: bodies allocated ahead of their bytes are
// bounded per connection, and a reservation ends with ReadBody, even one
// that fails.
func TestReserveBodyBudget(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		<-s.Context().Done()
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	open := func() *ClientStream {
		s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Bulk/Hold"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := open(), open()
	const big = int(bodyBudgetPerConn * 3 / 4)
	if !s1.ReserveBody(big) {
		t.Fatal("first reservation refused")
	}
	if s1.ReserveBody(1) {
		t.Fatal("a second reservation on the same stream was granted")
	}
	if s2.ReserveBody(big) {
		t.Fatal("reservations past the connection's budget were granted")
	}
	if !s2.ReserveBody(int(bodyBudgetPerConn) - big) {
		t.Fatal("the rest of the budget was refused")
	}
	if err := s2.ReadBody(nil); err != nil {
		t.Fatal(err)
	}
	// s1's body never comes: the stream is cancelled while ReadBody waits.
	go func() {
		time.Sleep(10 * time.Millisecond)
		s1.Close(nil)
	}()
	if err := s1.ReadBody(make([]byte, 10)); err == nil {
		t.Fatal("ReadBody on a cancelled stream succeeded")
	}
	if got := c.bodyBudget.Load(); got != bodyBudgetPerConn {
		t.Fatalf("budget %d after both ReadBody calls, want %d", got, bodyBudgetPerConn)
	}
	s2.Close(nil)
}
