package rpc

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

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
