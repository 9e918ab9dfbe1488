package rpc

import (
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// Default bounds of the replay buffers of retried calls (gRFC A6).
const (
	// DefaultPerRPCBufferLimit is the most request bytes one call keeps
	// for replay: 256 KiB.
	DefaultPerRPCBufferLimit = 256 << 10
	// DefaultRetryBufferSize is the most request bytes all the calls of
	// a channel together keep for replay: 16 MiB.
	DefaultRetryBufferSize = 16 << 20
)

// pushbackHeader is the trailer by which a server tells the client when
// to retry, or (negative, malformed) not to (gRFC A6).
const pushbackHeader = "grpc-retry-pushback-ms"

// WithDisableRetry turns retries off: a call whose service config has a
// retry policy is made once, as a call without one. Transparent retries
// (of streams the server never processed) still happen. Retries are on
// by default.
func WithDisableRetry() DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.svcCfg.disableRetry = true })
}

// WithPerRPCBufferLimit bounds the request bytes one retried call keeps
// to replay on its next attempt (default 256 KiB,
// DefaultPerRPCBufferLimit): a call that sends more is committed to its
// current attempt and retried no more. 0 keeps the default.
func WithPerRPCBufferLimit(n int) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.svcCfg.perRPCBuffer = n })
}

// WithRetryBufferSize bounds the request bytes all the retried calls of
// the channel together keep for replay (default 16 MiB,
// DefaultRetryBufferSize): a call whose message would pass it is
// committed to its current attempt and retried no more. 0 keeps the
// default.
func WithRetryBufferSize(n int64) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.svcCfg.channelBuffer = n })
}

// retryThrottler is a channel's retry throttling (gRFC A6): a bucket of
// tokens that every attempt failing with a retryable code drains by one
// and every successful call, of any method, refills by the ratio;
// retries are allowed only while it holds more than half its tokens.
// Lock-free: every successful call of the channel updates it.
type retryThrottler struct {
	max, ratio float64
	tokens     atomic.Uint64 // float64 bits
}

func newRetryThrottler(rt *serviceconfig.RetryThrottling) *retryThrottler {
	t := &retryThrottler{max: rt.MaxTokens, ratio: rt.TokenRatio}
	t.tokens.Store(math.Float64bits(rt.MaxTokens))
	return t
}

// update applies f to the token count and returns the new count.
func (t *retryThrottler) update(f func(float64) float64) float64 {
	for {
		old := t.tokens.Load()
		n := f(math.Float64frombits(old))
		if t.tokens.CompareAndSwap(old, math.Float64bits(n)) {
			return n
		}
	}
}

// failure counts a failed attempt and reports whether a retry is allowed.
func (t *retryThrottler) failure() bool {
	return t.update(func(n float64) float64 { return max(n-1, 0) }) > t.max/2
}

// success counts a successful call.
func (t *retryThrottler) success() {
	if math.Float64frombits(t.tokens.Load()) >= t.max {
		return // full: the common case writes nothing
	}
	t.update(func(n float64) float64 { return min(n+t.ratio, t.max) })
}

// retryState is the retry side of a call whose method has a retry
// policy. Until the call is committed, every message sent is kept for
// replay, and an attempt that fails before response headers arrived may
// be followed by another.
type retryState struct {
	cc       *ClientConn
	policy   *serviceconfig.RetryPolicy
	throttle *retryThrottler // the call's, nil without throttling
	perRPC   int
	channel  int64

	// committed: the call keeps its current attempt whatever happens.
	// Set once, after err.
	committed atomic.Bool
	// err ends the call when no attempt's status says how it ended (its
	// context ended during a backoff, a new attempt could not start).
	// Written before committed is set, read after.
	err error

	// mu serialises sends and the switch to a new attempt, so that every
	// message is either replayed or written to the current attempt.
	mu          sync.Mutex
	attempts    int // attempts that count against MaxAttempts, the first included
	transparent int // transparent retries
	backoffN    int // retries since the last pushback
	buf         [][]byte
	bufBytes    int
	closed      bool // the client's half is closed
}

