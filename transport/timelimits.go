package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Time limits on a peer that is slow on purpose. A connection's reader
// reads one frame at a time, so a peer that starts something and never
// finishes it holds the connection (and, before the preface is read, a
// goroutine and a socket of ours) for as long as it likes unless a clock
// stops it: the client preface and SETTINGS of a new server connection,
// and a header block, whose CONTINUATION frames must follow each other
// with nothing in between (RFC 9113 §6.10), so a header block dribbled a
// byte at a time stops every other stream of the connection.
//
// Both limits work through the socket's read deadline, so they cost the
// reader nothing while all is well: the preface deadline is set when the
// connection starts and cleared by the first SETTINGS frame; the header
// block deadline is armed only when a HEADERS frame leaves its block open
// (a single-frame block, the common case, never touches it).
const (
	// DefaultPrefaceTimeout bounds the time a new server connection waits
	// for the client preface and the client's first SETTINGS frame.
	// grpc-go bounds the TLS handshake and preface together by its
	// ConnectionTimeout (120 s); a client that means well sends both in
	// its first packet, so we allow far less.
	DefaultPrefaceTimeout = 10 * time.Second

	// DefaultHeaderBlockTimeout bounds the time from a HEADERS frame
	// without END_HEADERS to the CONTINUATION frame that ends its block.
	DefaultHeaderBlockTimeout = 10 * time.Second
)

// ErrPrefaceTimeout is the cause (errors.Is) of closing a server
// connection whose client did not send its preface and first SETTINGS
// frame within the preface time limit.
var ErrPrefaceTimeout = errors.New("transport: client preface and SETTINGS not received within the time limit")

// ErrHeaderBlockTimeout is the cause (errors.Is) of closing a connection
// whose peer started a header block and did not end it within the time
// limit.
var ErrHeaderBlockTimeout = errors.New("transport: header block not finished within the time limit")

// Header block timer states (timeLimits.block); a positive value is the
// time (unix nanoseconds) the open block started.
const (
	blockClosed  = 0
	blockExpired = -1
)

// timeLimits enforces the preface and header block time limits of one
// connection. Its methods run on the reader goroutine, except expire,
// which the timer runs.
type timeLimits struct {
	conn net.Conn

	// awaitingSettings (reader only) is true on a server connection from
	// its start until the client's first SETTINGS frame: the read
	// deadline set for the preface still holds.
	awaitingSettings bool
	prefaceLimit     time.Duration

	blockLimit time.Duration // 0: no header block limit
	timer      *time.Timer   // made for the first block left open
	block      atomic.Int64  // blockClosed, blockExpired or the open block's start
}

func (l *timeLimits) init(conn net.Conn, blockLimit time.Duration) {
	l.conn = conn
	l.blockLimit = blockLimit
}

// startPreface sets the read deadline for the client preface and first
// SETTINGS of a server connection; the first SETTINGS frame clears it.
func (l *timeLimits) startPreface(limit time.Duration) {
	l.prefaceLimit = limit
	l.awaitingSettings = true
	l.conn.SetReadDeadline(time.Now().Add(limit))
}

// settingsArrived is called when the peer's first SETTINGS frame arrived.
func (l *timeLimits) settingsArrived() {
	if l.awaitingSettings {
		l.awaitingSettings = false
		l.conn.SetReadDeadline(time.Time{})
	}
}

// headerBlock is called when a header block opens (a HEADERS frame
// without END_HEADERS) or ends (the CONTINUATION frame with it); a block
// of one frame, the common case, never calls it. It arms the limit when a
// block opens and disarms it when the block ends, or fails if the limit
// passed.
func (l *timeLimits) headerBlock(open bool) error {
	if l.blockLimit <= 0 {
		return nil
	}
	if open {
		l.block.Store(time.Now().UnixNano())
		if l.timer == nil {
			l.timer = time.AfterFunc(l.blockLimit, l.expire)
		} else {
			l.timer.Reset(l.blockLimit)
		}
		return nil
	}
	l.timer.Stop()
	if v := l.block.Load(); v == blockExpired || !l.block.CompareAndSwap(v, blockClosed) {
		return l.blockError()
	}
	return nil
}

// expire runs on the timer: if the open block is past its limit, the
// reader's blocked read is woken with a deadline error, which
// deadlineError turns into the connection's error.
func (l *timeLimits) expire() {
	v := l.block.Load()
	if v <= 0 || time.Since(time.Unix(0, v)) < l.blockLimit {
		// No block open, or a later block than the one this timer
		// firing was for (the reader re-armed the timer while this
		// run was starting).
		return
	}
	if l.block.CompareAndSwap(v, blockExpired) {
		l.conn.SetReadDeadline(time.Now())
	}
}

// stop stops the timer when the reader returns.
func (l *timeLimits) stop() {
	if l.timer != nil {
		l.timer.Stop()
	}
}

// deadlineError turns a read error caused by one of our limits into the
// connection error (announced with GOAWAY) it stands for; it returns nil
// for any other error.
func (l *timeLimits) deadlineError(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if l.block.Load() == blockExpired {
		return l.blockError()
	}
	if l.awaitingSettings {
		return &ConnectionError{
			Code: http2.ErrCodeEnhanceYourCalm,
			Desc: fmt.Sprintf("no SETTINGS frame within %v", l.prefaceLimit),
			Err:  fmt.Errorf("%w: %w", ErrPrefaceTimeout, err),
		}
	}
	return nil
}

func (l *timeLimits) blockError() error {
	return &ConnectionError{
		Code: http2.ErrCodeEnhanceYourCalm,
		Desc: fmt.Sprintf("header block not finished within %v", l.blockLimit),
		Err:  ErrHeaderBlockTimeout,
	}
}
