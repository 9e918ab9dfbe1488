package rpc

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// recordingListener hands out accepted connections unchanged and also
// sends them on conns.
type recordingListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

// keepIdle reads TCP_KEEPIDLE (seconds) of a TCP connection.
func keepIdle(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestTCPKeepaliveOptions: WithTCPKeepalive and TCPKeepalive reach the
// sockets of both ends.
func TestTCPKeepaliveOptions(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: lis, conns: make(chan net.Conn, 1)}
	srv := NewServer(TCPKeepalive(41 * time.Second))
	srv.RegisterService(&testServiceDesc, &testService{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(rl) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	dialed := make(chan net.Conn, 1)
	_, c := dial(t, lis.Addr().String(), WithTCPKeepalive(37*time.Second),
		WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				select {
				case dialed <- conn:
				default:
				}
			}
			return conn, err
		}))
	if _, err := c.Unary(ctxWait(t), &wrapperspb.BytesValue{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if v := keepIdle(t, <-dialed); v != 37 {
		t.Errorf("client TCP_KEEPIDLE = %ds, want 37", v)
	}
	if v := keepIdle(t, <-rl.conns); v != 41 {
		t.Errorf("server TCP_KEEPIDLE = %ds, want 41", v)
	}
}
