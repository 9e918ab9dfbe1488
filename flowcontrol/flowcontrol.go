package flowcontrol

import "errors"

// Window sizes, RFC 9113 §6.9.
const (
	// DefaultWindowSize is the initial flow-control window of every stream
	// and of the connection until SETTINGS or WINDOW_UPDATE change it
	// (RFC 9113 §6.9.2).
	DefaultWindowSize uint32 = 65535

	// MaxWindowSize is the largest window HTTP/2 allows, 2^31-1
	// (RFC 9113 §6.9.1). A window update or setting that would push a
	// window past it is a FLOW_CONTROL_ERROR.
	MaxWindowSize uint32 = 1<<31 - 1

	// MaxBDPWindow caps the window the BDP estimator may grow to (16 MiB).
	MaxBDPWindow uint32 = 16 << 20
)

// ErrFlowControl is wrapped by every error that reports a flow-control
// violation (RFC 9113 §5.2, error code FLOW_CONTROL_ERROR): a peer that sent
// more than its window allowed, or a window pushed past MaxWindowSize.
var ErrFlowControl = errors.New("flowcontrol: flow-control window violated")
