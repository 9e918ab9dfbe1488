package status

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNew(t *testing.T) {
	s := New(codes.NotFound, "no such thing")
	if s.Code() != codes.NotFound || s.Message() != "no such thing" {
		t.Fatalf("New = %v/%q", s.Code(), s.Message())
	}
	s = Newf(codes.Internal, "%d %s", 42, "x")
	if s.Code() != codes.Internal || s.Message() != "42 x" {
		t.Fatalf("Newf = %v/%q", s.Code(), s.Message())
	}
	if got, want := s.String(), "rpc error: code = Internal desc = 42 x"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestNilAndOK(t *testing.T) {
	var s *Status
	if s.Code() != codes.OK || s.Message() != "" || s.Proto() != nil || s.Err() != nil || s.Details() != nil {
		t.Error("nil Status does not behave as OK")
	}
	if _, err := s.WithDetails(&errdetails.ErrorInfo{}); err == nil {
		t.Error("nil Status WithDetails succeeded")
	}
	zero := &Status{}
	if zero.Code() != codes.OK || zero.Message() != "" || zero.Err() != nil || zero.Proto() != nil {
		t.Error("zero Status does not behave as OK")
	}
	ok := New(codes.OK, "fine")
	if ok.Err() != nil {
		t.Errorf("OK Err() = %v, want nil", ok.Err())
	}
	if Error(codes.OK, "x") != nil || Errorf(codes.OK, "%d", 1) != nil {
		t.Error("Error(OK) != nil")
	}
	if _, err := ok.WithDetails(&errdetails.ErrorInfo{}); err == nil {
		t.Error("OK WithDetails succeeded")
	}
	if s := FromProto(nil); s.Code() != codes.OK || s.Err() != nil || s.Proto() == nil {
		t.Errorf("FromProto(nil) = %v", s)
	}
	if ErrorProto(&spb.Status{Code: 0}) != nil {
		t.Error("ErrorProto(OK) != nil")
	}
}

func TestErrorText(t *testing.T) {
	err := Error(codes.InvalidArgument, "bad name")
	if got, want := err.Error(), "rpc error: code = InvalidArgument desc = bad name"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = Errorf(codes.Code(99), "x=%d", 1)
	if got, want := err.Error(), "rpc error: code = Code(99) desc = x=1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestImmutable(t *testing.T) {
	p := &spb.Status{Code: int32(codes.Aborted), Message: "m"}
	s := FromProto(p)
	p.Message = "changed"
	if s.Message() != "m" {
		t.Error("FromProto did not copy")
	}
	q := s.Proto()
	q.Message = "changed"
	if s.Message() != "m" {
		t.Error("Proto did not copy")
	}
	s2, err := s.WithDetails(&errdetails.ErrorInfo{Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Details()) != 0 || len(s2.Details()) != 1 {
		t.Error("WithDetails changed the receiver")
	}
}

func TestDetails(t *testing.T) {
	info := &errdetails.ErrorInfo{Reason: "QUOTA", Domain: "example.com", Metadata: map[string]string{"k": "v"}}
	retry := &errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)}
	s, err := New(codes.ResourceExhausted, "slow down").WithDetails(info, retry)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Details()
	if len(d) != 2 {
		t.Fatalf("Details = %v", d)
	}
	if m, ok := d[0].(*errdetails.ErrorInfo); !ok || !proto.Equal(m, info) {
		t.Errorf("detail 0 = %v", d[0])
	}
	if m, ok := d[1].(*errdetails.RetryInfo); !ok || !proto.Equal(m, retry) {
		t.Errorf("detail 1 = %v", d[1])
	}
	// Appending keeps earlier details.
	s2, err := s.WithDetails(&errdetails.DebugInfo{Detail: "d"})
	if err != nil || len(s2.Details()) != 3 {
		t.Fatalf("second WithDetails: %v, %d details", err, len(s2.Details()))
	}

	// Unknown type: an error in its place.
	p := &spb.Status{Code: int32(codes.Internal), Details: []*anypb.Any{
		{TypeUrl: "type.googleapis.com/no.such.Type", Value: []byte{1, 2}},
		{TypeUrl: "type.googleapis.com/google.rpc.ErrorInfo", Value: []byte{0xff, 0xff}},
	}}
	d = FromProto(p).Details()
	if len(d) != 2 {
		t.Fatalf("Details = %v", d)
	}
	for i, x := range d {
		if _, ok := x.(error); !ok {
			t.Errorf("detail %d = %T, want error", i, x)
		}
	}
}

