package rpc

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestRequestCardinalityViolationIsUnimplemented(t *testing.T) {
	// The unary implementation reports that it ran.
	decErrs := make(chan error, 1)
	svc := &testService{
		unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			decErrs <- nil
			return in, nil
		},
	}
	_, addr := startServer(t, svc)
	cc, _ := dial(t, addr)
	// A client that may send any number of messages on any method.
	anyDesc := &StreamDesc{ClientStreams: true, ServerStreams: true}
	for _, method := range []string{"Unary", "Download"} {
		for _, n := range []int{0, 2} {
			t.Run(method+"/"+string(rune('0'+n)), func(t *testing.T) {
				select { // a report from an earlier subtest that failed
				case <-decErrs:
				default:
				}
				s, err := cc.NewStream(ctxWait(t), anyDesc, "/test.v1.Test/"+method)
				if err != nil {
					t.Fatal(err)
				}
				for range n {
					if err := s.SendMsg(wrapperspb.Bytes([]byte("req"))); err != nil {
						t.Fatal(err)
					}
				}
				s.CloseSend()
				var got error
				for range 10 { // the server streams at most 3 replies
					if got = s.RecvMsg(new(wrapperspb.BytesValue)); got != nil {
						break
					}
				}
				if status.Code(got) != codes.Unimplemented {
					t.Fatalf("%d requests to %s: %v, want INTERNAL", n, method, got)
				}
				select {
				case <-decErrs:
					t.Fatalf("the handler ran with %d requests", n)
				default:
				}
			})
		}
	}
}
