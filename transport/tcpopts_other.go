//go:build !linux

package transport

import (
	"net"
	"time"
)

// setTCPUserTimeout does nothing where TCP_USER_TIMEOUT is not supported.
func setTCPUserTimeout(*net.TCPConn, time.Duration) error { return nil }
