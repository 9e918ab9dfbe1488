package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/blocking"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestUnaryEcho(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()

	md := metadata.Pairs("echo-text", "hello", "echo-data-bin", string([]byte{0, 1, 2, 0xff}))
	resp, s, err := unary(ctx, c, "/test.Echo/Unary", []byte("ping"), md)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != "ping" {
		t.Fatalf("response %q, want %q", resp, "ping")
	}
	hdr, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("echo-text"); len(got) != 1 || got[0] != "hello" {
		t.Errorf("header echo-text = %q", got)
	}
	if got := hdr.Get("echo-data-bin"); len(got) != 1 || got[0] != string([]byte{0, 1, 2, 0xff}) {
		t.Errorf("header echo-data-bin = %q", got)
	}
	if got := s.Trailer().Get("trailer-key"); len(got) != 1 || got[0] != "trailer-value" {
		t.Errorf("trailer = %v", s.Trailer())
	}
}

func TestEmptyMessageAndEmptyStream(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	resp, _, err := unary(ctx, c, "/test.Echo/Unary", nil, nil)
	if err != nil || len(resp) != 0 {
		t.Fatalf("empty message: %q, %v", resp, err)
	}
	// A stream with no message at all: END_STREAM with no DATA.
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Stream"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := readMsg(s); err != io.EOF {
		t.Fatalf("read = %v, want io.EOF", err)
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatalf("status %v", st)
	}
	// The server sent no message: the response was trailers-only.
	if !s.trailersOnly {
		t.Error("expected a trailers-only response")
	}
}

func TestStatusWithDetailsAndTrailersOnly(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		s.SetTrailer(metadata.Pairs("why", "because"))
		s.WriteStatus(status.New(codes.NotFound, "no such thing: 100% gone \u2603\n"))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	_, s, err := unary(ctx, c, "/test.Echo/Unary", []byte("x"), nil)
	st := status.Convert(err)
	if st.Code() != codes.NotFound || st.Message() != "no such thing: 100% gone \u2603\n" {
		t.Fatalf("status = %v", st)
	}
	if got := s.Trailer().Get("why"); len(got) != 1 || got[0] != "because" {
		t.Errorf("trailer = %v", s.Trailer())
	}
	// Header on a trailers-only response returns the trailer metadata.
	if hdr, err := s.Header(); err != nil || hdr.Get("why") == nil {
		t.Errorf("Header() = %v, %v", hdr, err)
	}
}

