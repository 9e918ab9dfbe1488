package rpc

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCloseCancelsDial(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		close(started)
		<-ctx.Done() // a dial that hangs until it is cancelled
		ended <- ctx.Err()
		return nil, ctx.Err()
	}
	cc, err := newTestClient("127.0.0.1:1", WithContextDialer(dialer), WithMinConnectTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cc.Connect()
	select {
	case <-started:
	case <-time.After(longWait):
		t.Fatal("no dial")
	}
	closed := make(chan struct{})
	go func() {
		cc.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(longWait):
		t.Fatal("Close did not cancel the dial")
	}
	if err := <-ended; err != context.Canceled {
		t.Errorf("dial ended with %v, want context.Canceled", err)
	}
}

// transportCount returns how many transports cc has not seen close.
func transportCount(cc *ClientConn) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.transports)
}

func TestGoAwayIdlesChannelAndForgetsTransport(t *testing.T) {
	srv, addr := startServer(t, &testService{})
	cc, c := dial(t, addr)
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	if n := transportCount(cc); n != 1 || cc.State() != Ready {
		t.Fatalf("%d transports in state %v, want 1, Ready", n, cc.State())
	}
	// GracefulStop sends GOAWAY: the channel goes idle and, once the
	// connection closed, forgets the transport.
	srv.GracefulStop()
	for cc.State() == Ready {
		if !cc.WaitForStateChange(ctx, Ready) {
			t.Fatal("channel still ready after GOAWAY")
		}
	}
	for deadline := time.Now().Add(longWait); transportCount(cc) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("closed transport still held")
		}
	}
	if s := cc.State(); s != Idle && s != TransientFailure && s != Connecting {
		t.Errorf("state %v after GOAWAY", s)
	}
}

func TestCloseEndsBackoff(t *testing.T) {
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		return nil, errors.New("refused")
	}
	cc, err := newTestClient("127.0.0.1:1", WithContextDialer(dialer),
		WithBackoff(BackoffConfig{BaseDelay: time.Hour, Multiplier: 1.6, MaxDelay: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	cc.Connect()
	ctx := ctxWait(t)
	for s := cc.State(); s != TransientFailure; s = cc.State() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatal("no connection failure")
		}
	}
	// The connect loop now waits out an hour of backoff; Close ends the
	// wait (and waits for the loop).
	closed := make(chan struct{})
	go func() {
		cc.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(longWait):
		t.Fatal("Close did not end the backoff wait")
	}
}