// customErr carries a status through a type of its own.
type customErr struct{ st *Status }

func (e customErr) Error() string       { return "custom" }
func (e customErr) GRPCStatus() *Status { return e.st }

func TestFromError(t *testing.T) {
	base := New(codes.NotFound, "gone")
	withDetails, _ := New(codes.FailedPrecondition, "pre").WithDetails(&errdetails.ErrorInfo{Reason: "R"})

	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
		wantOK   bool
	}{
		{"nil", nil, codes.OK, "", true},
		{"status", base.Err(), codes.NotFound, "gone", true},
		{"wrapped status", fmt.Errorf("lookup: %w", base.Err()), codes.NotFound, "lookup: rpc error: code = NotFound desc = gone", true},
		{"double wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", base.Err())), codes.NotFound, "a: b: rpc error: code = NotFound desc = gone", true},
		{"custom", customErr{New(codes.Aborted, "ab")}, codes.Aborted, "ab", true},
		{"wrapped custom", fmt.Errorf("w: %w", customErr{New(codes.Aborted, "ab")}), codes.Aborted, "w: custom", true},
		{"custom nil status", customErr{nil}, codes.Unknown, "custom", false},
		{"wrapped custom nil status", fmt.Errorf("w: %w", customErr{nil}), codes.Unknown, "w: custom", false},
		{"canceled", context.Canceled, codes.Canceled, "context canceled", true},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded", true},
		{"wrapped canceled", fmt.Errorf("read: %w", context.Canceled), codes.Canceled, "read: context canceled", true},
		{"wrapped deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "read: context deadline exceeded", true},
		{"status beats context", errors.Join(base.Err(), context.Canceled), codes.NotFound, "rpc error: code = NotFound desc = gone\ncontext canceled", true},
		{"plain", errors.New("boom"), codes.Unknown, "boom", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := FromError(tt.err)
			if ok != tt.wantOK || s.Code() != tt.wantCode || s.Message() != tt.wantMsg {
				t.Errorf("FromError = (%v, %q, %v), want (%v, %q, %v)", s.Code(), s.Message(), ok, tt.wantCode, tt.wantMsg, tt.wantOK)
			}
			if c := Code(tt.err); c != tt.wantCode {
				t.Errorf("Code = %v, want %v", c, tt.wantCode)
			}
			if c := Convert(tt.err).Code(); c != tt.wantCode {
				t.Errorf("Convert = %v, want %v", c, tt.wantCode)
			}
		})
	}

	// Wrapping keeps the details.
	s, ok := FromError(fmt.Errorf("ctx: %w", withDetails.Err()))
	if !ok || len(s.Details()) != 1 || s.Code() != codes.FailedPrecondition {
		t.Errorf("wrapped with details = %v, %v, %v", s.Code(), s.Details(), ok)
	}
	// The status of a direct status error is the very same status.
	if s, _ := FromError(base.Err()); s != base {
		t.Error("FromError(st.Err()) did not return st")
	}
}

