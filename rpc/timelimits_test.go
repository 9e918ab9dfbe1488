package rpc

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestServerClosesConnectionWithoutSettingsAfterPrefaceTimeout(t *testing.T) {
	_, addr := startServer(t, &testService{}, PrefaceTimeout(300*time.Millisecond))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The preface, then no SETTINGS frame ever.
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(longWait))
	if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a client that never sent SETTINGS was not disconnected")
	}
}
