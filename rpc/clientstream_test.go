package rpc

import (
	"context"
	"io"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

func TestHeaderOfStreamFailedBeforeHeadersIsNilNil(t *testing.T) {
	svc := &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		<-s.Context().Done() // never sends headers
		return s.Context().Err()
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx, cancel := context.WithCancel(ctxWait(t))
	s, err := c.Bidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	md, err := s.Header()
	if md != nil || err != nil {
		t.Fatalf("Header() = %v, %v; want nil, nil (the status is RecvMsg's)", md, err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.Canceled)
}

// cardinalityDesc serves, as streaming methods, responses of the wrong
// cardinality for a client that calls them as unary or client-streaming
// methods: Zero ends with OK and no message, Two sends two messages.
var cardinalityDesc = ServiceDesc{
	ServiceName: "test.v1.Cardinality",
	Streams: []StreamDesc{
		{StreamName: "Zero", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s ServerStream) error {
			return drainRequests(s)
		}},
		{StreamName: "Two", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s ServerStream) error {
			if err := drainRequests(s); err != nil {
				return err
			}
			for range 2 {
				if err := s.SendMsg(wrapperspb.Bytes([]byte("reply"))); err != nil {
					return err
				}
			}
			return nil
		}},
	},
}

// drainRequests reads requests until the client's side ends.
func drainRequests(s ServerStream) error {
	for {
		if err := s.RecvMsg(new(wrapperspb.BytesValue)); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func TestResponseCardinalityViolationIsUnimplemented(t *testing.T) {
	lis, addr := listenAt(t, "127.0.0.1:0")
	srv := NewServer()
	srv.RegisterService(&cardinalityDesc, nil)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, _ := dial(t, addr)
	for _, method := range []string{"Zero", "Two"} {
		full := "/test.v1.Cardinality/" + method
		t.Run("Unary"+method, func(t *testing.T) {
			err := cc.Invoke(ctxWait(t), full, wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
			wantCode(t, err, codes.Unimplemented)
		})
		t.Run("ClientStreaming"+method, func(t *testing.T) {
			s, err := cc.NewStream(ctxWait(t), &StreamDesc{ClientStreams: true}, full)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SendMsg(wrapperspb.Bytes(nil)); err != nil {
				t.Fatal(err)
			}
			s.CloseSend()
			wantCode(t, s.RecvMsg(new(wrapperspb.BytesValue)), codes.Unimplemented)
		})
	}
}
