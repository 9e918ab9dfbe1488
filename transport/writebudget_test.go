package transport

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// bulkMethod answers with one message of len(bulkReply) bytes.
const bulkMethod = "/test.Budget/Bulk"

// bulkReply is the reply of every bulkMethod stream: one array shared by
// all of them, so that the tests' memory stays small while the server
// accounts for every stream's copy on the wire.
var bulkReply = make([]byte, 1<<20)

// bulkMsgSize is a bulkReply message with its prefix.
const bulkMsgSize = 5 + 1<<20

// bulkServer counts how bulkMethod handlers fared.
type bulkServer struct {
	started atomic.Int32 // bulkMethod handlers run
	passed  atomic.Int32 // Write returned nil
	failed  atomic.Int32 // Write failed
	failMu  sync.Mutex
	errs    []error
}

// handle answers bulkMethod with bulkReply and other methods as
// echoHandler does.
func (b *bulkServer) handle(s *ServerStream) {
	if s.Method() != bulkMethod {
		echoHandler(s)
		return
	}
	b.started.Add(1)
	err := s.Write(frameMsg(len(bulkReply)), bulkReply, WriteOptions{})
	if err != nil {
		b.failMu.Lock()
		b.errs = append(b.errs, err)
		b.failMu.Unlock()
		b.failed.Add(1)
		s.WriteStatus(status.Convert(err))
		return
	}
	b.passed.Add(1)
	s.WriteStatus(status.New(codes.OK, ""))
}

// bystander makes echo calls on a connection of its own until stopped,
// and checks each succeeds.
type bystander struct {
	calls atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	err   error // the first failure; read after done
}

func startBystander(t *testing.T, addr string) *bystander {
	t.Helper()
	c := newTestClient(t, addr, ConnectOptions{})
	b := &bystander{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			select {
			case <-b.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), longWait)
			resp, _, err := unary(ctx, c, echoMethod, []byte("bystander"), nil)
			cancel()
			if err == nil && string(resp) != "bystander" {
				err = status.Errorf(codes.Internal, "reply %q", resp)
			}
			if err != nil {
				b.err = err
				return
			}
			b.calls.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(b.end)
	return b
}

func (b *bystander) end() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

// progresses waits until the bystander completed one more call than
// now, failing the test if it failed or got stuck.
func (b *bystander) progresses(t *testing.T) {
	t.Helper()
	n := b.calls.Load()
	pollUntil(t, "a bystander call on another connection", func() bool {
		select {
		case <-b.done:
			t.Fatalf("bystander call failed: %v", b.err)
		default:
		}
		return b.calls.Load() > n
	})
}

// checkBudgetBound checks that the connection never had more bytes
// queued and unwritten than its write budget plus one message, and that
// the budget did stop writers (waiting of them are blocked on it).
func checkBudgetBound(t *testing.T, c *http2Conn, waiting int) {
	t.Helper()
	limit := int64(DefaultConnWriteBudget + bulkMsgSize)
	if got := c.budget.MaxOutstanding(); got > limit {
		t.Errorf("the connection queued up to %d bytes (%.1f MiB), want at most the budget plus one message, %d", got, float64(got)/(1<<20), limit)
	}
	if got := c.budget.Outstanding(); got > limit {
		t.Errorf("the connection holds %d bytes queued, want at most %d", got, limit)
	}
	if got := c.budget.Waiting(); got != waiting {
		t.Errorf("%d writers wait for the write budget, want %d", got, waiting)
	}
}

// TestConnWriteBudgetBoundsZeroWindowStreams: a client that grants no
// window (SETTINGS_INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE) asks 200
// streams for 1 MiB replies. Without a connection budget each stream
// queues its reply under its own 1 MiB quota: 200 MiB held. With it, the
// connection holds at most the budget plus one message and the other
// writers wait; resetting the streams ends the waits and gives the
// budget back at once, the connection still serves calls, and a client on
// another connection is served throughout.
func TestConnWriteBudgetBoundsZeroWindowStreams(t *testing.T) {
	noLeaks(t)
	const streams = 200
	var bs bulkServer
	ts := newTestServer(t, ServerConfig{}, bs.handle)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}})
	p.expect(isType(http2.FrameSettings))
	sc := &ts.conn(0).http2Conn
	by := startBystander(t, ts.addr())

	for i := range streams {
		p.must(p.writeHeaders(uint32(2*i+1), true, reqFields(bulkMethod)))
	}
	pollUntil(t, "every handler to write or wait", func() bool {
		return int(bs.passed.Load())+sc.budget.Waiting()+int(bs.failed.Load()) == streams
	})
	passed := int(bs.passed.Load())
	t.Logf("%d of %d replies queued, %d writers wait, %d bytes outstanding (at most %d)",
		passed, streams, sc.budget.Waiting(), sc.budget.Outstanding(), sc.budget.MaxOutstanding())
	if n := bs.failed.Load(); n != 0 {
		t.Fatalf("%d writes failed: %v", n, bs.errs)
	}
	checkBudgetBound(t, sc, streams-passed)
	by.progresses(t)

	// Reset every stream: the waiting writers give up, and the queued
	// replies are dropped and their budget returned.
	for i := range streams {
		p.must(p.writeRST(uint32(2*i+1), http2.ErrCodeCancel))
	}
	pollUntil(t, "the waiting writers to fail", func() bool {
		return int(bs.passed.Load()+bs.failed.Load()) == streams
	})
	pollUntil(t, "the budget to come back", func() bool { return sc.budget.Outstanding() == 0 })
	for _, err := range bs.errs {
		if c := status.Code(err); c != codes.Canceled {
			t.Errorf("a waiting writer failed with %v, want CANCELLED", err)
		}
	}
	// With window granted again, a call on the same connection works.
	p.must(p.write(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	}))
	p.unaryOK(2*streams+1, echoMethod)
	by.progresses(t)
}

