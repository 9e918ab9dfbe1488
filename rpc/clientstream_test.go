package rpc

import (
	"context"
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
