// Package codes defines the canonical gRPC status codes.
//
// The codes and their meaning come from the gRPC specification
// (doc/statuscodes.md in the grpc repository). They are the same numbers
// every gRPC implementation sends in the grpc-status trailer, so a code
// produced here means the same thing to a grpc-java or grpc C++ peer.
package codes

import (
	"fmt"
	"strconv"
)

// Code is a gRPC status code. Values 0 to 16 are defined; other values can
// arrive from a peer and are kept as they are.
type Code uint32

const (
	// OK means the call succeeded. It is not an error.
	OK Code = 0

	// Canceled means the call was cancelled, usually by the caller.
	Canceled Code = 1

	// Unknown is an error with no better code: for example a status
	// received from another address space whose code this side does not
	// know, or an error that carries no status information at all.
	Unknown Code = 2

	// InvalidArgument means the caller passed an argument that is wrong
	// whatever the state of the system (a malformed name, say). Compare
	// FailedPrecondition.
	InvalidArgument Code = 3

	// DeadlineExceeded means the deadline passed before the operation
	// finished. For an operation that changes state, the change may have
	// happened anyway.
	DeadlineExceeded Code = 4

	// NotFound means a requested entity (a file, a row) does not exist.
	NotFound Code = 5

	// AlreadyExists means the entity a caller tried to create is already
	// there.
	AlreadyExists Code = 6

	// PermissionDenied means the caller is known but not allowed to do
	// this. It is not for a caller that could not be identified (use
	// Unauthenticated) nor for an exhausted quota (use ResourceExhausted).
	PermissionDenied Code = 7

	// ResourceExhausted means some resource ran out: a per-user quota,
	// disk space, or a message larger than the receiver accepts.
	ResourceExhausted Code = 8

	// FailedPrecondition means the system is not in the state the
	// operation needs (deleting a directory that is not empty, say). The
	// caller should not retry until the state was fixed.
	FailedPrecondition Code = 9

	// Aborted means the operation was abandoned because of a concurrency
	// conflict such as a failed transaction or sequencer check. Retrying
	// at a higher level (the whole read-modify-write) usually helps.
	Aborted Code = 10

	// OutOfRange means the operation went past the valid range, such as
	// reading beyond the end of a file. Unlike InvalidArgument it names a
	// problem that may go away when the state changes.
	OutOfRange Code = 11

	// Unimplemented means the operation is not implemented, supported or
	// enabled by the receiver, for example an unknown method.
	Unimplemented Code = 12

	// Internal means an invariant the system relies on was broken. It is
	// reserved for serious errors.
	Internal Code = 13

	// Unavailable means the service cannot be reached at the moment. It is
	// most likely transient and the call can be retried with a backoff;
	// retrying is not always safe for operations that are not idempotent.
	Unavailable Code = 14

	// DataLoss means data was lost or corrupted beyond recovery.
	DataLoss Code = 15

	// Unauthenticated means the caller's credentials for this operation
	// are missing or invalid.
	Unauthenticated Code = 16
)

// maxCode is one past the largest defined code.
const maxCode = 17

// names are the Go-style names String returns, as grpc-go prints them.
var names = [maxCode]string{
	OK:                 "OK",
	Canceled:           "Canceled",
	Unknown:            "Unknown",
	InvalidArgument:    "InvalidArgument",
	DeadlineExceeded:   "DeadlineExceeded",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	PermissionDenied:   "PermissionDenied",
	ResourceExhausted:  "ResourceExhausted",
	FailedPrecondition: "FailedPrecondition",
	Aborted:            "Aborted",
	OutOfRange:         "OutOfRange",
	Unimplemented:      "Unimplemented",
	Internal:           "Internal",
	Unavailable:        "Unavailable",
	DataLoss:           "DataLoss",
	Unauthenticated:    "Unauthenticated",
}

// specNames are the upper-case names of the gRPC specification, used in
// JSON.
var specNames = [maxCode]string{
	OK:                 "OK",
	Canceled:           "CANCELLED",
	Unknown:            "UNKNOWN",
	InvalidArgument:    "INVALID_ARGUMENT",
	DeadlineExceeded:   "DEADLINE_EXCEEDED",
	NotFound:           "NOT_FOUND",
	AlreadyExists:      "ALREADY_EXISTS",
	PermissionDenied:   "PERMISSION_DENIED",
	ResourceExhausted:  "RESOURCE_EXHAUSTED",
	FailedPrecondition: "FAILED_PRECONDITION",
	Aborted:            "ABORTED",
	OutOfRange:         "OUT_OF_RANGE",
	Unimplemented:      "UNIMPLEMENTED",
	Internal:           "INTERNAL",
	Unavailable:        "UNAVAILABLE",
	DataLoss:           "DATA_LOSS",
	Unauthenticated:    "UNAUTHENTICATED",
}

// String returns the Go-style name of c ("OK", "Canceled",
// "InvalidArgument", ...), the same text grpc-go prints, or "Code(n)" for
// a value outside the defined range.
func (c Code) String() string {
	if c < maxCode {
		return names[c]
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// MarshalJSON encodes a defined code as its specification name in quotes
// ("CANCELLED") and any other value as a JSON number.
func (c Code) MarshalJSON() ([]byte, error) {
	if c < maxCode {
		return []byte(`"` + specNames[c] + `"`), nil
	}
	return strconv.AppendUint(nil, uint64(c), 10), nil
}

// UnmarshalJSON decodes a code written either as a quoted specification
// name ("INVALID_ARGUMENT") or as a number (3, also quoted: "3"). JSON null
// leaves c unchanged. Anything else, including a number outside 0..16, is an
// error.
func (c *Code) UnmarshalJSON(b []byte) error {
	if c == nil {
		return fmt.Errorf("codes: UnmarshalJSON into nil *Code")
	}
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		name := s[1 : len(s)-1]
		for i, n := range specNames {
			if n == name {
				*c = Code(i)
				return nil
			}
		}
		s = name
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= maxCode {
		return fmt.Errorf("codes: invalid code %s", b)
	}
	*c = Code(n)
	return nil
}
