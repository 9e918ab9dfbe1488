package rpc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// heldService returns a service whose Unary handler reports its start
// on started, then runs, ignoring its context, until release is closed,
// and sets returned just before it returns.
func heldService(started chan<- struct{}, release <-chan struct{}, returned *atomic.Bool) *testService {
	return &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		started <- struct{}{}
		<-release
		returned.Store(true)
		return in, nil
	}}
}

// startBlockedCall starts a Unary call on the server at addr in the
// background and waits for its handler to start; the call's error comes
// on the returned channel.
func startBlockedCall(t *testing.T, addr string, started <-chan struct{}) <-chan error {
	t.Helper()
	_, c := dial(t, addr)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(longWait):
		t.Fatal("the handler never started")
	}
	return errc
}

// TestStopWithoutWaitForHandlersDoesNotWaitForThem: by default, as in
// grpc-go, Stop returns once the connections are closed, while a handler
// that ignores its context still runs.
func TestStopWithoutWaitForHandlersDoesNotWaitForThem(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	var returned atomic.Bool
	srv, addr := startServer(t, heldService(started, release, &returned))
	defer close(release)
	errc := startBlockedCall(t, addr, started)

	stopped := make(chan struct{})
	go func() {
		srv.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(longWait):
		t.Fatal("Stop waited for a handler that was still running")
	}
	if returned.Load() {
		t.Fatal("the handler returned before it was released")
	}
	if err := <-errc; err == nil {
		t.Error("the call succeeded across Stop")
	}
}

// TestWaitForHandlersStopWaitsForHandlers: with WaitForHandlers(true),
// Stop and GracefulStop return only after every handler has returned.
func TestWaitForHandlersStopWaitsForHandlers(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*Server)
	}{
		{"Stop", (*Server).Stop},
		{"GracefulStop", (*Server).GracefulStop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, release := make(chan struct{}, 1), make(chan struct{})
			var returned atomic.Bool
			srv, addr := startServer(t, heldService(started, release, &returned), WaitForHandlers(true))
			errc := startBlockedCall(t, addr, started)

			stopped := make(chan struct{})
			go func() {
				tc.stop(srv)
				close(stopped)
			}()
			select {
			case <-stopped:
				close(release)
				t.Fatalf("%s returned while a handler was running", tc.name)
			case <-time.After(shortWait):
			}
			close(release)
			select {
			case <-stopped:
			case <-time.After(longWait):
				t.Fatalf("%s never returned", tc.name)
			}
			if !returned.Load() {
				t.Fatalf("%s returned before the handler did", tc.name)
			}
			<-errc
		})
	}
}
