package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/flowcontrol"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// DefaultWriteQuota bounds the bytes one stream may have queued for loopy
// but not yet written, unless ConnectOptions.WriteQuota or
// ServerConfig.WriteQuota says otherwise: Write blocks past it until
// loopy catches up (a stream holds at most this plus one message). It is
// larger than grpc-go's 64 KiB so that a streaming sender keeps the next
// messages queued while loopy writes in batches of up to 512 KiB: with
// 64 KiB, loopy often ran dry waiting for the sender to be woken, and
// 64 KiB messages streamed at 1.2–1.4 GB/s instead of 2.1–2.3 GB/s (go -C
// test/bench run . -workloads download,upload).
const DefaultWriteQuota = 1 << 20

// DefaultConnWriteBudget bounds the message bytes all the streams of one
// connection together may have queued for loopy but not yet written to
// the socket, unless ConnectOptions.ConnWriteBudget or
// ServerConfig.ConnWriteBudget says otherwise: a Write past it blocks,
// honouring its context, until loopy has written enough, first come first
// served across the streams. The per-stream write quota alone would let a
// peer that grants no window (or never reads its socket) make a server
// with 1,000 streams queue about 1 GiB; the budget holds a connection to
// 32 MiB plus one message, while leaving room for 32 streams streaming at
// full quota.
const DefaultConnWriteBudget = 32 << 20

// ErrSendClosed is returned by Write after the writer's half of the stream
// was closed with WriteOptions.Last.
var ErrSendClosed = errors.New("transport: write after the send side was closed")

// stream is what client and server streams share: identity, flow control,
// the receive buffer and the write path.
type stream struct {
	id   atomic.Uint32
	c    *http2Conn
	ctx  context.Context
	ls   controlbuf.Stream // loopy's state of the stream; &ls goes in its items
	fc   flowcontrol.InFlow
	wq   flowcontrol.WriteQuota
	rb   recvBuffer
	done chan struct{} // closed when the stream is over

	// bodyCheck makes the reader hand each DATA frame of the stream to
	// checkRequestBody before it is delivered: a server stream whose
	// request has a content-length. Set before the stream is published.
	bodyCheck bool

	recvDone atomic.Bool // the peer's END_STREAM (or a reset) arrived
	sendDone atomic.Bool // we queued END_STREAM
	finished atomic.Bool // the stream left the connection

	// firstData is the item of the stream's first message: most streams
	// (every unary call) send one, and it needs no allocation of its own.
	// It is handed to loopy once, by the first write, and never reused.
	firstData     controlbuf.DataFrame
	firstDataUsed atomic.Bool

	// reserved is the body budget taken by ReserveBody, given back by
	// ReadBody; used by the reading goroutine only.
	reserved int64

	// stopWatch stops the context watch of watch, timer is a server's
	// deadline timer; nil when there is none. unwatch stops both.
	watchMu   sync.Mutex
	stopWatch func() bool
	timer     *time.Timer
	unwatched bool // unwatch ran; guarded by watchMu

	cs *ClientStream // set on the client side
	ss *ServerStream // set on the server side
}

func (s *stream) init(c *http2Conn, ctx context.Context, window uint32) {
	s.c = c
	s.ctx = ctx
	s.done = make(chan struct{})
	s.fc.Init(window)
	s.wq.Init(c.writeQuota, s.done)
	s.rb.init()
}

// ID is the HTTP/2 stream id (0 on a client stream whose HEADERS are not
// yet written).
func (s *stream) ID() uint32 { return s.id.Load() }

// Context is the stream's context.
func (s *stream) Context() context.Context { return s.ctx }

// Done is closed when the stream is over.
func (s *stream) Done() <-chan struct{} { return s.done }

// Read reads DATA bytes of the stream. It returns io.EOF after the peer
// ended its half normally, and a status error if the stream failed.
func (s *stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.rb.readWait(p)
	if n > 0 {
		s.refund(n)
	}
	return n, err
}

// RequestRead tells flow control that the reader is waiting for a message
// of n bytes, so the stream window can open wide enough for it to arrive
// in full even when it is larger than the window.
func (s *stream) RequestRead(n int) {
	if n <= 0 {
		return
	}
	unread, _ := s.rb.stats()
	need := n - unread
	if need <= 0 {
		return
	}
	if need > math.MaxInt32 {
		need = math.MaxInt32
	}
	if inc := s.fc.RequestMessage(uint32(need)); inc > 0 && !s.recvDone.Load() {
		// Coalesces with refunds not yet written, so our own window
		// updates never pile up (nor throttle the reader).
		s.c.cb.AddStreamWindow(&s.ls, inc)
	}
}

// ReserveBody asks to allocate a message body of n bytes before its bytes
// arrived, for ReadBody. It returns false when the connection's budget
// for such bodies (16 MiB, shared by its streams) cannot cover n; the
// caller then reads the body as it arrives, with Read. After true, the
// caller must call ReadBody, which gives the reservation back. It
// implements codec.BodyReader.
func (s *stream) ReserveBody(n int) bool {
	if n <= 0 || s.reserved != 0 {
		return false
	}
	if s.c.bodyBudget.Add(-int64(n)) < 0 {
		s.c.bodyBudget.Add(int64(n))
		return false
	}
	s.reserved = int64(n)
	return true
}

