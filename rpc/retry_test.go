package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// retryConfig is a service config retrying every method of the test
// service on codes (a JSON list), with a tiny backoff, plus extra
// top-level fields (a leading comma included).
func retryConfig(maxAttempts int, codes, extra string) string {
	return fmt.Sprintf(`{"methodConfig": [{"name": [{"service": "test.v1.Test"}],
	  "retryPolicy": {"maxAttempts": %d, "initialBackoff": "0.001s", "maxBackoff": "0.005s",
	    "backoffMultiplier": 2, "retryableStatusCodes": %s}}]%s}`, maxAttempts, codes, extra)
}

// attempts records the attempts a server handler saw.
type attempts struct {
	mu    sync.Mutex
	prev  []string    // grpc-previous-rpc-attempts of each ("" when absent)
	times []time.Time // arrival of each
	msgs  [][]string  // messages each attempt received (streaming)
}

// record notes an attempt and returns its index (0 for the first).
func (a *attempts) record(ctx context.Context) int {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prev = append(a.prev, mdValue(md, "grpc-previous-rpc-attempts"))
	a.times = append(a.times, time.Now())
	a.msgs = append(a.msgs, nil)
	return len(a.prev) - 1
}

func (a *attempts) addMsg(i int, m string) {
	a.mu.Lock()
	a.msgs[i] = append(a.msgs[i], m)
	a.mu.Unlock()
}

func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.prev)
}

// failingUnary fails the first n attempts with code, then echoes.
func failingUnary(a *attempts, n int, code codes.Code) *testService {
	return &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if i := a.record(ctx); i < n {
			return nil, status.Errorf(code, "attempt %d", i+1)
		}
		return in, nil
	}}
}

func TestRetryUnaryUntilSuccess(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 2, codes.Unavailable))
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
	out, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("hello")))
	if err != nil {
		t.Fatalf("Unary: %v", err)
	}
	if string(out.Value) != "hello" {
		t.Errorf("reply %q", out.Value)
	}
	if got := fmt.Sprint(a.prev); got != "[ 1 2]" {
		t.Errorf("grpc-previous-rpc-attempts per attempt = %q, want [ 1 2] (none on the first)", got)
	}
}

func TestRetryNonRetryableCodeIsNotRetried(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 5, codes.Internal))
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE", "RESOURCE_EXHAUSTED"]`, "")))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Internal)
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestRetryMaxAttemptsExhaustedReturnsLastStatus(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 100, codes.Unavailable))
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `[14]`, "")))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if msg := status.Convert(err).Message(); msg != "attempt 3" {
		t.Errorf("message %q, want the last attempt's", msg)
	}
	if n := a.count(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestRetryDisabled(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 1, codes.Unavailable))
	_, c := dial(t, addr, WithDisableRetry(), WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// pushbackService fails attempts whose index is below n with UNAVAILABLE
// and the trailer grpc-retry-pushback-ms: value.
func pushbackService(a *attempts, n int, value string) *testService {
	return &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if i := a.record(ctx); i < n {
			SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", value))
			return nil, status.Error(codes.Unavailable, "push back")
		}
		return in, nil
	}}
}

func TestRetryPushbackSetsTheDelay(t *testing.T) {
	const pushback = 300 * time.Millisecond
	var a attempts
	_, addr := startServer(t, pushbackService(&a, 1, strconv.Itoa(int(pushback/time.Millisecond))))
	// The backoff is at most 5 ms: only the pushback makes the retry
	// wait as long.
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	if n := a.count(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	if gap := a.times[1].Sub(a.times[0]); gap < pushback {
		t.Errorf("the retry came %v after the first attempt, before the %v pushback", gap, pushback)
	}
}

func TestRetryNegativeOrMalformedPushbackStopsRetries(t *testing.T) {
	for _, v := range []string{"-1", "soon", "1.5"} {
		t.Run(v, func(t *testing.T) {
			var a attempts
			_, addr := startServer(t, pushbackService(&a, 5, v))
			_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
			_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
			wantCode(t, err, codes.Unavailable)
			if n := a.count(); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
		})
	}
}

func TestRetryThrottlingStopsRetries(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 1000, codes.Unavailable))
	// 10 tokens; retries only while more than 5 are left. The first
	// call's failures take 9, 8, 7, 6 (retried) then 5 (not: throttled,
	// and out of attempts); every later failure leaves fewer than 5.
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`,
		`, "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}`)))
	ctx := ctxWait(t)
	var per []int
	for range 3 {
		before := a.count()
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
		wantCode(t, err, codes.Unavailable)
		per = append(per, a.count()-before)
	}
	if fmt.Sprint(per) != "[5 1 1]" {
		t.Errorf("attempts per call = %v, want [5 1 1]", per)
	}
}