// TestConnWriteBudgetBoundsUnreadSocket: a client grants all the window
// 100 streams need for 1 MiB replies but never reads its socket. Loopy's
// writes block in the kernel; bytes queued behind them, in loopy or in
// its batch, still count against the budget, so the connection holds at
// most the budget plus one message (without the budget, 1 MiB per stream
// the server reads), while a client on another connection is served.
// With loopy blocked, the server may also stop reading new streams (see
// TestUnreadSocketBoundsAnswersToNewStreams): the test waits until every
// handler that started wrote or waits, and reading stopped or every
// stream started.
func TestConnWriteBudgetBoundsUnreadSocket(t *testing.T) {
	noLeaks(t)
	const streams = 100
	var bs bulkServer
	ts := newSmallBufferServer(t, ServerConfig{}, bs.handle)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{
		settings:    []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 30}},
		noRead:      true,
		smallSocket: true,
	})
	p.must(p.writeWindowUpdate(0, 1<<30))
	sc := &ts.conn(0).http2Conn
	by := startBystander(t, ts.addr())

	for i := range streams {
		p.must(p.writeHeaders(uint32(2*i+1), true, reqFields(bulkMethod)))
	}
	// The reader may be between frames when the figures first add up
	// (the registrations of streams not yet started count as control
	// items too): wait until they add up and stay unchanged for a
	// while, so the reader has stopped or every stream started.
	var last [3]int
	since := time.Now()
	pollUntil(t, "every handler to write or wait", func() bool {
		control, _ := sc.cb.Len()
		started := int(bs.started.Load())
		now := [3]int{started, int(bs.passed.Load()), sc.budget.Waiting()}
		if now != last {
			last, since = now, time.Now()
		}
		return now[1]+now[2]+int(bs.failed.Load()) == started &&
			(started == streams || control > controlbuf.MaxQueuedControl) &&
			time.Since(since) >= shortWait
	})
	started, passed := int(bs.started.Load()), int(bs.passed.Load())
	t.Logf("%d streams started, %d replies queued, %d writers wait, %d bytes outstanding (at most %d)",
		started, passed, sc.budget.Waiting(), sc.budget.Outstanding(), sc.budget.MaxOutstanding())
	if n := bs.failed.Load(); n != 0 {
		t.Fatalf("%d writes failed: %v", n, bs.errs)
	}
	checkBudgetBound(t, sc, started-passed)
	by.progresses(t)
	// The budget stays spent while the socket is not read.
	time.Sleep(shortWait)
	checkBudgetBound(t, sc, started-passed)
	by.progresses(t)
}

// TestConnWriteBudgetWaitHonoursContext: a client Write waiting for the
// connection's write budget (spent by another stream whose peer does not
// read) returns when its context is cancelled or its deadline passes,
// with CANCELLED or DEADLINE_EXCEEDED, and takes nothing from the budget.
func TestConnWriteBudgetWaitHonoursContext(t *testing.T) {
	noLeaks(t)
	hold := make(chan struct{})
	ts := newTestServer(t, ServerConfig{InitialWindowSize: 64 << 10, InitialConnWindowSize: 1 << 20}, func(s *ServerStream) {
		select { // never reads
		case <-hold:
		case <-s.Context().Done():
			// The call's deadline may fire here before it does in
			// the client: the status must then say so, as a
			// handler returning ctx.Err() would.
			s.WriteStatus(status.FromContextError(s.Context().Err()))
			return
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	defer close(hold)
	const budget = 128 << 10
	c := newTestClient(t, ts.addr(), ConnectOptions{ConnWriteBudget: budget})
	hog, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Budget/Hog"})
	if err != nil {
		t.Fatal(err)
	}
	// Over the whole budget: it passes, and only 64 KiB of it can leave.
	if err := hog.Write(frameMsg(len(bulkReply)), bulkReply, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  func(context.CancelFunc)
		want codes.Code
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			func(cancel context.CancelFunc) { cancel() }, codes.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), shortWait)
		},
			func(context.CancelFunc) {}, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Budget/Waiter"})
			if err != nil {
				t.Fatal(err)
			}
			res := make(chan error, 1)
			go func() { res <- s.Write(frameMsg(100), make([]byte, 100), WriteOptions{}) }()
			// A fresh stream has all its quota: only the budget holds it.
			pollUntil(t, "the write to wait for the budget", func() bool {
				select {
				case err := <-res:
					t.Fatalf("Write returned %v while the budget is spent", err)
				default:
				}
				return c.budget.Waiting() == 1
			})
			before := c.budget.Outstanding()
			tc.end(cancel)
			err = rawRecv(t, res, "the waiting Write to return")
			if err == io.EOF {
				// The stream ended first (the context's end resets
				// it): Write says so, and the status tells why.
				err = s.Status().Err()
			}
			if status.Code(err) != tc.want {
				t.Fatalf("Write = %v, want %v", err, tc.want)
			}
			if c.budget.Waiting() != 0 || c.budget.Outstanding() > before {
				t.Fatalf("after the wait: %d waiting, %d outstanding (was %d)", c.budget.Waiting(), c.budget.Outstanding(), before)
			}
		})
	}
	hog.Close(nil)
}

