package rpc

import (
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// TestSendAfterServerReturnedIsEOF: a client-streaming handler that
// returns an error at once ends the call; once its status arrived, every
// Send returns io.EOF, and CloseAndRecv returns the handler's status.
func TestSendAfterServerReturnedIsEOF(t *testing.T) {
	_, addr := startServer(t, &testService{
		upload: func(ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
			return status.Error(codes.FailedPrecondition, "upload refused")
		},
	})
	_, c := dial(t, addr)
	up, err := c.Upload(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	// Header waits for the response headers or the end of the stream: a
	// handler that returned at once sends a trailers-only response.
	up.Header()
	msg := wrapperspb.Bytes(make([]byte, 1024))
	for i := range 1000 {
		if err := up.Send(msg); err != io.EOF {
			t.Fatalf("Send %d after the handler returned: %v, want io.EOF", i, err)
		}
	}
	_, err = up.CloseAndRecv()
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != "upload refused" {
		t.Fatalf("CloseAndRecv: %v, want the handler's FAILED_PRECONDITION", err)
	}
}

// TestServerStreamingRefusedBeforeItsRequestReportsTheStatus: a server
// that fails a server-streaming call before its request arrives (here a
// stream interceptor) answers trailers-only; the client's SendMsg of the
// one request, after that, returns nil rather than io.EOF (as grpc-go),
// so that generated code does not hand its user io.EOF for the stream,
// and Recv returns the server's status.
func TestServerStreamingRefusedBeforeItsRequestReportsTheStatus(t *testing.T) {
	_, addr := startServer(t, &testService{}, StreamInterceptor(func(any, ServerStream, *StreamServerInfo, StreamHandler) error {
		return status.Error(codes.PermissionDenied, "refused before the request")
	}))
	cc, _ := dial(t, addr)
	s, err := cc.NewStream(ctxWait(t), &testServiceDesc.Streams[0], "/test.v1.Test/Download")
	if err != nil {
		t.Fatal(err)
	}
	s.Header() // waits for the trailers-only response
	if err := s.SendMsg(wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("SendMsg after the server ended the call: %v, want nil (Recv reports the status)", err)
	}
	err = s.RecvMsg(new(wrapperspb.BytesValue))
	if st := status.Convert(err); st.Code() != codes.PermissionDenied {
		t.Fatalf("RecvMsg: %v, want the server's PERMISSION_DENIED", err)
	}
}

// TestInvalidMetadataFailsCall: request metadata that cannot be sent (a
// non-ASCII value, a reserved grpc- key) fails the call with INTERNAL
// instead of being dropped silently; the handler never runs.
func TestInvalidMetadataFailsCall(t *testing.T) {
	var calls atomic.Int32
	_, addr := startServer(t, &testService{
		unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			calls.Add(1)
			return in, nil
		},
	})
	_, c := dial(t, addr)
	for _, kv := range [][2]string{{"name", "José"}, {"grpc-custom", "x"}} {
		ctx := metadata.AppendToOutgoingContext(ctxWait(t), kv[0], kv[1])
		_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("x")))
		wantCode(t, err, codes.Internal)
	}
	ctx := metadata.AppendToOutgoingContext(ctxWait(t), "name-bin", "José")
	if _, err := c.Unary(ctx, wrapperspb.Bytes([]byte("x"))); err != nil {
		t.Fatalf("binary metadata: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1 (only the valid call)", n)
	}
}

// TestSlotWaitersHoldNoEncodedRequests: with the server's
// MaxConcurrentStreams(1) taken by one call, 300 calls with 256 KiB
// requests wait for a slot without having encoded their requests (which
// took 151 MiB of heap when requests were queued behind the limit). The
// bound is generous (20 MiB, against 75 MiB for the encoded requests
// alone) so that the test checks where requests wait, not the exact
// heap. Cancelled waiters return CANCELLED and never reach the server.
func TestSlotWaitersHoldNoEncodedRequests(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseHold := func() { releaseOnce.Do(func() { close(release) }) }
	var waiterCalls atomic.Int32
	holding := make(chan struct{})
	_, addr := startServer(t, &testService{
		unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			if string(in.Value) == "hold" {
				close(holding)
				<-release
				return in, nil
			}
			waiterCalls.Add(1)
			return wrapperspb.Bytes(nil), nil
		},
	}, MaxConcurrentStreams(1))
	t.Cleanup(releaseHold)
	_, c := dial(t, addr)
	held := make(chan error, 1)
	go func() {
		_, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("hold")))
		held <- err
	}()
	<-holding // the held call has the server's only slot

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req := wrapperspb.Bytes(make([]byte, 256<<10)) // shared: only encodings would cost
	const calls = 300
	ctx, cancel := context.WithCancel(ctxWait(t))
	errs := make(chan error, calls)
	var started sync.WaitGroup
	for range calls {
		started.Add(1)
		go func() {
			started.Done()
			_, err := c.Unary(ctx, req)
			errs <- err
		}()
	}
	started.Wait()
	// Give the calls time to queue whatever they queue; the heap is
	// measured either way.
	for range 50 {
		runtime.Gosched()
	}
	time.Sleep(100 * time.Millisecond)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	cancel()
	for range calls {
		if err := <-errs; status.Code(err) != codes.Canceled {
			t.Errorf("waiting call: %v, want CANCELLED", err)
		}
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth > 20<<20 {
		t.Errorf("heap grew by %d MiB with %d calls waiting for a slot, want < 20 MiB", growth>>20, calls)
	}
	releaseHold()
	if err := <-held; err != nil {
		t.Fatalf("held call: %v", err)
	}
	// A call after the cancelled ones runs, and is the only one the
	// server sees besides the held call.
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("call after the waiters left: %v", err)
	}
	if n := waiterCalls.Load(); n != 1 {
		t.Fatalf("the server ran %d calls besides the held one, want 1", n)
	}
}

// TestCloseCancelsInFlightCalls: ClientConn.Close ends in-flight calls
// with CANCELLED, and the server's handler sees its context cancelled
// (the client reset the stream) rather than a broken connection.
func TestCloseCancelsInFlightCalls(t *testing.T) {
	running := make(chan struct{})
	handlerErr := make(chan error, 1)
	_, addr := startServer(t, &testService{
		upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
			close(running)
			for {
				if _, err := s.Recv(); err != nil {
					handlerErr <- err
					return err
				}
			}
		},
	})
	cc, c := dial(t, addr)
	up, err := c.Upload(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(wrapperspb.Bytes([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	<-running
	cc.Close()
	_, err = up.CloseAndRecv()
	wantCode(t, err, codes.Canceled)
	select {
	case err := <-handlerErr:
		wantCode(t, err, codes.Canceled)
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never saw the cancel")
	}
}
