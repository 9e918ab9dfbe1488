package rpc

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
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

// TestAbandonedStreamEndsItsCall: a stream whose context its user cancels
// and which is never used again ends its call anyway: the balancer's
// Done hears of it (CANCELLED) and the channel, counting it out, goes
// idle after its idle timeout. Before, both waited for a RecvMsg that
// never came: the channel never went idle.
func TestAbandonedStreamEndsItsCall(t *testing.T) {
	received := make(chan struct{})
	_, addr := startServer(t, &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		if _, err := s.Recv(); err == nil {
			close(received)
		}
		<-s.Context().Done() // never answers
		return s.Context().Err()
	}})
	cc, c, _ := ctlClientAt(t, addr, WithIdleTimeout(200*time.Millisecond))
	ctx, cancel := context.WithCancel(ctxWait(t))
	s, err := c.Bidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(wrapperspb.Bytes([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	// Cancel once the message is at the server, so that the call has
	// certainly sent bytes; Send only queues it.
	select {
	case <-received:
	case <-time.After(longWait):
		t.Fatal("the server never received the message")
	}
	cancel() // and s is never used again
	select {
	case di := <-ctlDones:
		if status.Code(di.Err) != codes.Canceled || !di.BytesSent {
			t.Errorf("Done of the abandoned stream: err %v, bytes sent %v; want CANCELLED, true", di.Err, di.BytesSent)
		}
	case <-time.After(longWait):
		t.Fatal("the balancer's Done was never called for the abandoned stream")
	}
	wctx := ctxWait(t)
	for st := cc.GetState(); st != connectivity.Idle; st = cc.GetState() {
		if !cc.WaitForStateChange(wctx, st) {
			t.Fatalf("the channel stayed %v with only an abandoned stream, want IDLE after the idle timeout", st)
		}
	}
}

// TestHeaderAfterCancelDoesNotRaceTheWatch: a stream with the Header
// call option whose user cancels its context and then calls Header: the
// context watch, finishing the call on a goroutine of its own, fills the
// option's MD while Header does too. They must not race (go test -race).
func TestHeaderAfterCancelDoesNotRaceTheWatch(t *testing.T) {
	_, addr := startServer(t, &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		if err := s.SendHeader(metadata.Pairs("h", "v")); err != nil {
			return err
		}
		if err := s.Send(wrapperspb.Bytes([]byte("x"))); err != nil {
			return err
		}
		<-s.Context().Done()
		return s.Context().Err()
	}})
	_, c := dial(t, addr)
	for range 20 {
		ctx, cancel := context.WithCancel(ctxWait(t))
		var hdr metadata.MD
		s, err := c.Bidi(ctx, Header(&hdr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		md, _ := s.Header()
		if got := md.Get("h"); len(got) != 1 || got[0] != "v" {
			t.Fatalf("Header() = %v, want h: v", md)
		}
		// Recv waits for the call's end, so hdr is read after it.
		if _, err := s.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("Recv after cancel: %v, want CANCELLED", err)
		}
		if got := hdr.Get("h"); len(got) != 1 || got[0] != "v" {
			t.Fatalf("the Header call option holds %v, want h: v", hdr)
		}
	}
}