// TestResetRacingStatusFreesQueuedReply: a client resets streams just as
// their handlers queue a reply (that the shut window holds in loopy) and
// the status. Whichever of the two ends the stream first, loopy must
// drop the queued reply and give its write budget back; a reset that
// came while the handler's status was being queued used to be lost, and
// the reply stayed until the connection closed.
func TestResetRacingStatusFreesQueuedReply(t *testing.T) {
	noLeaks(t)
	const (
		rounds  = 10 // the race is narrow: try it many times
		streams = 100
	)
	var started, ended sync.WaitGroup
	var release chan struct{}
	var mu sync.Mutex
	reply := make([]byte, 4<<10)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		defer ended.Done()
		mu.Lock()
		r := release
		mu.Unlock()
		started.Done()
		<-r
		err := s.Write(frameMsg(len(reply)), reply, WriteOptions{})
		s.WriteStatus(status.Convert(err))
	})
	p := dialRawClient(t, ts.addr(), rawPeerOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}})
	p.expect(isType(http2.FrameSettings))
	sc := &ts.conn(0).http2Conn
	id := uint32(1)
	for range rounds {
		mu.Lock()
		release = make(chan struct{})
		mu.Unlock()
		started.Add(streams)
		ended.Add(streams)
		first := id
		for range streams {
			p.must(p.writeHeaders(id, true, reqFields(bulkMethod)))
			id += 2
		}
		started.Wait()
		close(release)
		for i := first; i < id; i += 2 {
			p.must(p.writeRST(i, http2.ErrCodeCancel))
		}
		ended.Wait()
	}
	pollUntil(t, "the budget to come back", func() bool { return sc.budget.Outstanding() == 0 })
}

// TestUnreadSocketBoundsAnswersToNewStreams: a client that never reads
// its socket opens stream after stream, each answered at once with a
// trailers-only status. The answers carry no message, so the write
// budget does not hold them; with loopy blocked writing, every answer
// used to wait in memory (100,000 streams: 90 MiB, and reading went on).
// Registering a stream the peer opened now counts as the peer's work:
// the server stops reading once loopy has a few dozen unhandled, and a
// client on another connection is served meanwhile.
func TestUnreadSocketBoundsAnswersToNewStreams(t *testing.T) {
	noLeaks(t)
	const n = 100000 // the server must stop reading long before
	ts := newSmallBufferServer(t, ServerConfig{}, func(s *ServerStream) {
		if s.Method() == echoMethod {
			echoHandler(s)
			return
		}
		s.WriteStatus(status.New(codes.NotFound, "no such method"))
	})
	p := dialRawClient(t, ts.addr(), rawPeerOpts{noRead: true, smallSocket: true})
	sc := ts.conn(0)
	by := startBystander(t, ts.addr())
	f := startFlood(p, n, 100, func(fr *http2.Framer, i int) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: uint32(2*i + 1), BlockFragment: p.encode(reqFields("/test.Budget/Missing")),
			EndStream: true, EndHeaders: true,
		})
	})
	maxQueued, stalled := f.watch(time.Second, func() int {
		_, total := sc.cb.Len()
		return total
	})
	t.Logf("sent %d HEADERS, stalled %v, at most %d items queued", f.sent.Load(), stalled, maxQueued)
	if !stalled {
		t.Errorf("the flood of %d streams never stalled: the server read on without bound", f.sent.Load())
	}
	// Per stream: its registration and its trailers-only answer. The
	// registrations loopy has not handled are capped by the throttle;
	// answers may also come from streams loopy registered just before
	// its write blocked, whose handlers are capped by
	// MaxConcurrentStreams. Either way a bound that does not grow with
	// the flood.
	if bound := 2*maxControlBound + DefaultMaxConcurrentStreams; maxQueued > bound {
		t.Errorf("%d items queued during the flood, want at most %d", maxQueued, bound)
	}
	by.progresses(t)
	f.stop.Store(true)
	p.conn.Close() // ends the flood's blocked write
	f.wait(t)
}
