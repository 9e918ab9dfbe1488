package codec

import (
	"errors"
	"fmt"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Causes of the errors of this package. The errors returned wrap them, so
// errors.Is(err, ErrMessageTooLarge) works, and carry a gRPC status for
// status.Code.
var (
	// ErrMessageTooLarge: a message to send or received is larger than
	// the limit (RESOURCE_EXHAUSTED).
	ErrMessageTooLarge = errors.New("codec: message larger than the limit")

	// ErrInvalidFlag: a message prefix whose compressed flag is neither
	// 0 nor 1 (INTERNAL).
	ErrInvalidFlag = errors.New("codec: invalid compressed flag in message prefix")

	// ErrCompressedWithoutEncoding: a message with the compressed flag
	// set on a stream whose grpc-encoding is absent or identity
	// (INTERNAL).
	ErrCompressedWithoutEncoding = errors.New("codec: compressed message without an encoding")

	// ErrCompressorNotFound: a grpc-encoding that names no registered
	// compressor (UNIMPLEMENTED).
	ErrCompressorNotFound = errors.New("codec: compressor not registered")

	// ErrNotProtoMessage: the proto codec was given a value that is not a
	// protobuf message.
	ErrNotProtoMessage = errors.New("codec: not a proto message")
)

// Error is the error type of this package for anything wrong with a
// message: it carries the gRPC status the RPC should end with and the
// cause, which errors.Is and errors.As see through Unwrap.
type Error struct {
	st    *status.Status
	cause error
}

// newError returns an *Error with code c, a message formatted from format
// and args, and cause.
func newError(c codes.Code, cause error, format string, args ...any) *Error {
	return &Error{st: status.New(c, fmt.Sprintf(format, args...)), cause: cause}
}

// Error returns the text of the status: "rpc error: code = ... desc = ...".
func (e *Error) Error() string { return e.st.String() }

// GRPCStatus returns the status, so status.FromError, status.Code and
// status.Convert see the code and message.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }
