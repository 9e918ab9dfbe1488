package flowcontrol

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// updateDivisor sets when a receive window is refunded to the peer: a
// WINDOW_UPDATE is sent once the bytes consumed but not yet announced reach
// limit/updateDivisor. Batching keeps the number of WINDOW_UPDATE frames low
// while leaving the peer enough window to keep the pipe full.
const updateDivisor = 4

// InFlow is the receive side of one stream's flow-control window
// (RFC 9113 §6.9). The peer may send at most limit bytes that the
// application has not yet consumed, plus any extra window granted with
// RequestMessage for a message larger than the window.
//
// InFlow is safe for concurrent use: the reader goroutine calls OnData and
// the application goroutine calls OnRead and RequestMessage.
//
// The window the peer currently holds, as we account for it, is always
// limit + extra - unread - unacked, where unread is the data received but
// not read and unacked is the data read but not yet returned with a
// WINDOW_UPDATE. The methods keep that value between 0 and MaxWindowSize.
type InFlow struct {
	mu sync.Mutex
	// The counters are 64-bit: with window granted beyond limit, the bytes
	// received but unread can exceed what 32 bits hold.

	// limit is the window we advertise; at most MaxWindowSize.
	limit uint64
	// unread counts bytes received and not yet consumed by the application.
	unread uint64
	// unacked counts bytes consumed but not yet returned to the peer.
	// Invariant: unacked > 0 implies extra == 0, so unacked <= limit.
	unacked uint64
	// extra is window granted beyond limit by RequestMessage and not yet
	// used up by reads.
	extra uint64
}

// NewInFlow returns the receive window of a stream that starts with limit
// bytes of window (the SETTINGS_INITIAL_WINDOW_SIZE we advertised). A limit
// larger than MaxWindowSize is treated as MaxWindowSize.
func NewInFlow(limit uint32) *InFlow {
	f := new(InFlow)
	f.Init(limit)
	return f
}

// Init sets up f, which may be a field of a larger struct, as NewInFlow
// does; f must not be in use.
func (f *InFlow) Init(limit uint32) {
	*f = InFlow{limit: uint64(min(limit, MaxWindowSize))}
}

// OnData records that n bytes of DATA arrived, padding included
// (RFC 9113 §6.1: the whole frame payload counts against the window). It
// returns an error wrapping ErrFlowControl, and records nothing, when the
// peer sent more than its window allowed.
func (f *InFlow) OnData(n uint32) error {
	f.mu.Lock()
	window := f.windowLocked()
	if uint64(n) > window {
		f.mu.Unlock()
		return fmt.Errorf("%w: stream received %d bytes with a window of %d", ErrFlowControl, n, window)
	}
	f.unread += uint64(n)
	f.mu.Unlock()
	return nil
}

// OnRead records that the application consumed n bytes, or that n bytes of
// padding are refunded at once. It returns the WINDOW_UPDATE increment to
// send now, or 0 when none is due: updates are held back until the bytes to
// return reach a quarter of the limit. Reads first use up window granted by
// RequestMessage, so the window shrinks back to limit. n larger than the
// unread byte count is clamped to it.
func (f *InFlow) OnRead(n uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	read := min(uint64(n), f.unread)
	f.unread -= read
	used := min(read, f.extra)
	f.extra -= used
	f.unacked += read - used
	if f.unacked == 0 || f.unacked < f.limit/updateDivisor {
		return 0
	}
	inc := f.unacked
	f.unacked = 0
	return uint32(inc)
}

// RequestMessage is called when the application waits for a message that
// still needs n bytes beyond those already buffered. If the peer's window
// cannot admit them, it grants extra window (so the peer's window never
// exceeds MaxWindowSize) and returns the WINDOW_UPDATE increment to send
// now, which also returns any consumed bytes not yet announced. It returns 0
// when the window is already large enough.
func (f *InFlow) RequestMessage(n uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	need := uint64(n)
	if need <= f.windowLocked() {
		return 0
	}
	// Return the consumed bytes first: they are owed anyway.
	inc := f.unacked
	f.unacked = 0
	window := f.windowLocked()
	if need > window {
		grant := min(need-window, uint64(MaxWindowSize)-window)
		f.extra += grant
		inc += grant
	}
	return uint32(inc)
}

