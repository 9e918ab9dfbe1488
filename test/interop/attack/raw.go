//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// answers records what the server answered the attack with, over all
// the attacker's connections.
type answers struct {
	mu      sync.Mutex
	goAways map[string]int // "CODE debug"
	rsts    map[http2.ErrCode]int
	closed  int // connections the server closed (EOF, reset, broken pipe)
	blocked int // connections whose writes stalled: the server stopped reading
	notes   []string
	// sent counts the attack's units (frames, pairs, streams) written;
	// unit names them.
	sent atomic.Int64
	unit string
}

func newAnswers() *answers {
	return &answers{goAways: map[string]int{}, rsts: map[http2.ErrCode]int{}}
}

func (a *answers) goAway(code http2.ErrCode, debug []byte) {
	d := string(debug)
	if len(d) > 40 {
		d = d[:40] + "…"
	}
	a.mu.Lock()
	a.goAways[strings.TrimSpace(code.String()+" "+d)]++
	a.mu.Unlock()
}

func (a *answers) rst(code http2.ErrCode) {
	a.mu.Lock()
	a.rsts[code]++
	a.mu.Unlock()
}

func (a *answers) add(closed, blocked int) {
	a.mu.Lock()
	a.closed += closed
	a.blocked += blocked
	a.mu.Unlock()
}

func (a *answers) note(format string, args ...any) {
	a.mu.Lock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

// rstCount returns how many RST_STREAM frames with code arrived.
func (a *answers) rstCount(code http2.ErrCode) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rsts[code]
}

// String sums the answers up for the table.
func (a *answers) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var parts []string
	keys := make([]string, 0, len(a.goAways))
	for k := range a.goAways {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("GOAWAY %s ×%d", k, a.goAways[k]))
	}
	codes := make([]http2.ErrCode, 0, len(a.rsts))
	for c := range a.rsts {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("RST %v ×%d", c, a.rsts[c]))
	}
	if a.closed > 0 {
		parts = append(parts, fmt.Sprintf("closed %d conn", a.closed))
	}
	if a.blocked > 0 {
		parts = append(parts, fmt.Sprintf("stopped reading %d conn", a.blocked))
	}
	parts = append(parts, a.notes...)
	if n := a.sent.Load(); n > 0 && a.unit != "" {
		parts = append([]string{fmt.Sprintf("%d %s sent", n, a.unit)}, parts...)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// rawOpts configure an attacker connection.
type rawOpts struct {
	// settings go in the first SETTINGS frame.
	settings []http2.Setting
	// connWindow, when above 65535, is granted with a WINDOW_UPDATE on
	// stream 0 after the SETTINGS.
	connWindow uint32
	// noRead leaves the socket unread for the connection's life.
	noRead bool
	// smallRecv shrinks the socket's receive buffer, so a peer that does
	// not read pushes back on the server sooner.
	smallRecv bool
	// noPreface dials without writing anything.
	noPreface bool
}

// rawConn is an attacker's HTTP/2 connection: frames are built with
// http2.Framer into a buffer and written in batches by flush, under a
// write deadline, so a server that stops reading stalls the attacker
// only for a moment. Unless noRead, a reader goroutine records the
// server's GOAWAY and RST_STREAM frames and its SETTINGS.
type rawConn struct {
	c   net.Conn
	ans *answers

	mu   sync.Mutex // guards what follows and writes to c
	buf  bytes.Buffer
	fr   *http2.Framer // writes into buf
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	dead bool // a write failed or stalled: nothing more is written

	pendingAcks atomic.Int32  // SETTINGS acks the reader owes, sent by the next flush
	settings    chan struct{} // closed when the server's first SETTINGS arrived
	maxStreams  atomic.Uint32
	readerDone  chan struct{}
	closedByUs  atomic.Bool
	serverGone  atomic.Bool
}

// errDead is returned by flush once the connection can no longer be written.
var errDead = errors.New("attack: connection dead")

// dialRaw connects to addr and writes the client preface and SETTINGS.
func dialRaw(ctx context.Context, addr string, ans *answers, o rawOpts) (*rawConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if o.smallRecv {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c, ans: ans, settings: make(chan struct{}), readerDone: make(chan struct{})}
	rc.maxStreams.Store(^uint32(0))
	rc.fr = http2.NewFramer(&rc.buf, nil)
	rc.fr.AllowIllegalWrites = true // an attacker
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	if o.noPreface {
		close(rc.readerDone)
		return rc, nil
	}
	rc.mu.Lock()
	rc.buf.WriteString(http2.ClientPreface)
	rc.fr.WriteSettings(o.settings...)
	if o.connWindow > 65535 {
		rc.fr.WriteWindowUpdate(0, o.connWindow-65535)
	}
	rc.mu.Unlock()
	if err := rc.flush(); err != nil {
		rc.close()
		return nil, err
	}
	if o.noRead {
		close(rc.readerDone)
	} else {
		go rc.readLoop()
	}
	return rc, nil
}

// readLoop reads the server's frames until the connection ends.
func (rc *rawConn) readLoop() {
	defer close(rc.readerDone)
	fr := http2.NewFramer(nil, rc.c)
	fr.SetMaxReadFrameSize(1 << 20)
	first := true
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				continue
			}
			if !rc.closedByUs.Load() {
				rc.serverGone.Store(true)
				rc.ans.add(1, 0)
			}
			if first {
				close(rc.settings)
			}
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				break
			}
			f.ForeachSetting(func(s http2.Setting) error {
				if s.ID == http2.SettingMaxConcurrentStreams {
					rc.maxStreams.Store(s.Val)
				}
				return nil
			})
			rc.pendingAcks.Add(1)
			if first {
				first = false
				close(rc.settings)
			}
		case *http2.GoAwayFrame:
			rc.ans.goAway(f.ErrCode, f.DebugData())
		case *http2.RSTStreamFrame:
			rc.ans.rst(f.ErrCode)
		}
	}
}

