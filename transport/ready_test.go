package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// acceptThen listens on loopback and runs serve on every accepted
// connection (on the accepting goroutine), closing it afterwards.
func acceptThen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// TestClientTransportNotReadyBeforeServerSettings: NewClientTransport
// returns a connection only once the server's SETTINGS arrived; a server
// that hangs up, sends garbage or stays silent makes it fail with a clear
// error, not hand out a connection that is already dead.
func TestClientTransportNotReadyBeforeServerSettings(t *testing.T) {
	garbage := []byte("HTTP/1.1 400 Bad Request\r\n\r\n")
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		want  string // in the error
		is    error  // errors.Is the error, when set
	}{
		{"accept and close", func(net.Conn) {}, "closed before the server's SETTINGS", nil},
		{"garbage", func(c net.Conn) { c.Write(garbage) }, "closed before the server's SETTINGS", nil},
		{"silent", func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(longWait))
			var b [1]byte
			for {
				if _, err := c.Read(b[:]); err != nil {
					return // the client hung up
				}
			}
		}, "no SETTINGS", context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := acceptThen(t, tc.serve)
			timeout := longWait
			if tc.is != nil {
				timeout = shortWait
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			ct, err := NewClientTransport(ctx, addr, ConnectOptions{Logger: quietLogger})
			if err == nil {
				ct.Close(nil)
				t.Fatal("NewClientTransport succeeded without the server's SETTINGS")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestClientTransportReadyAfterServerSettings: SETTINGS alone (an empty
// frame, nothing else yet) make the connection ready.
func TestClientTransportReadyAfterServerSettings(t *testing.T) {
	release := make(chan struct{})
	addr := acceptThen(t, func(c net.Conn) {
		c.Write(emptySettingsFrame)
		<-release
	})
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	ct, err := NewClientTransport(ctx, addr, ConnectOptions{Logger: quietLogger})
	close(release)
	if err != nil {
		t.Fatalf("NewClientTransport: %v", err)
	}
	ct.Close(nil)
	<-ct.Done()
}
