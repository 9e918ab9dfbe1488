package flowcontrol

import "fmt"

// OutFlow is the send side of flow control for one connection: how many
// bytes the peer still lets us send on the connection, and the peer's
// SETTINGS_INITIAL_WINDOW_SIZE that every stream window starts from
// (RFC 9113 §6.9).
//
// A stream's window is not stored as a number of its own. Each StreamOut
// counts the bytes outstanding against the peer's initial window (bytes
// sent minus window granted by WINDOW_UPDATE), and the stream's quota is
// InitialWindow() minus that. A SETTINGS change of the initial window thus
// moves every stream's window by the same amount at once, as RFC 9113
// §6.9.2 requires, including below zero.
//
// OutFlow and StreamOut belong to the writer (loopy) goroutine: they take no
// locks and must not be shared.
type OutFlow struct {
	conn    int64 // connection send window left
	initial int64 // peer's SETTINGS_INITIAL_WINDOW_SIZE
}

// StreamOut is the send-side flow-control state of one stream. The zero
// value is a stream that has sent nothing yet.
type StreamOut struct {
	// outstanding is bytes sent minus window the peer added with
	// WINDOW_UPDATE. It goes negative when the peer grants more than the
	// stream has sent.
	outstanding int64
}

// NewOutFlow returns the state of a new connection: a connection window and
// a peer initial stream window of DefaultWindowSize (RFC 9113 §6.9.2).
func NewOutFlow() *OutFlow {
	return &OutFlow{conn: int64(DefaultWindowSize), initial: int64(DefaultWindowSize)}
}

// ConnQuota returns how many bytes the connection window still admits.
func (o *OutFlow) ConnQuota() int64 { return o.conn }

// ConsumeConn records that n DATA bytes were sent on the connection.
func (o *OutFlow) ConsumeConn(n int) { o.conn -= int64(n) }

// AddConn applies a connection WINDOW_UPDATE of inc bytes. A window pushed
// past MaxWindowSize is a connection error (RFC 9113 §6.9.1); the error
// wraps ErrFlowControl and the window is left unchanged.
func (o *OutFlow) AddConn(inc uint32) error {
	w := o.conn + int64(inc)
	if w > int64(MaxWindowSize) {
		return fmt.Errorf("flowcontrol: connection window update of %d takes send window %d past %d: %w",
			inc, o.conn, MaxWindowSize, ErrFlowControl)
	}
	o.conn = w
	return nil
}

// InitialWindow returns the peer's current SETTINGS_INITIAL_WINDOW_SIZE.
func (o *OutFlow) InitialWindow() int64 { return o.initial }

// SetInitialWindow applies the peer's SETTINGS_INITIAL_WINDOW_SIZE, which
// moves the window of every stream by the difference to the old value
// (RFC 9113 §6.9.2). A value above MaxWindowSize is an error wrapping
// ErrFlowControl and changes nothing.
//
// Whether the change pushed a stream's window past MaxWindowSize (a
// connection error too) is for the caller to check with StreamQuota, since
// OutFlow does not know the streams.
func (o *OutFlow) SetInitialWindow(w uint32) error {
	if w > MaxWindowSize {
		return fmt.Errorf("flowcontrol: SETTINGS_INITIAL_WINDOW_SIZE %d exceeds %d: %w", w, MaxWindowSize, ErrFlowControl)
	}
	o.initial = int64(w)
	return nil
}

// StreamQuota returns how many bytes the stream's window still admits:
// InitialWindow minus the stream's outstanding bytes. It is negative when a
// SETTINGS change shrank the window below what was already sent.
func (o *OutFlow) StreamQuota(s *StreamOut) int64 { return o.initial - s.outstanding }

// Consume records that n DATA bytes of the stream were sent.
func (s *StreamOut) Consume(n int) { s.outstanding += int64(n) }

// AddStream applies a stream WINDOW_UPDATE of inc bytes. A stream window
// pushed past MaxWindowSize is a stream error (RFC 9113 §6.9.1); the error
// wraps ErrFlowControl and the window is left unchanged.
func (o *OutFlow) AddStream(s *StreamOut, inc uint32) error {
	after := s.outstanding - int64(inc)
	if o.initial-after > int64(MaxWindowSize) {
		return fmt.Errorf("flowcontrol: stream window update of %d takes send window %d past %d: %w",
			inc, o.initial-s.outstanding, MaxWindowSize, ErrFlowControl)
	}
	s.outstanding = after
	return nil
}