func TestFromContextError(t *testing.T) {
	if FromContextError(nil) != nil {
		t.Error("FromContextError(nil) != nil")
	}
	if c := FromContextError(context.Canceled).Code(); c != codes.Canceled {
		t.Errorf("Canceled -> %v", c)
	}
	if c := FromContextError(fmt.Errorf("x: %w", context.DeadlineExceeded)).Code(); c != codes.DeadlineExceeded {
		t.Errorf("DeadlineExceeded -> %v", c)
	}
	if c := FromContextError(errors.New("x")).Code(); c != codes.Unknown {
		t.Errorf("other -> %v", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c := Code(ctx.Err()); c != codes.Canceled {
		t.Errorf("Code(ctx.Err()) = %v", c)
	}
}

func TestErrorsIsAs(t *testing.T) {
	err := Error(codes.Unavailable, "down")
	same := Error(codes.Unavailable, "down")
	if err == same {
		t.Fatal("distinct errors expected")
	}
	if !errors.Is(err, same) {
		t.Error("errors.Is of equal statuses = false")
	}
	if !errors.Is(fmt.Errorf("w: %w", err), same) {
		t.Error("errors.Is through wrap = false")
	}
	if errors.Is(err, Error(codes.Unavailable, "up")) {
		t.Error("errors.Is with different message = true")
	}
	if errors.Is(err, Error(codes.Internal, "down")) {
		t.Error("errors.Is with different code = true")
	}
	if errors.Is(err, errors.New("rpc error: code = Unavailable desc = down")) {
		t.Error("errors.Is with a non-status error = true")
	}
	d1, _ := New(codes.Unavailable, "down").WithDetails(&errdetails.ErrorInfo{Reason: "a"})
	d2, _ := New(codes.Unavailable, "down").WithDetails(&errdetails.ErrorInfo{Reason: "a"})
	d3, _ := New(codes.Unavailable, "down").WithDetails(&errdetails.ErrorInfo{Reason: "b"})
	if !errors.Is(d1.Err(), d2.Err()) || errors.Is(d1.Err(), d3.Err()) || errors.Is(d1.Err(), err) {
		t.Error("errors.Is does not compare details")
	}

	var gs interface{ GRPCStatus() *Status }
	if !errors.As(fmt.Errorf("w: %w", err), &gs) || gs.GRPCStatus().Code() != codes.Unavailable {
		t.Error("errors.As to GRPCStatus interface failed")
	}
}

// otherStatus stands for another gRPC library's status type (grpc-go's
// *status.Status): it has Proto() *spb.Status.
type otherStatus struct{ p *spb.Status }

func (s *otherStatus) Proto() *spb.Status {
	if s == nil {
		return nil
	}
	return proto.Clone(s.p).(*spb.Status)
}

// otherStatusError stands for that library's status error: its
// GRPCStatus returns the library's own type, not ours.
type otherStatusError struct{ s *otherStatus }

func (e *otherStatusError) Error() string {
	if e.s == nil {
		return "other: no status"
	}
	return "other: " + e.s.p.GetMessage()
}

func (e *otherStatusError) GRPCStatus() *otherStatus { return e.s }

func TestFromErrorOfAnotherStatusPackage(t *testing.T) {
	detail, err := anypb.New(&errdetails.ErrorInfo{Reason: "QUOTA"})
	if err != nil {
		t.Fatal(err)
	}
	foreign := &otherStatusError{s: &otherStatus{p: &spb.Status{
		Code: int32(codes.ResourceExhausted), Message: "slow down", Details: []*anypb.Any{detail},
	}}}

	st, ok := FromError(foreign)
	if !ok || st.Code() != codes.ResourceExhausted || st.Message() != "slow down" {
		t.Fatalf("FromError = %v, %v; want RESOURCE_EXHAUSTED \"slow down\", true", st, ok)
	}
	if d := st.Details(); len(d) != 1 || d[0].(*errdetails.ErrorInfo).GetReason() != "QUOTA" {
		t.Fatalf("details = %v", d)
	}
	if c := Code(foreign); c != codes.ResourceExhausted {
		t.Fatalf("Code = %v", c)
	}
	if c := Convert(foreign).Code(); c != codes.ResourceExhausted {
		t.Fatalf("Convert = %v", c)
	}

	// Wrapped, also in a joined error: code and details kept, the message
	// is the whole chain's, as for our own status errors.
	wrapped := fmt.Errorf("calling backend: %w", foreign)
	st, ok = FromError(wrapped)
	if !ok || st.Code() != codes.ResourceExhausted || st.Message() != wrapped.Error() || len(st.Details()) != 1 {
		t.Fatalf("FromError(wrapped) = %v, %v", st, ok)
	}
	joined := errors.Join(errors.New("first"), fmt.Errorf("second: %w", foreign))
	if c := Code(joined); c != codes.ResourceExhausted {
		t.Fatalf("Code(joined) = %v", c)
	}

	// A nil status from the other library: UNKNOWN and false, as for ours.
	st, ok = FromError(&otherStatusError{s: nil})
	if ok || st.Code() != codes.Unknown {
		t.Fatalf("FromError(nil status) = %v, %v", st, ok)
	}
	// A GRPCStatus method whose result has no Proto is not a status.
	if c := Code(oddErr{}); c != codes.Unknown {
		t.Fatalf("Code(oddErr) = %v", c)
	}
	// Our own status still wins over theirs deeper in the chain.
	both := fmt.Errorf("%w; %w", Error(codes.NotFound, "ours"), foreign)
	if c := Code(both); c != codes.NotFound {
		t.Fatalf("Code(both) = %v", c)
	}
}

type oddErr struct{}

func (oddErr) Error() string      { return "odd" }
func (oddErr) GRPCStatus() string { return "not a status" }
