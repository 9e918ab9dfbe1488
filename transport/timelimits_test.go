package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Time limits shortened for the tests; the dribbling peers below take
// many times longer than these to finish what they start.
const (
	testPrefaceLimit = 300 * time.Millisecond
	testBlockLimit   = 300 * time.Millisecond
	dribbleEvery     = 100 * time.Millisecond
)

// dribble writes b to conn a byte at a time, every dribbleEvery, until
// it is all written, a write fails or stop is closed.
func dribble(conn net.Conn, b []byte, stop <-chan struct{}) {
	for i := range b {
		if _, err := conn.Write(b[i : i+1]); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(dribbleEvery):
		}
	}
}

// readUntilClosed reads conn until it ends; it reports false if it did
// not end within longWait.
func readUntilClosed(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(longWait))
	_, err := io.Copy(io.Discard, conn)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestSlowPrefaceClosedAfterLimit(t *testing.T) {
	noLeaks(t)
	ts := newTestServer(t, ServerConfig{PrefaceTimeout: testPrefaceLimit}, echoHandler)
	conn, err := net.Dial("tcp", ts.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The preface and an empty SETTINGS frame, a byte every 100 ms:
	// about 3.3 s in all, ten times the limit.
	wire := append([]byte(http2.ClientPreface), 0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		dribble(conn, wire, stop)
	}()
	defer func() { close(stop); <-done }()
	if !readUntilClosed(conn) {
		t.Fatal("a client dribbling its preface was not disconnected")
	}
}

func TestPrefaceWithoutSettingsClosedAfterLimit(t *testing.T) {
	noLeaks(t)
	ts := newTestServer(t, ServerConfig{PrefaceTimeout: testPrefaceLimit}, echoHandler)
	conn, err := net.Dial("tcp", ts.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	// The preface, then nothing: no SETTINGS frame ever.
	fr := http2.NewFramer(nil, conn)
	conn.SetReadDeadline(time.Now().Add(longWait))
	var goAway *http2.GoAwayFrame
	for goAway == nil {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		goAway, _ = f.(*http2.GoAwayFrame)
	}
	if goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY code %v, want ENHANCE_YOUR_CALM", goAway.ErrCode)
	}
	if !readUntilClosed(conn) {
		t.Fatal("connection not closed after the GOAWAY")
	}
	sc := ts.conn(0)
	<-sc.Done()
	if err := sc.Err(); !errors.Is(err, ErrPrefaceTimeout) {
		t.Errorf("connection error %v, want ErrPrefaceTimeout", err)
	}
}

// slowHeaderBlock writes a HEADERS frame that opens the header block of
// stream id with the first byte of fields' encoding, then the rest a byte
// per CONTINUATION frame every dribbleEvery, until stop is closed, a
// write fails or the block ends.
func slowHeaderBlock(p *rawPeer, id uint32, fields []hpack.HeaderField, stop <-chan struct{}) {
	var block []byte
	if p.write(func(fr *http2.Framer) error {
		block = p.encode(fields)
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:1]})
	}) != nil {
		return
	}
	for i := 1; i < len(block); i++ {
		select {
		case <-stop:
			return
		case <-time.After(dribbleEvery):
		}
		end := i == len(block)-1
		if p.write(func(fr *http2.Framer) error { return fr.WriteContinuation(id, end, block[i:i+1]) }) != nil {
			return
		}
	}
}

func TestSlowHeaderBlockGoAwayAfterLimit(t *testing.T) {
	noLeaks(t)
	ts := newTestServer(t, ServerConfig{HeaderBlockTimeout: testBlockLimit}, echoHandler)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{})
	p.expect(isType(http2.FrameSettings)) // its ack goes before the block
	// A long custom header, so the block outlasts the limit many times
	// over (and would outlast the CONTINUATION frame cap too, if the
	// frames came fast).
	fields := reqFields(echoMethod, "x-slow", "0123456789012345678901234567890123456789")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		slowHeaderBlock(p, 1, fields, stop)
	}()
	defer func() { close(stop); <-done }()
	f := p.expect(anyGoAway())
	if f.Code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY code %v, want ENHANCE_YOUR_CALM", f.Code)
	}
	p.expectClosed()
	sc := ts.conn(0)
	<-sc.Done()
	if err := sc.Err(); !errors.Is(err, ErrHeaderBlockTimeout) {
		t.Errorf("connection error %v, want ErrHeaderBlockTimeout", err)
	}
}

func TestSlowResponseHeaderBlockClosesClient(t *testing.T) {
	noLeaks(t)
	c, p := dialRawServer(t, ConnectOptions{HeaderBlockTimeout: testBlockLimit})
	p.expect(isType(http2.FrameSettings))
	_, id := rawOpenStream(t, c, p)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		slowHeaderBlock(p, id, respFields(":status", "200", "content-type", "application/grpc", "x-slow", "0123456789012345678901234567890123456789"), stop)
	}()
	defer func() { close(stop); <-done }()
	select {
	case <-c.Done():
	case <-time.After(longWait):
		t.Fatal("client still open while the server dribbles a header block")
	}
	if err := c.Err(); !errors.Is(err, ErrHeaderBlockTimeout) {
		t.Errorf("connection error %v, want ErrHeaderBlockTimeout", err)
	}
	p.expect(anyGoAway())
}

func TestIdleConnectionOutlivesTimeLimits(t *testing.T) {
	noLeaks(t)
	ts := newTestServer(t, ServerConfig{PrefaceTimeout: testPrefaceLimit, HeaderBlockTimeout: testBlockLimit}, echoHandler)
	p := dialRawClient(t, ts.addr(), rawPeerOpts{})
	p.unaryOK(1, echoMethod)
	// A header block in two frames, sent at once: the block timer is
	// armed and disarmed.
	p.must(p.write(func(fr *http2.Framer) error {
		block := p.encode(reqFields(echoMethod))
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:2]}); err != nil {
			return err
		}
		return fr.WriteContinuation(3, true, block[2:])
	}))
	p.must(p.writeMsg(3, true, []byte("still alive")))
	if r := p.readResponse(3); r.rst != nil || r.field("grpc-status") != "0" {
		t.Fatalf("RPC with a two-frame header block failed: %+v", r.frames)
	}
	// Idle for several times both limits: nothing closes the connection.
	p.expectNone(anyGoAway(), 4*testBlockLimit)
	if p.closed() {
		t.Fatal("idle connection closed")
	}
	p.unaryOK(5, echoMethod)
}
