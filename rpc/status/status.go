// Package status builds and inspects gRPC statuses: a code, a message and
// optional details, carried on the wire as the grpc-status,
// grpc-message and grpc-status-details-bin trailers.
//
// A *Status is immutable. Handlers return Err() of a status (or Error(c,
// msg)) and callers get the status back with FromError, Convert or Code,
// also through errors that wrap it.
//
// The wire message is google.rpc.Status
// (google.golang.org/genproto/googleapis/rpc/status), the same as in every
// gRPC implementation, so details round-trip with any peer.
package status

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// Status is the outcome of an RPC: a code, a message and optional details.
// It is immutable; methods that change it return a new Status. A nil
// *Status means OK.
type Status struct {
	s *spb.Status
}

// okStatus is what New(codes.OK, "") returns: every RPC that succeeds
// ends with it, and a Status is immutable, so one value serves them all.
var okStatus = &Status{s: &spb.Status{}}

// New returns a Status with code c and message msg.
func New(c codes.Code, msg string) *Status {
	if c == codes.OK && msg == "" {
		return okStatus
	}
	return &Status{s: &spb.Status{Code: int32(c), Message: msg}}
}

// Newf is New with a message formatted by fmt.Sprintf.
func Newf(c codes.Code, format string, a ...any) *Status {
	return New(c, fmt.Sprintf(format, a...))
}

// Error returns an error with code c and message msg, or nil if c is OK.
func Error(c codes.Code, msg string) error {
	return New(c, msg).Err()
}

// Errorf is Error with a message formatted by fmt.Sprintf.
func Errorf(c codes.Code, format string, a ...any) error {
	return Error(c, fmt.Sprintf(format, a...))
}

// FromProto returns a Status holding a copy of s. A nil s gives an OK
// status.
func FromProto(s *spb.Status) *Status {
	if s == nil {
		return &Status{s: &spb.Status{}}
	}
	return &Status{s: proto.Clone(s).(*spb.Status)}
}

// ErrorProto returns an error holding a copy of s, or nil if its code is OK.
func ErrorProto(s *spb.Status) error {
	return FromProto(s).Err()
}

// Code returns the status code; OK for a nil Status.
func (s *Status) Code() codes.Code {
	if s == nil || s.s == nil {
		return codes.OK
	}
	return codes.Code(s.s.Code)
}

// Message returns the message; "" for a nil Status.
func (s *Status) Message() string {
	if s == nil || s.s == nil {
		return ""
	}
	return s.s.Message
}

// Proto returns a copy of the status as a google.rpc.Status; nil for a nil
// Status.
func (s *Status) Proto() *spb.Status {
	if s == nil || s.s == nil {
		return nil
	}
	return proto.Clone(s.s).(*spb.Status)
}

// Err returns an error holding the status, or nil if the code is OK. The
// error's text is "rpc error: code = <code> desc = <message>"; FromError
// recovers the status from it.
func (s *Status) Err() error {
	if s.Code() == codes.OK {
		return nil
	}
	return &statusError{s: s}
}

// String describes the status in the same form as the text of Err.
func (s *Status) String() string {
	return fmt.Sprintf("rpc error: code = %s desc = %s", s.Code(), s.Message())
}

// WithDetails returns a new Status with the given messages appended to the
// details, each packed in a google.protobuf.Any. It fails for an OK status,
// which cannot carry details, and if a message cannot be marshalled.
func (s *Status) WithDetails(details ...proto.Message) (*Status, error) {
	if s.Code() == codes.OK {
		return nil, errors.New("status: an OK status cannot carry details")
	}
	p := s.Proto()
	for _, d := range details {
		a, err := anypb.New(d)
		if err != nil {
			return nil, fmt.Errorf("status: packing detail %T: %w", d, err)
		}
		p.Details = append(p.Details, a)
	}
	return &Status{s: p}, nil
}

// Details returns the details of the status, each unpacked into its
// message type. A detail whose type is not linked into the program or does
// not unmarshal is returned as an error in its place. Nil for a nil Status.
func (s *Status) Details() []any {
	if s == nil || s.s == nil {
		return nil
	}
	out := make([]any, 0, len(s.s.Details))
	for _, a := range s.s.Details {
		m, err := a.UnmarshalNew()
		if err != nil {
			out = append(out, fmt.Errorf("status: unpacking detail %q: %w", a.GetTypeUrl(), err))
			continue
		}
		out = append(out, m)
	}
	return out
}

// grpcStatuser is the interface FromError looks for.
type grpcStatuser interface{ GRPCStatus() *Status }