func newRetryState(cc *ClientConn, p *serviceconfig.RetryPolicy, throttle *retryThrottler) *retryState {
	rs := &retryState{
		cc:       cc,
		policy:   p,
		throttle: throttle,
		perRPC:   cc.dopts.svcCfg.perRPCBuffer,
		channel:  cc.dopts.svcCfg.channelBuffer,
		attempts: 1,
	}
	if rs.perRPC <= 0 {
		rs.perRPC = DefaultPerRPCBufferLimit
	}
	if rs.channel <= 0 {
		rs.channel = DefaultRetryBufferSize
	}
	return rs
}

// startRetries makes the call retryable under policy.
func (cs *clientStream) startRetries(cc *ClientConn, policy *serviceconfig.RetryPolicy) {
	// A stream its user abandons by ending its context gives its replay
	// buffer back when the context ends (clientStream.watchCtx).
	cs.rs = newRetryState(cc, policy, cs.throttle)
}

// add keeps msg for replay; false when a buffer limit would be passed
// (the call must commit then). Caller holds rs.mu.
func (rs *retryState) add(msg []byte) bool {
	n := len(msg)
	if rs.bufBytes+n > rs.perRPC {
		return false
	}
	used := &rs.cc.svcCfg.bufUsed
	if used.Add(int64(n)) > rs.channel {
		used.Add(-int64(n))
		return false
	}
	rs.buf = append(rs.buf, msg)
	rs.bufBytes += n
	return true
}

// commit ends the call's retries. Caller holds rs.mu.
func (rs *retryState) commit() {
	rs.committed.Store(true)
	rs.dropBuffer()
}

// dropBuffer frees the replay buffer. Caller holds rs.mu.
func (rs *retryState) dropBuffer() {
	if rs.bufBytes > 0 {
		rs.cc.svcCfg.bufUsed.Add(-int64(rs.bufBytes))
	}
	rs.buf, rs.bufBytes = nil, 0
}

// fail commits the call with err as its end. Caller holds rs.mu.
func (rs *retryState) fail(err error) {
	rs.err = err
	rs.commit()
}

// backoff is the wait before the next retry (gRFC A6): random in
// [0, min(InitialBackoff·BackoffMultiplier^n, MaxBackoff)), n counting
// the retries since the last pushback.
func (rs *retryState) backoff() time.Duration {
	p := rs.policy
	d := float64(p.InitialBackoff) * math.Pow(p.BackoffMultiplier, float64(rs.backoffN))
	if !(d < float64(p.MaxBackoff)) {
		d = float64(p.MaxBackoff)
	}
	rs.backoffN++
	return time.Duration(rand.Float64() * d)
}

