package transport

import (
	"math"
	"net"
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT from linux/tcp.h (the same value on
// every architecture; package syscall does not define it).
const tcpUserTimeout = 0x12

// setTCPUserTimeout sets TCP_USER_TIMEOUT on tc, in milliseconds.
func setTCPUserTimeout(tc *net.TCPConn, d time.Duration) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	ms := min(d/time.Millisecond, math.MaxInt32) // the option is a C int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(ms))
	}); err != nil {
		return err
	}
	return serr
}
