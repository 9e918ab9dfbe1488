package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// A peer that breaks the protocol and keeps writing without reading must
// still get the GOAWAY saying why: closing a socket with unread bytes
// makes the kernel send a reset, which can destroy the GOAWAY in flight.
func TestGoAwaySurvivesUnreadPeerBytes(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, echoHandler)
	conn, err := net.Dial("tcp", ts.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	fr.WriteSettings()
	// DATA on stream 0 is a connection error (RFC 9113 §6.1) ...
	fr.WriteRawFrame(http2.FrameData, 0, 0, []byte("bad"))
	// ... and the peer goes on writing what the server will never read.
	for range 2000 {
		fr.WritePing(false, [8]byte{1})
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Let the server answer and close before we read anything.
	time.Sleep(3 * shortWait)
	conn.SetReadDeadline(time.Now().Add(longWait))
	in := http2.NewFramer(nil, conn)
	for {
		f, err := in.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("GOAWAY %v, want PROTOCOL_ERROR", ga.ErrCode)
			}
			break
		}
	}
	// After the GOAWAY the server shut its side cleanly (FIN, not a
	// reset, although our bytes were still unread).
	for {
		_, err := in.ReadFrame()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("after GOAWAY the connection ended with %v, want a clean EOF", err)
		}
		break
	}
}