// parsePushback reads a failed attempt's grpc-retry-pushback-ms: has is
// false without one; ok is false when it forbids a retry (negative or
// malformed).
func parsePushback(md metadata.MD) (d time.Duration, has, ok bool) {
	vs := md.Get(pushbackHeader)
	if len(vs) == 0 {
		return 0, false, false
	}
	if len(vs) > 1 {
		return 0, true, false
	}
	ms, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || ms < 0 {
		return 0, true, false
	}
	if ms > int64(math.MaxInt64/time.Millisecond) {
		ms = int64(math.MaxInt64 / time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond, true, true
}

// stream is the stream of the call's current attempt.
func (cs *clientStream) stream() *transport.ClientStream {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.s
}

// retryDelay decides whether the failed attempt is followed by another
// and after how long, counting the attempt against the policy and the
// throttling. Caller holds rs.mu.
func (cs *clientStream) retryDelay(failed *transport.ClientStream) (time.Duration, bool) {
	rs := cs.rs
	if _, err := failed.RecvCompress(); err == nil {
		// Response headers arrived: the call is committed.
		return 0, false
	}
	if cs.ctx.Err() != nil {
		return 0, false
	}
	if failed.Unprocessed() && rs.transparent < maxTransparentRetries {
		// The server never saw it: retry at once, uncounted.
		rs.transparent++
		return 0, true
	}
	code := failed.Status().Code()
	if code == codes.OK {
		return 0, false
	}
	pushback, hasPushback, pushbackOK := parsePushback(failed.Trailer())
	if hasPushback && !pushbackOK {
		return 0, false
	}
	if !slices.Contains(rs.policy.RetryableStatusCodes, code) {
		return 0, false
	}
	if rs.throttle != nil && !rs.throttle.failure() {
		return 0, false
	}
	if rs.attempts >= rs.policy.MaxAttempts {
		return 0, false
	}
	rs.attempts++
	if hasPushback {
		rs.backoffN = 0
		return pushback, true
	}
	return rs.backoff(), true
}

// retryAttempt is called when the attempt on failed ended (a send found
// it done, or it ended before response headers). It reports true when
// the call goes on, on a newer attempt (one this call started after the
// backoff, replaying the messages sent so far, or one another goroutine
// of the call started); false when the call is committed and its end is
// failed's status, or rs.err.
func (cs *clientStream) retryAttempt(failed *transport.ClientStream) bool {
	rs := cs.rs
	if cs.stream() != failed {
		return true
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if cs.stream() != failed {
		return true
	}
	if rs.committed.Load() {
		return false
	}
	delay, ok := cs.retryDelay(failed)
	if !ok {
		rs.commit()
		return false
	}
	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-cs.ctx.Done():
			timer.Stop()
		}
	}
	if err := cs.ctx.Err(); err != nil {
		rs.fail(status.FromContextError(err).Err())
		return false
	}
	cs.hdr.PreviousAttempts = rs.attempts - 1
	s, err := cs.newAttempt(rs.cc)
	if err != nil {
		rs.fail(err)
		return false
	}
	// A write that fails ends the replay: the new attempt is over
	// already, and whoever uses it next finds that out.
	for i, msg := range rs.buf {
		last := rs.closed && i == len(rs.buf)-1
		if s.Write(msg[:codec.PrefixLen], msg[codec.PrefixLen:], transport.WriteOptions{Last: last}) != nil {
			break
		}
	}
	if rs.closed && len(rs.buf) == 0 {
		s.CloseSend()
	}
	cs.mu.Lock()
	cs.s = s
	cs.reader.init(s)
	cs.mu.Unlock()
	return true
}

// awaitCommit waits, before a receive, until the call is committed to an
// attempt: one whose response headers arrived, or whose failure is not
// retried. Attempts that fail before are retried. It returns the call's
// end when no attempt gives it (rs.err).
func (cs *clientStream) awaitCommit() error {
	rs := cs.rs
	for !rs.committed.Load() {
		s := cs.stream()
		if _, err := s.RecvCompress(); err == nil {
			rs.mu.Lock()
			rs.commit()
			rs.mu.Unlock()
			break
		}
		if !cs.retryAttempt(s) {
			break
		}
	}
	return rs.err
}

// sendRetryable is SendMsg of a call that is not committed: the message
// is kept for replay (unless a buffer limit is passed, which commits the
// call) and written to the current attempt; when that attempt is over,
// the call moves on to the next one, which replays it. It returns the
// stream written to, for the caller's error handling.
func (cs *clientStream) sendRetryable(m any, comp codec.Compressor, last bool) (*transport.ClientStream, error) {
	rs := cs.rs
	rs.mu.Lock()
	s := cs.stream()
	prefix, data, release, err := codec.Encode(cs.codec, comp, m, cs.ci.maxSend)
	if err != nil {
		rs.mu.Unlock()
		return s, err
	}
	// Our own copy: the pooled buffers go back once written, and the
	// message may be written again on the next attempt.
	msg := make([]byte, 0, len(prefix)+len(data))
	msg = append(append(msg, prefix...), data...)
	release()
	if rs.committed.Load() || !rs.add(msg) {
		rs.commit()
	} else if last {
		rs.closed = true
	}
	err = s.Write(msg[:len(prefix)], msg[len(prefix):], transport.WriteOptions{Last: last})
	rs.mu.Unlock()
	if err == io.EOF && cs.retryAttempt(s) {
		return nil, nil
	}
	return s, err
}

// closeSendRetryable is CloseSend of a call with a retry policy.
func (cs *clientStream) closeSendRetryable() {
	rs := cs.rs
	rs.mu.Lock()
	if !rs.committed.Load() {
		rs.closed = true
	}
	s := cs.stream()
	rs.mu.Unlock()
	// A stream that is over ignores it; the next attempt replays it.
	s.CloseSend()
}

// finish ends the retries of a call that ended.
func (rs *retryState) finish() {
	rs.mu.Lock()
	rs.commit()
	rs.mu.Unlock()
}