// TestRetryThrottlingBoundsConcurrentCalls: 50 calls at once against a
// server that always fails UNAVAILABLE share the channel's 10 tokens: a
// retry is allowed only while a failure leaves more than 5 (gRFC A6), so
// whatever their interleaving the server sees the 50 first attempts and
// at most 4 retries (the failures that leave 9, 8, 7 and 6 tokens).
func TestRetryThrottlingBoundsConcurrentCalls(t *testing.T) {
	const calls = 50
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 1<<30, codes.Unavailable))
	cc, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`,
		`, "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}`)))
	ctx := ctxWait(t)
	// Connected first, so that no call fails before the server sees it.
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("channel never READY (%v)", s)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.Unavailable {
			t.Errorf("call: %v, want UNAVAILABLE", err)
		}
	}
	// The first failures are retried, so more than 50; at most 4 are.
	if n := a.count(); n <= calls || n > calls+4 {
		t.Errorf("server saw %d attempts for %d calls, want %d to %d", n, calls, calls+1, calls+4)
	}
}

func TestRetryThrottlingRefillsOnSuccess(t *testing.T) {
	var mu sync.Mutex
	fail := true
	var a attempts
	_, addr := startServer(t, &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		a.record(ctx)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, status.Error(codes.Unavailable, "down")
		}
		return in, nil
	}})
	// 4 tokens: one failure leaves 3 (> 2, retried), the next 2 (not).
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`,
		`, "retryThrottling": {"maxTokens": 4, "tokenRatio": 1}`)))
	ctx := ctxWait(t)
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	// Two successes: 2 → 4 tokens.
	for range 2 {
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	before := a.count()
	_, err = c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count() - before; n != 2 {
		t.Errorf("after successes: %d attempts, want 2 (retries allowed again)", n)
	}
}

func TestRetryCommittedOnceHeadersArrive(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		a.record(ctx)
		if err := SendHeader(ctx, metadata.Pairs("k", "v")); err != nil {
			return nil, err
		}
		return nil, status.Error(codes.Unavailable, "after headers")
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestRetryPerRPCBufferLimitCommits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  DialOption
	}{
		{"per-rpc", WithPerRPCBufferLimit(1024)},
		{"channel", WithRetryBufferSize(1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a attempts
			_, addr := startServer(t, failingUnary(&a, 1, codes.Unavailable))
			_, c := dial(t, addr, tc.opt, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
			ctx := ctxWait(t)
			// Within the limit: retried.
			if _, err := c.Unary(ctx, wrapperspb.Bytes(make([]byte, 512))); err != nil {
				t.Fatal(err)
			}
			if n := a.count(); n != 2 {
				t.Fatalf("small message: %d attempts, want 2", n)
			}
			// Past it: the one attempt is all there is.
			a.mu.Lock()
			a.prev, a.times, a.msgs = nil, nil, nil
			a.mu.Unlock()
			_, err := c.Unary(ctx, wrapperspb.Bytes(make([]byte, 2048)))
			wantCode(t, err, codes.Unavailable)
			if n := a.count(); n != 1 {
				t.Errorf("large message: %d attempts, want 1", n)
			}
		})
	}
}

func TestRetryClientStreamingReplaysMessages(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		i := a.record(s.Context())
		var total []byte
		for {
			m, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			a.addMsg(i, string(m.Value))
			total = append(total, m.Value...)
		}
		if i == 0 {
			return status.Error(codes.Unavailable, "first attempt fails")
		}
		return s.SendAndClose(wrapperspb.Bytes(total))
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	s, err := c.Upload(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if err := s.Send(wrapperspb.Bytes([]byte(m))); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.CloseAndRecv()
	if err != nil {
		t.Fatalf("CloseAndRecv: %v", err)
	}
	if string(out.Value) != "abc" {
		t.Errorf("reply %q", out.Value)
	}
	if got := fmt.Sprint(a.msgs); got != "[[a b c] [a b c]]" {
		t.Errorf("messages per attempt = %s", got)
	}
}

func TestRetryBidiReplaysMessages(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		i := a.record(s.Context())
		var got []*wrapperspb.BytesValue
		for range 2 {
			m, err := s.Recv()
			if err != nil {
				return err
			}
			a.addMsg(i, string(m.Value))
			got = append(got, m)
		}
		if i == 0 {
			return status.Error(codes.Unavailable, "first attempt fails")
		}
		for _, m := range got {
			if err := s.Send(m); err != nil {
				return err
			}
		}
		return nil
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"x", "y"} {
		if err := s.Send(wrapperspb.Bytes([]byte(m))); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		got = append(got, m.Value...)
	}
	if !bytes.Equal(got, []byte("xy")) {
		t.Errorf("received %q", got)
	}
	if fmt.Sprint(a.msgs) != "[[x y] [x y]]" {
		t.Errorf("messages per attempt = %v", a.msgs)
	}
}

func TestRetryServerStreaming(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{download: func(in *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
		if i := a.record(s.Context()); i == 0 {
			return status.Error(codes.Unavailable, "first attempt fails")
		}
		return s.Send(in)
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	s, err := c.Download(ctxWait(t), wrapperspb.Bytes([]byte("d")))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || string(m.Value) != "d" {
		t.Fatalf("Recv = %v, %v", m, err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv at the end = %v", err)
	}
	if n := a.count(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestRetryDeadlineCoversAllAttempts(t *testing.T) {
	var a attempts
	// A pushback far past the deadline: the call's deadline passes
	// during the wait, and the call ends with it.
	_, addr := startServer(t, pushbackService(&a, 100, "60000"))
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
	ctx, cancel := context.WithTimeout(ctxWait(t), 300*time.Millisecond)
	defer cancel()
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.DeadlineExceeded)
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestRetryCancelDuringBackoff(t *testing.T) {
	var a attempts
	seen := make(chan struct{}, 1)
	svc := pushbackService(&a, 100, "60000")
	inner := svc.unary
	svc.unary = func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		defer func() { seen <- struct{}{} }()
		return inner(ctx, in)
	}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(5, `["UNAVAILABLE"]`, "")))
	ctx, cancel := context.WithCancel(ctxWait(t))
	defer cancel()
	go func() {
		<-seen
		// The first attempt failed; the call (most likely, by now) waits
		// out the pushback. Either way it must end CANCELLED.
		time.Sleep(shortWait)
		cancel()
	}()
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Canceled)
	if n := a.count(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestRetryAbandonedStreamReleasesChannelBuffer(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		a.record(s.Context())
		<-s.Context().Done()
		return s.Context().Err()
	}})
	cc, c := dial(t, addr, WithRetryBufferSize(1024), WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	ctx, cancel := context.WithCancel(ctxWait(t))
	s, err := c.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(wrapperspb.Bytes(make([]byte, 600))); err != nil {
		t.Fatal(err)
	}
	if used := cc.svcCfg.bufUsed.Load(); used == 0 {
		t.Fatal("the message is not in the channel's replay buffer")
	}
	// The user gives up on the stream without reading its end.
	cancel()
	for i := 0; cc.svcCfg.bufUsed.Load() != 0; i++ {
		if i == 1000 {
			t.Fatalf("the abandoned stream still holds %d bytes of the channel's replay buffer", cc.svcCfg.bufUsed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRetryBidiConcurrentSendAndRecv(t *testing.T) {
	var a attempts
	_, addr := startServer(t, &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		i := a.record(s.Context())
		for n := 0; ; n++ {
			if i == 0 && n == 2 {
				return status.Error(codes.Unavailable, "first attempt fails")
			}
			m, err := s.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			a.addMsg(i, string(m.Value))
			if i > 0 {
				if err := s.Send(m); err != nil {
					return err
				}
			}
		}
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		for _, m := range []string{"a", "b", "c", "d", "e"} {
			if err := s.Send(wrapperspb.Bytes([]byte(m))); err != nil {
				sent <- err
				return
			}
		}
		sent <- s.CloseSend()
	}()
	var got []byte
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		got = append(got, m.Value...)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	if string(got) != "abcde" {
		t.Errorf("received %q, want abcde", got)
	}
	if n := a.count(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestRetryThrottlingRefilledBySuccessOfAnyMethod(t *testing.T) {
	var a attempts
	_, addr := startServer(t, failingUnary(&a, 1000, codes.Unavailable))
	// Only Unary has a retry policy; Download, without one, succeeds.
	// 4 tokens: a failure leaves 3 (> 2, retried), the next 2 (not).
	_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{"service": "test.v1.Test", "method": "Unary"}],
	  "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.001s", "maxBackoff": "0.005s",
	    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}],
	  "retryThrottling": {"maxTokens": 4, "tokenRatio": 1}}`))
	ctx := ctxWait(t)
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	// Two successful calls of another method: 2 → 4 tokens.
	for range 2 {
		s, err := c.Download(ctx, wrapperspb.Bytes(nil))
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	before := a.count()
	_, err = c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	if n := a.count() - before; n != 2 {
		t.Errorf("after other methods' successes: %d attempts, want 2 (retries allowed again)", n)
	}
}