func TestLargeMessageThroughSmallWindow(t *testing.T) {
	const size = 10 << 20
	cfg := ServerConfig{InitialWindowSize: 64 << 10, InitialConnWindowSize: 64 << 10}
	ts := newTestServer(t, cfg, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{InitialWindowSize: 64 << 10, InitialConnWindowSize: 64 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	req := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	resp, _, err := unary(ctx, c, "/test.Echo/Unary", req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp, req) {
		t.Fatalf("response differs from request (%d vs %d bytes)", len(resp), len(req))
	}
}

func TestThousandConcurrentStreams(t *testing.T) {
	const n = 1000
	ts := newTestServer(t, ServerConfig{MaxConcurrentStreams: n}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	// Open all streams first, so they are concurrent on the wire.
	streams := make([]*ClientStream, n)
	for i := range streams {
		s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Stream"})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
		msg := fmt.Appendf(nil, "stream %d", i)
		if err := s.Write(frameMsg(len(msg)), msg, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := readMsg(s)
			if err != nil || string(m) != fmt.Sprintf("stream %d", i) {
				failed.Add(1)
				return
			}
			s.CloseSend()
			if st := s.Status(); st.Code() != codes.OK {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d streams failed", f, n)
	}
	if got := ts.conn(0).activeStreams(); got != 0 {
		t.Errorf("server still has %d streams", got)
	}
}

func TestStalledReaderDoesNotStallOthers(t *testing.T) {
	// The server streams 1 MiB on every stream; one client stream never
	// reads. The others must complete.
	payload := bytes.Repeat([]byte{'x'}, 1<<20)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		if _, err := readMsg(s); err != nil {
			s.WriteStatus(status.Convert(err))
			return
		}
		for range 4 {
			if err := s.Write(frameMsg(len(payload)), payload, WriteOptions{}); err != nil {
				s.WriteStatus(status.Convert(err))
				return
			}
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{InitialWindowSize: 64 << 10, InitialConnWindowSize: 1 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	stalled, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Download"})
	if err != nil {
		t.Fatal(err)
	}
	stalled.Write(frameMsg(0), nil, WriteOptions{Last: true})
	for i := range 5 {
		s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Download"})
		if err != nil {
			t.Fatal(err)
		}
		s.Write(frameMsg(0), nil, WriteOptions{Last: true})
		for range 4 {
			m, err := readMsg(s)
			if err != nil || len(m) != len(payload) {
				t.Fatalf("stream %d: %d bytes, %v", i, len(m), err)
			}
		}
		if st := s.Status(); st.Code() != codes.OK {
			t.Fatalf("stream %d: %v", i, st)
		}
	}
	// The stalled stream holds at most its window.
	unread, held := stalled.BufferStats()
	if unread > 64<<10 || held > 64<<10+recvChunkSize {
		t.Errorf("stalled stream buffers %d bytes in %d bytes of memory", unread, held)
	}
	stalled.Close(nil)
}

func TestClientCancelResetsServerStream(t *testing.T) {
	started := make(chan *ServerStream, 1)
	ended := make(chan error, 1)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		started <- s
		<-s.Context().Done()
		_, err := s.Read(make([]byte, 1))
		ended <- err
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Wait"})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(frameMsg(1), []byte{1}, WriteOptions{})
	var ss *ServerStream
	select {
	case ss = <-started:
	case <-time.After(longWait):
		t.Fatal("server stream never started")
	}
	cancel()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Canceled {
			t.Errorf("server read after cancel: %v, want CANCELLED", err)
		}
	case <-time.After(longWait):
		t.Fatal("server stream never saw the cancellation")
	}
	if !errors.Is(context.Cause(ss.Context()), context.Canceled) {
		t.Errorf("server context: %v", ss.Context().Err())
	}
	if st := s.Status(); st.Code() != codes.Canceled {
		t.Errorf("client status %v, want CANCELLED", st)
	}
}

func TestDeadlinePropagates(t *testing.T) {
	got := make(chan error, 1)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		dl, ok := s.Context().Deadline()
		if !ok || time.Until(dl) > time.Minute {
			got <- fmt.Errorf("server deadline %v, %v", dl, ok)
		}
		<-s.Context().Done()
		_, err := s.Read(make([]byte, 1))
		got <- err
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Wait"})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Code() != codes.DeadlineExceeded {
		t.Errorf("client status %v, want DEADLINE_EXCEEDED", st)
	}
	select {
	case err := <-got:
		// The client's RST_STREAM(CANCEL) at its deadline usually beats
		// the server's own timer; either way the handler is released.
		if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Canceled {
			t.Errorf("server: %v, want DEADLINE_EXCEEDED or CANCELLED", err)
		}
	case <-time.After(longWait):
		t.Fatal("server handler never saw the deadline")
	}
}

func TestDrainFinishesInFlightAndRefusesNew(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		<-release
		echoHandler(s)
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Unary"})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(frameMsg(2), []byte("hi"), WriteOptions{Last: true})
	sc := ts.conn(0)
	for sc.activeStreams() == 0 {
		time.Sleep(time.Millisecond)
	}
	sc.Drain("test")
	select {
	case <-c.GoAway():
	case <-time.After(longWait):
		t.Fatal("no GOAWAY")
	}
	if _, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Unary"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("NewStream after GOAWAY: %v, want UNAVAILABLE", err)
	}
	close(release)
	m, err := readMsg(s)
	if err != nil || string(m) != "hi" {
		t.Fatalf("in-flight stream: %q, %v", m, err)
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatalf("in-flight stream status %v", st)
	}
	select {
	case <-c.Done():
	case <-time.After(longWait):
		t.Fatal("client connection not closed after drain")
	}
	select {
	case <-sc.Done():
	case <-time.After(longWait):
		t.Fatal("server connection not closed after drain")
	}
}

func TestServerWritesBeforeReadingAndBidi(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Bidi"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		msg := fmt.Appendf(nil, "ping %d", i)
		if err := s.Write(frameMsg(len(msg)), msg, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		m, err := readMsg(s)
		if err != nil || !bytes.Equal(m, msg) {
			t.Fatalf("round %d: %q, %v", i, m, err)
		}
	}
	s.CloseSend()
	if _, err := readMsg(s); err != io.EOF {
		t.Fatalf("after CloseSend: %v", err)
	}
	if err := s.Write(nil, []byte("x"), WriteOptions{}); !errors.Is(err, ErrSendClosed) {
		t.Fatalf("write after CloseSend: %v", err)
	}
}

func TestConnectionCloseFailsStreams(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		<-s.Context().Done()
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Echo/Wait"})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(frameMsg(0), nil, WriteOptions{})
	sc := ts.conn(0)
	for sc.activeStreams() == 0 {
		time.Sleep(time.Millisecond)
	}
	sc.Close(errors.New("test closes"))
	if st := s.Status(); st.Code() != codes.Unavailable {
		t.Fatalf("status %v, want UNAVAILABLE", st)
	}
	select {
	case <-c.Done():
	case <-time.After(longWait):
		t.Fatal("client not closed")
	}
	if !errors.Is(c.Err(), ErrConnClosing) && c.Err() == nil {
		t.Errorf("client Err() = %v", c.Err())
	}
}

func TestFailedDialReturnsNilTransport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ct, err := NewClientTransport(context.Background(), addr, ConnectOptions{})
	if err == nil {
		t.Fatal("dial of a closed port succeeded")
	}
	if ct != nil {
		t.Fatalf("failed dial returned a non-nil transport %#v", ct)
	}
}

// TestServerAnswersBeforeRequestEnds: a handler that answers and returns
// before the client has ended its request forgets the stream while its
// response is still queued behind flow control; the client's late
// END_STREAM must not get the response cut short by a reset.
func TestServerAnswersBeforeRequestEnds(t *testing.T) {
	msg := bytes.Repeat([]byte("x"), 1<<20)
	finished := make(chan struct{})
	c := newSmallWindowPair(t, msg, finished)
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Bulk/Early"})
	if err != nil {
		t.Fatal(err)
	}
	<-finished // the server has forgotten the stream; most of the response is queued
	if err := s.Write(nil, nil, WriteOptions{Last: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the END_STREAM reach the server first
	got, err := readMsg(s)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("response differs")
	}
	if _, err := readMsg(s); err != io.EOF {
		t.Fatalf("after the response: %v, want io.EOF", err)
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatalf("status %v, want OK", st)
	}
}

// TestIncomingMetadataOnDemand: the server keeps a request's custom fields
// as received and builds an MD only when the handler asks, each time a
// copy of its own; with few fields or many (past the stream's inline
// room), -bin values decoded, user-agent, :authority and content-type
// included as in grpc-go.
func TestIncomingMetadataOnDemand(t *testing.T) {
	type seen struct {
		md     metadata.MD
		values []string
		again  metadata.MD
	}
	got := make(chan seen, 1)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		md, ok := metadata.FromIncomingContext(s.Context())
		if !ok {
			t.Error("no incoming metadata")
		}
		md["k1"] = append(md["k1"], "changed by the handler")
		again, _ := metadata.FromIncomingContext(s.Context())
		got <- seen{md, metadata.ValueFromIncomingContext(s.Context(), "K1"), again}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{UserAgent: "ua-test"})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()

	for _, tc := range []struct {
		name string
		md   metadata.MD
	}{
		{"inline", metadata.Pairs("k1", "v1")},
		{"many", metadata.Pairs("k1", "v1", "k1", "v2", "k2", "x", "k3-bin", "\x00\xff", "k4", "y")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Md/Read", Metadata: tc.md})
			if err != nil {
				t.Fatal(err)
			}
			s.Write(nil, nil, WriteOptions{Last: true})
			r := <-got
			want := tc.md.Copy()
			if ua := r.md.Get("user-agent"); len(ua) != 1 || !strings.HasPrefix(ua[0], "ua-test") {
				t.Errorf("user-agent %q", ua)
			}
			if got := r.md.Get(":authority"); len(got) != 1 || got[0] != ts.addr() {
				t.Errorf(":authority %q, want %q", got, ts.addr())
			}
			if got := r.md.Get("content-type"); len(got) != 1 || got[0] != "application/grpc" {
				t.Errorf("content-type %q, want application/grpc", got)
			}
			for _, k := range []string{"user-agent", ":authority", "content-type"} {
				delete(r.md, k)
				delete(r.again, k)
			}
			want["k1"] = append(want["k1"], "changed by the handler")
			if !reflect.DeepEqual(r.md, want) {
				t.Errorf("FromIncomingContext = %q, want %q", r.md, want)
			}
			if !reflect.DeepEqual(r.again, tc.md) {
				t.Errorf("second FromIncomingContext = %q, want the metadata as received %q", r.again, tc.md)
			}
			if !reflect.DeepEqual(r.values, tc.md["k1"]) {
				t.Errorf("ValueFromIncomingContext(K1) = %q, want %q", r.values, tc.md["k1"])
			}
			if st := s.Status(); st.Code() != codes.OK {
				t.Fatal(st)
			}
		})
	}
}

// TestWriteQuotaOption: a stream queues at most its write quota (plus one
// message) beyond what the peer's window lets out; ConnectOptions and
// ServerConfig set the quota.
func TestWriteQuotaOption(t *testing.T) {
	const msgSize = 10 << 10
	msg := make([]byte, msgSize)
	// writeAll writes up to 20 messages, until one fails or blocks for
	// good (then unblock frees it), and reports how many went through.
	writeAll := func(write func() error, unblock func()) int {
		return blocking.Count(20, time.Second, write, unblock)
	}
	// 64 KiB of peer window, 16 KiB of quota, one message over it: about
	// 9 messages go through; with the default quota, all 20.
	small := func(n int) bool { return n >= 7 && n <= 9 }
	all := func(n int) bool { return n == 20 }
	window := ConnectOptions{InitialWindowSize: 64 << 10, InitialConnWindowSize: 1 << 20}

	for _, tc := range []struct {
		name  string
		quota int32
		want  func(int) bool
	}{{"small", 16 << 10, small}, {"default", 0, all}} {
		t.Run("client/"+tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			ts := newTestServer(t, ServerConfig{InitialWindowSize: 64 << 10, InitialConnWindowSize: 1 << 20}, func(s *ServerStream) {
				<-hold // never reads
				s.WriteStatus(status.New(codes.OK, ""))
			})
			defer close(hold)
			c := newTestClient(t, ts.addr(), ConnectOptions{WriteQuota: tc.quota})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Quota/Hold"})
			if err != nil {
				t.Fatal(err)
			}
			n := writeAll(func() error { return s.Write(frameMsg(msgSize), msg, WriteOptions{}) }, cancel)
			if !tc.want(n) {
				t.Fatalf("%d writes of %d bytes went through before blocking", n, msgSize)
			}
		})
		t.Run("server/"+tc.name, func(t *testing.T) {
			got := make(chan int, 1)
			ts := newTestServer(t, ServerConfig{WriteQuota: tc.quota}, func(s *ServerStream) {
				got <- writeAll(func() error { return s.Write(frameMsg(msgSize), msg, WriteOptions{}) },
					func() { s.WriteStatus(status.New(codes.Canceled, "test over")) })
			})
			c := newTestClient(t, ts.addr(), window) // and never reads
			ctx, cancel := context.WithTimeout(context.Background(), longWait)
			defer cancel()
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Quota/Flood"})
			if err != nil {
				t.Fatal(err)
			}
			if n := <-got; !tc.want(n) {
				t.Fatalf("%d writes of %d bytes went through before blocking", n, msgSize)
			}
			s.Close(nil)
		})
	}
}

// TestResetFreesFinishedStreamsQueue: a handler that answered and
// returned leaves its response queued in loopy while the client's window
// is shut; when the client then resets the stream, loopy must drop the
// response, not keep it until the connection closes.
func TestResetFreesFinishedStreamsQueue(t *testing.T) {
	freed := make(chan struct{})
	finished := make(chan struct{})
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		defer close(finished)
		msg := make([]byte, 1<<20)
		runtime.SetFinalizer(&msg[0], func(*byte) { close(freed) })
		if err := s.Write(frameMsg(len(msg)), msg, WriteOptions{}); err != nil {
			t.Error(err)
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	// 64 KiB of window that the client never refunds: most of the
	// response stays queued.
	c := newTestClient(t, ts.addr(), ConnectOptions{InitialWindowSize: 64 << 10, InitialConnWindowSize: 64 << 10})
	s, err := c.NewStream(context.Background(), &CallHdr{Method: "/test.Bulk/Stuck"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(nil, nil, WriteOptions{Last: true}); err != nil {
		t.Fatal(err)
	}
	<-finished
	s.Close(nil) // RST_STREAM(CANCEL)
	deadline := time.Now().Add(longWait)
	for {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the reset stream's queued response is still held")
		}
	}
}
