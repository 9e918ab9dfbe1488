package rpc

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

func TestDefaultServiceConfigInvalidFailsNewClient(t *testing.T) {
	for _, js := range []string{`{"methodConfig": [{"timeout": "soon"}]}`, `{`, `not json`} {
		cc, err := newTestClient("127.0.0.1:1", WithDefaultServiceConfig(js))
		if !errors.Is(err, serviceconfig.ErrInvalid) {
			if cc != nil {
				cc.Close()
			}
			t.Errorf("NewClient with %q = %v, want an error wrapping serviceconfig.ErrInvalid", js, err)
		}
	}
}

// blockingService's unary reports the deadline of its context on
// deadlines, then waits for its context to end.
func blockingService(deadlines chan<- time.Duration) *testService {
	return &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		left := time.Duration(-1)
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		deadlines <- left
		<-ctx.Done()
		return nil, ctx.Err()
	}}
}

// wantShortDeadline fails the test unless the server saw a deadline
// much closer than the call's own (longWait).
func wantShortDeadline(t *testing.T, deadlines <-chan time.Duration) {
	t.Helper()
	if left := <-deadlines; left < 0 || left > longWait/2 {
		t.Errorf("the server saw %v left (-1: no deadline), want the method config's timeout", left)
	}
}

func TestMethodConfigTimeout(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	_, addr := startServer(t, blockingService(deadlines))
	_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [
	  {"name": [{"service": "test.v1.Test", "method": "Unary"}], "timeout": "0.2s"},
	  {"name": [{"service": "test.v1.Test"}], "timeout": "3600s"}]}`))
	// Only a long deadline of its own: the method config's ends the call.
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.DeadlineExceeded)
	wantShortDeadline(t, deadlines)
}

func TestMethodConfigTimeoutStreaming(t *testing.T) {
	_, addr := startServer(t, &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		<-s.Context().Done()
		return s.Context().Err()
	}})
	_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "timeout": "0.2s"}]}`))
	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	if dl, ok := s.Context().Deadline(); !ok || time.Until(dl) > longWait/2 {
		t.Errorf("the stream's context deadline is %v away (set: %v), want the method config's timeout", time.Until(dl), ok)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.DeadlineExceeded)
}

func TestMethodConfigTimeoutKeepsEarlierCallDeadline(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	_, addr := startServer(t, blockingService(deadlines))
	_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "timeout": "3600s"}]}`))
	ctx, cancel := context.WithTimeout(ctxWait(t), 200*time.Millisecond)
	defer cancel()
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.DeadlineExceeded)
	wantShortDeadline(t, deadlines)
}

// unusedAddr is a loopback address nothing listens on (yet).
func unusedAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestMethodConfigWaitForReady(t *testing.T) {
	addr := unusedAddr(t)
	fastBackoff := WithBackoff(BackoffConfig{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond})
	cc, c := dial(t, addr, fastBackoff, WithLogger(discardLogger()),
		WithDefaultServiceConfig(`{"methodConfig": [{"name": [{"service": "test.v1.Test"}], "waitForReady": true}]}`))
	ctx := ctxWait(t)
	// The call option wins over the config: fail fast while nothing
	// listens.
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(false))
	wantCode(t, err, codes.Unavailable)
	// The config's waitForReady: the call waits for the server.
	done := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the call did not wait for the server: %v (state %v)", err, cc.State())
	case <-time.After(shortWait):
	}
	lis, _ := listenAt(t, addr)
	srv := NewServer()
	srv.RegisterService(&testServiceDesc, &testService{})
	go srv.Serve(lis)
	defer srv.Stop()
	if err := <-done; err != nil {
		t.Fatalf("wait-for-ready call: %v", err)
	}
}

func TestMethodConfigMessageSizeLimits(t *testing.T) {
	big := make([]byte, 200)
	_, addr := startServer(t, &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		return wrapperspb.Bytes(big), nil
	}})
	ctx := ctxWait(t)
	t.Run("request", func(t *testing.T) {
		_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": 100}]}`))
		_, err := c.Unary(ctx, wrapperspb.Bytes(big))
		wantCode(t, err, codes.ResourceExhausted)
	})
	t.Run("response", func(t *testing.T) {
		_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "maxResponseMessageBytes": 100}]}`))
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
		wantCode(t, err, codes.ResourceExhausted)
	})
	t.Run("call option smaller wins", func(t *testing.T) {
		_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "maxResponseMessageBytes": 1000}]}`))
		if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
			t.Fatalf("within the config's limit: %v", err)
		}
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil), MaxCallRecvMsgSize(100))
		wantCode(t, err, codes.ResourceExhausted)
	})
	t.Run("config smaller than call option wins", func(t *testing.T) {
		_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": 100}]}`),
			WithDefaultCallOptions(MaxCallSendMsgSize(1000)))
		_, err := c.Unary(ctx, wrapperspb.Bytes(big))
		wantCode(t, err, codes.ResourceExhausted)
	})
	t.Run("other method unaffected", func(t *testing.T) {
		_, c := dial(t, addr, WithDefaultServiceConfig(`{"methodConfig": [{"name": [{"service": "other.Svc"}], "maxResponseMessageBytes": 100}]}`))
		if _, err := c.Unary(ctx, wrapperspb.Bytes(big)); err != nil {
			t.Fatal(err)
		}
	})
}
