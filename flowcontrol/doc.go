// Package flowcontrol holds the HTTP/2 flow-control bookkeeping of h2rpc
// (RFC 9113 §5.2 and §6.9): how many bytes the peer may still send us, how
// many bytes we may still send the peer, and how much a stream may queue in
// memory before its writer has to wait.
//
// The package knows nothing about frames or goroutines. Each type states
// which goroutine may call it:
//
//   - InFlow is the receive window of one stream. The reader goroutine
//     reports arrivals with OnData and the application reports consumption
//     with OnRead, so a slow reader slows only its own stream.
//   - TrInFlow is the receive window of the connection. It counts arrivals
//     independently of the application and is used by the reader goroutine.
//   - OutFlow and StreamOut track the send windows the peer granted; only the
//     writer (loopy) goroutine touches them.
//   - WriteQuota bounds the bytes a stream has queued but not yet written,
//     so one fast writer cannot grow memory without limit.
//   - WriteBudget bounds the bytes all the streams of a connection have
//     queued but not yet written to the socket, so many streams together
//     cannot either (a peer that grants no window, or never reads).
//   - BDPEstimator measures bandwidth-delay product with PING round trips
//     and tells the transport when to grow the receive windows.
//
// Every flow-control violation is reported with an error that wraps
// ErrFlowControl; the transport maps it to the HTTP/2 error code
// FLOW_CONTROL_ERROR.
package flowcontrol