// awaitSettings waits for the server's first SETTINGS (read connections
// only) and returns its MAX_CONCURRENT_STREAMS.
func (rc *rawConn) awaitSettings(ctx context.Context) (uint32, error) {
	select {
	case <-rc.settings:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if rc.serverGone.Load() {
		return 0, errDead
	}
	rc.flush() // the ack
	return rc.maxStreams.Load(), nil
}

// frames adds frames to the write buffer (f runs under the lock) without
// writing them.
func (rc *rawConn) frames(f func(fr *http2.Framer)) {
	rc.mu.Lock()
	f(rc.fr)
	rc.mu.Unlock()
}

// flush writes the buffered frames, after the SETTINGS acks owed. A write
// that stalls past writeStall means the server stopped reading: the
// connection is marked blocked and dead (a frame may be cut in half), and
// a failed write that the server closed it.
func (rc *rawConn) flush() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.dead {
		rc.buf.Reset()
		return errDead
	}
	if n := rc.pendingAcks.Swap(0); n > 0 {
		var acks bytes.Buffer
		afr := http2.NewFramer(&acks, nil)
		for range n {
			afr.WriteSettingsAck()
		}
		acks.Write(rc.buf.Bytes())
		rc.buf.Reset()
		rc.buf.Write(acks.Bytes())
	}
	if rc.buf.Len() == 0 {
		return nil
	}
	rc.c.SetWriteDeadline(time.Now().Add(writeStall))
	_, err := rc.c.Write(rc.buf.Bytes())
	rc.buf.Reset()
	if err != nil {
		rc.dead = true
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			rc.ans.add(0, 1)
		case !rc.serverGone.Load() && !rc.closedByUs.Load():
			rc.serverGone.Store(true)
			rc.ans.add(1, 0)
		}
		return fmt.Errorf("%w: %w", errDead, err)
	}
	return nil
}

// writeStall is how long a write may block before the server counts as
// no longer reading.
const writeStall = 2 * time.Second

// encode HPACK-encodes fields; call it inside frames.
func (rc *rawConn) encode(fields ...hpack.HeaderField) []byte {
	rc.hbuf.Reset()
	for _, f := range fields {
		rc.enc.WriteField(f)
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// close closes the connection and waits for its reader.
func (rc *rawConn) close() {
	rc.closedByUs.Store(true)
	rc.c.Close()
	<-rc.readerDone
}

// gone reports whether the server closed the connection or it stalled.
func (rc *rawConn) gone() bool {
	if rc.serverGone.Load() {
		return true
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.dead
}

// request returns the header fields of a gRPC request for method of
// grpc.testing.TestService, with extra fields (name, value pairs) after.
func request(method string, extra ...string) []hpack.HeaderField {
	fs := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/grpc.testing.TestService/" + method},
		{Name: ":authority", Value: "attack.test"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fs = append(fs, hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return fs
}

// grpcMessage frames m as one gRPC message (flag, length, bytes).
func grpcMessage(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // our own messages always marshal
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// sleepCtx waits for d or until ctx is done, and reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