// SetLimit raises the advertised window to n (used when BDP estimation
// grows the window) and returns the WINDOW_UPDATE increment to send now.
// Window already granted by RequestMessage counts toward the raise. A limit
// at or below the current one is ignored and returns 0, since a receive
// window cannot be taken back with WINDOW_UPDATE. n is capped at
// MaxWindowSize.
func (f *InFlow) SetLimit(n uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := uint64(min(n, MaxWindowSize))
	if limit <= f.limit {
		return 0
	}
	raise := limit - f.limit
	f.limit = limit
	used := min(raise, f.extra)
	f.extra -= used
	raise -= used
	if raise == 0 {
		return 0
	}
	// unacked > 0 only when extra was 0, so the peer's window after this
	// update is limit - unread, within MaxWindowSize.
	inc := raise + f.unacked
	f.unacked = 0
	return uint32(inc)
}

// RaiseLimit raises the advertised window to n when the raise reaches the
// peer through SETTINGS_INITIAL_WINDOW_SIZE, which moves the peer's window
// of every open stream by the difference (RFC 9113 §6.9.2). Unlike SetLimit
// no WINDOW_UPDATE is due, so nothing else changes: window granted by
// RequestMessage stays granted and consumed bytes not yet returned are
// still owed. A limit at or below the current one is ignored; n is capped
// at MaxWindowSize.
func (f *InFlow) RaiseLimit(n uint32) {
	f.mu.Lock()
	f.limit = max(f.limit, uint64(min(n, MaxWindowSize)))
	f.mu.Unlock()
}

// Limit returns the current advertised window.
func (f *InFlow) Limit() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint32(f.limit)
}

// windowLocked returns the window the peer holds. Caller holds f.mu.
func (f *InFlow) windowLocked() uint64 {
	return f.limit + f.extra - f.unread - f.unacked
}

// TrInFlow is the receive side of the connection's flow-control window
// (RFC 9113 §6.9). It counts arrivals independently of application reads,
// so the connection window is refunded as soon as data is received: one
// slow stream never stalls the others (their own InFlow windows still
// bound them).
//
// TrInFlow is used by the reader goroutine only, except Limit, which is
// safe from any goroutine.
type TrInFlow struct {
	limit atomic.Uint32
	// unacked counts bytes received but not yet returned to the peer.
	unacked uint32
}

// NewTrInFlow returns the connection receive window, starting with limit
// bytes (capped at MaxWindowSize).
func NewTrInFlow(limit uint32) *TrInFlow {
	f := &TrInFlow{}
	f.limit.Store(min(limit, MaxWindowSize))
	return f
}

// OnData records that n bytes of DATA arrived on the connection and
// returns the WINDOW_UPDATE increment to send now, or 0 when none is due
// (an update is sent once the unreturned bytes reach a quarter of the
// limit). It returns an error wrapping ErrFlowControl, and records nothing,
// when the peer sent more than the connection window allowed.
func (f *TrInFlow) OnData(n uint32) (uint32, error) {
	limit := f.limit.Load()
	if window := limit - f.unacked; n > window {
		return 0, fmt.Errorf("%w: connection received %d bytes with a window of %d", ErrFlowControl, n, window)
	}
	f.unacked += n
	if f.unacked == 0 || f.unacked < limit/updateDivisor {
		return 0, nil
	}
	inc := f.unacked
	f.unacked = 0
	return inc, nil
}

// SetLimit raises the connection window to n (capped at MaxWindowSize) and
// returns the WINDOW_UPDATE increment to send now: the raise plus any
// received bytes not yet returned. A limit at or below the current one is
// ignored and returns 0.
func (f *TrInFlow) SetLimit(n uint32) uint32 {
	n = min(n, MaxWindowSize)
	old := f.limit.Load()
	if n <= old {
		return 0
	}
	f.limit.Store(n)
	inc := n - old + f.unacked
	f.unacked = 0
	return inc
}

// Limit returns the current connection window. Safe from any goroutine.
func (f *TrInFlow) Limit() uint32 {
	return f.limit.Load()
}