// FromError returns the status carried by err.
//
//   - nil: nil (meaning OK) and true.
//   - err, or an error it wraps, has a method GRPCStatus() *Status (as
//     errors from Err and Error have): that status and true. When the
//     status error is wrapped, the returned status has the message of the
//     whole chain, err.Error(), so the added context is not lost; code and
//     details are the wrapped status's. A nil GRPCStatus() gives UNKNOWN and
//     false.
//   - err, or an error it wraps, comes from another gRPC library's status
//     package: it has a method GRPCStatus() returning a value with a method
//     Proto() *spb.Status, as grpc-go's status errors do. That status and
//     true, with the message of the whole chain when wrapped, as above; a
//     nil Proto() gives UNKNOWN and false. This package does not import
//     that library: it finds the methods by reflection, only when err
//     carries no status of ours.
//   - err is or wraps context.Canceled or context.DeadlineExceeded:
//     CANCELLED or DEADLINE_EXCEEDED with err.Error() as message, and true.
//   - anything else: UNKNOWN with err.Error() as message, and false.
func FromError(err error) (s *Status, ok bool) {
	if err == nil {
		return nil, true
	}
	if gs, isGS := err.(grpcStatuser); isGS {
		if st := gs.GRPCStatus(); st != nil {
			return st, true
		}
		return New(codes.Unknown, err.Error()), false
	}
	var gs grpcStatuser
	if errors.As(err, &gs) {
		st := gs.GRPCStatus()
		if st == nil {
			return New(codes.Unknown, err.Error()), false
		}
		p := st.Proto()
		if p == nil { // a zero Status{}
			p = &spb.Status{}
		}
		p.Message = err.Error()
		return &Status{s: p}, true
	}
	if p, found := foreignStatusIn(err); found {
		if p == nil {
			return New(codes.Unknown, err.Error()), false
		}
		return &Status{s: p}, true
	}
	switch {
	case errors.Is(err, context.Canceled):
		return New(codes.Canceled, err.Error()), true
	case errors.Is(err, context.DeadlineExceeded):
		return New(codes.DeadlineExceeded, err.Error()), true
	}
	return New(codes.Unknown, err.Error()), false
}

// Convert is FromError without the boolean: it always returns a status
// (nil for a nil error).
func Convert(err error) *Status {
	s, _ := FromError(err)
	return s
}

// Code returns the code of the status err carries: OK for nil, UNKNOWN
// for an error without a status (see FromError).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return Convert(err).Code()
}

// FromContextError converts a context error to a status: nil for nil,
// CANCELLED for context.Canceled, DEADLINE_EXCEEDED for
// context.DeadlineExceeded (also when wrapped), UNKNOWN otherwise.
func FromContextError(err error) *Status {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return New(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return New(codes.Canceled, err.Error())
	}
	return New(codes.Unknown, err.Error())
}

// statusError is the error returned by (*Status).Err. Its status never has
// code OK.
type statusError struct {
	s *Status
}

func (e *statusError) Error() string { return e.s.String() }

// GRPCStatus returns the status the error carries.
func (e *statusError) GRPCStatus() *Status { return e.s }

// Is reports whether target is a status error with an equal status (same
// code, message and details), so errors.Is(err, status.Error(c, msg))
// works.
func (e *statusError) Is(target error) bool {
	t, ok := target.(*statusError)
	if !ok {
		return false
	}
	return proto.Equal(e.s.s, t.s.s)
}

// protoStatus is what the status value of another gRPC library offers:
// grpc-go's *status.Status has this method. The GRPCStatus method that
// returns it cannot be named as an interface here without importing that
// library (its result type is the library's own), so it is found by
// reflection.
type protoStatus interface{ Proto() *spb.Status }

// foreignStatusIn walks err's chain, depth first as errors.As does, for
// the first error with a method GRPCStatus() whose result is a
// protoStatus. It returns that status as a proto, with the message of the
// whole chain when the status error is wrapped, and whether one was
// found. A found status may be nil (a nil GRPCStatus or Proto result).
func foreignStatusIn(err error) (*spb.Status, bool) {
	top := err
	stack := []error{err}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e == nil {
			continue
		}
		if p, ok := foreignStatus(e); ok {
			if p != nil {
				// A copy: a Status is immutable, and the other
				// library may hand out its own message.
				p = proto.Clone(p).(*spb.Status)
				if e != top {
					p.Message = top.Error()
				}
			}
			return p, true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			stack = append(stack, u.Unwrap())
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			for i := len(errs) - 1; i >= 0; i-- { // the first is looked at first
				stack = append(stack, errs[i])
			}
		}
	}
	return nil, false
}

// foreignStatus calls e's method GRPCStatus() if it has one whose result
// is a protoStatus, and returns the result's Proto() and true.
func foreignStatus(e error) (*spb.Status, bool) {
	v := reflect.ValueOf(e)
	m := v.MethodByName("GRPCStatus")
	if !m.IsValid() {
		return nil, false
	}
	mt := m.Type()
	if mt.NumIn() != 0 || mt.NumOut() != 1 || !mt.Out(0).Implements(protoStatusType) {
		return nil, false
	}
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, true
	}
	out := m.Call(nil)[0]
	if k := out.Kind(); (k == reflect.Pointer || k == reflect.Interface) && out.IsNil() {
		return nil, true
	}
	return out.Interface().(protoStatus).Proto(), true
}

var protoStatusType = reflect.TypeFor[protoStatus]()
