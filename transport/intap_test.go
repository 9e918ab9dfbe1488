package transport

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Methods of the InTapHandle tests.
const (
	tapHoldMethod    = "/test.Tap/Hold"    // runs until the test releases it, ignoring its context
	tapLimitedMethod = "/test.Tap/Limited" // refused with RESOURCE_EXHAUSTED
	tapDeniedMethod  = "/test.Tap/Denied"  // refused with an error that is not a status
)

// tapKey keys the value the tap adds to a handler's context.
type tapKey struct{}

// testTap refuses tapLimitedMethod and tapDeniedMethod, and passes the
// others on with the request's :authority as a context value.
func testTap(ctx context.Context, s *ServerStream) (context.Context, error) {
	switch s.Method() {
	case tapLimitedMethod:
		return nil, status.Error(codes.ResourceExhausted, "rate limited")
	case tapDeniedMethod:
		return nil, errors.New("not on the list")
	}
	a := metadata.ValueFromIncomingContext(ctx, ":authority")
	return context.WithValue(ctx, tapKey{}, a), nil
}

// TestRawInTapHandleRefusesBeforeAHandlerSlot: the InTapHandle answers a
// refused stream at once with a trailers-only response carrying its
// status (PERMISSION_DENIED for an error without one, as grpc-go), with
// RST_STREAM(NO_ERROR) only when the request had not ended; it does so
// even while every handler slot is taken (a handler still runs for a
// stream the client reset), and no handler runs for it. Streams it
// admits get the context it returned.
func TestRawInTapHandleRefusesBeforeAHandlerSlot(t *testing.T) {
	noLeaks(t)
	held := make(chan *ServerStream, 1)
	release := make(chan struct{})
	handled := make(chan string, 16)
	ts := newTestServer(t, ServerConfig{MaxConcurrentStreams: 1, InTapHandle: testTap}, func(s *ServerStream) {
		handled <- s.Method()
		if s.Method() == tapHoldMethod {
			held <- s
			<-release
			s.WriteStatus(status.New(codes.OK, ""))
			return
		}
		if v, _ := s.Context().Value(tapKey{}).([]string); len(v) != 1 || v[0] != "raw.test" {
			s.WriteStatus(status.Newf(codes.Internal, "tap context value %q", v))
			return
		}
		echoHandler(s)
	})
	defer close(release)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{})
	p.expect(isType(http2.FrameSettings))

	// Stream 1's handler holds the only slot past the client's reset.
	p.must(p.writeHeaders(1, false, reqFields(tapHoldMethod)))
	rawRecv(t, held, "the holding handler")
	p.must(p.writeRST(1, http2.ErrCodeCancel))

	for _, tc := range []struct {
		id        uint32
		method    string
		endStream bool
		code      codes.Code
	}{
		{3, tapLimitedMethod, true, codes.ResourceExhausted},
		{5, tapLimitedMethod, false, codes.ResourceExhausted},
		{7, tapDeniedMethod, true, codes.PermissionDenied},
	} {
		p.must(p.writeHeaders(tc.id, tc.endStream, reqFields(tc.method)))
		r := p.readResponse(tc.id)
		if r.rst != nil || r.trailers != nil || r.httpStatus() != "200" {
			t.Fatalf("stream %d: want a trailers-only response, got %+v", tc.id, r.frames)
		}
		if got := r.field("grpc-status"); got != strconv.Itoa(int(tc.code)) {
			t.Errorf("stream %d: grpc-status %s, want %d (%v); %+v", tc.id, got, tc.code, tc.code, r.frames)
		}
		if tc.endStream {
			p.expectNone(anyRST(tc.id), shortWait)
		} else {
			p.expect(isRST(tc.id, http2.ErrCodeNo))
		}
	}

	// Admitted streams run once the slot is free, with the tap's context.
	release <- struct{}{}
	p.unaryOK(9, echoMethod)
	for _, want := range []string{tapHoldMethod, echoMethod} {
		if got := rawRecv(t, handled, "a handler"); got != want {
			t.Errorf("handler ran for %s, want %s (refused streams never reach one)", got, want)
		}
	}
	select {
	case m := <-handled:
		t.Errorf("a handler ran for %s", m)
	default:
	}
	p.expectNone(anyGoAway(), shortWait)
}