// ReadBody fills p with the next len(p) bytes of the stream. Bytes that
// arrive while it waits are copied by the connection's reader straight
// into p (one copy, no intermediate buffer) and the caller wakes once,
// when p is full. It returns io.ErrUnexpectedEOF if the peer ended the
// stream first, or the stream's error. It gives back a reservation made
// with ReserveBody. It implements codec.BodyReader.
func (s *stream) ReadBody(p []byte) error {
	defer func() {
		if s.reserved != 0 {
			s.c.bodyBudget.Add(s.reserved)
			s.reserved = 0
		}
	}()
	if len(p) == 0 {
		return nil
	}
	n, err := s.rb.readDirect(p)
	if n > 0 {
		s.refund(n)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// refund returns n read bytes to the stream window.
func (s *stream) refund(n int) {
	if inc := s.fc.OnRead(uint32(n)); inc > 0 && !s.recvDone.Load() {
		// Coalesces with refunds not yet written, so our own window
		// updates never pile up (nor throttle the reader).
		s.c.cb.AddStreamWindow(&s.ls, inc)
	}
}

// write queues prefix and data as DATA for loopy, blocking while the
// stream's write quota or the connection's write budget is used up. On a
// stream that ended (or ends while it waits) it returns failed().
func (s *stream) write(prefix, data []byte, opts WriteOptions, failed func() error) error {
	if s.sendDone.Load() {
		return ErrSendClosed
	}
	if s.finished.Load() {
		// The stream is over: loopy would drop the data.
		return failed()
	}
	n := len(prefix) + len(data)
	if n > math.MaxInt32 {
		return status.Errorf(codes.ResourceExhausted, "transport: a write of %d bytes is too large", n)
	}
	if err := s.wq.Get(s.ctx, int32(n)); err != nil {
		return s.quotaErr(err, failed)
	}
	if err := s.c.budget.Get(s.ctx, int64(n), s.done); err != nil {
		s.wq.Replenish(n)
		return s.quotaErr(err, failed)
	}
	if opts.Last && !s.sendDone.CompareAndSwap(false, true) {
		s.c.budget.Release(int64(n))
		return ErrSendClosed
	}
	df := &s.firstData
	if !s.firstDataUsed.CompareAndSwap(false, true) {
		df = new(controlbuf.DataFrame)
	}
	*df = controlbuf.DataFrame{Stream: &s.ls, Prefix: prefix, Data: data, EndStream: opts.Last, OnDone: opts.OnDone, Budgeted: true}
	if err := s.c.cb.Put(df); err != nil {
		s.c.budget.Release(int64(n))
		return failed()
	}
	return nil
}

// quotaErr is write's error when waiting for the write quota or budget
// failed with err.
func (s *stream) quotaErr(err error, failed func() error) error {
	if errors.Is(err, flowcontrol.ErrQuotaClosed) {
		return failed()
	}
	return status.FromContextError(err).Err()
}

// watch runs f when ctx is done, unless the stream finished first. A
// context that is never done (context.Background) needs no watch.
func (s *stream) watch(ctx context.Context, f func()) {
	if ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(ctx, f)
	s.watchMu.Lock()
	if s.unwatched {
		s.watchMu.Unlock()
		stop()
		return
	}
	s.stopWatch = stop
	s.watchMu.Unlock()
}

// setDeadlineTimer keeps t for unwatch to stop, or stops it at once if
// the stream already finished.
func (s *stream) setDeadlineTimer(t *time.Timer) {
	s.watchMu.Lock()
	if s.unwatched {
		s.watchMu.Unlock()
		t.Stop()
		return
	}
	s.timer = t
	s.watchMu.Unlock()
}

// unwatch stops the watch and the deadline timer; called when the stream
// finishes.
func (s *stream) unwatch() {
	s.watchMu.Lock()
	s.unwatched = true
	stop, t := s.stopWatch, s.timer
	s.stopWatch, s.timer = nil, nil
	s.watchMu.Unlock()
	if stop != nil {
		stop()
	}
	if t != nil {
		t.Stop()
	}
}

// BufferStats reports the unread bytes of the stream and the memory its
// receive buffer holds for them.
func (s *stream) BufferStats() (unread, held int) { return s.rb.stats() }

// resetStatus is the status of a stream reset with code: CANCEL after the
// stream's deadline passed means the deadline, not a cancellation.
func (s *stream) resetStatus(code http2.ErrCode, who string) *status.Status {
	c := rstCodeToCode(code)
	if c == codes.Canceled {
		if dl, ok := s.ctx.Deadline(); ok && !time.Now().Before(dl) {
			return statusErrorf(codes.DeadlineExceeded, "transport: deadline exceeded (stream reset by the %s with %v)", who, code)
		}
	}
	return statusErrorf(c, "transport: stream reset by the %s with %v", who, code)
}

// resetBy names who reset a stream, for status messages.
func resetBy(local bool, peer string) string {
	if local {
		return "transport (a protocol error by the " + peer + ")"
	}
	return peer
}

// statusErrorf is a shorthand for status errors built by the transport.
func statusErrorf(c codes.Code, format string, args ...any) *status.Status {
	return status.New(c, fmt.Sprintf(format, args...))
}
