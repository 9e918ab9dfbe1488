package transport

import (
	"fmt"
	"net"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
)

// TCP settings that matter when a peer vanishes without closing: without
// them a connection whose peer is gone can sit in the kernel for many
// minutes (until the retransmission limit, about 15 minutes on Linux),
// and a silent peer is never noticed at all.

// DefaultTCPKeepalive is the idle time after which the OS sends TCP
// keepalive probes on a connection, and their interval, when
// ConnectOptions.TCPKeepalive or ServerConfig.TCPKeepalive is 0. It is
// Go's own default for the sockets net.Dialer and net.Listen create.
const DefaultTCPKeepalive = 15 * time.Second

// tcpConnOf returns the *net.TCPConn under c, looking through wrappers
// that expose it with NetConn (as *tls.Conn does), or nil when there is
// none (a Unix socket, a pipe, a wrapper that hides its conn).
func tcpConnOf(c net.Conn) *net.TCPConn {
	for range 4 { // a bounded unwrap: wrappers do not nest deeper
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// setTCPOptions applies h2rpc's socket options to the TCP connection
// under conn, if any: OS keepalive (ka: 0 means DefaultTCPKeepalive, a
// negative value turns it off) and, when userTimeout > 0, TCP_USER_TIMEOUT,
// so the kernel aborts the connection when sent data stays unacknowledged
// that long. It runs once per connection, before any TLS handshake.
func setTCPOptions(conn net.Conn, ka, userTimeout time.Duration) error {
	tc := tcpConnOf(conn)
	if tc == nil {
		return nil
	}
	if ka == 0 {
		ka = DefaultTCPKeepalive
	}
	if ka < 0 {
		if err := tc.SetKeepAlive(false); err != nil {
			return fmt.Errorf("transport: turning TCP keepalive off: %w", err)
		}
	} else {
		if err := tc.SetKeepAlive(true); err != nil {
			return fmt.Errorf("transport: turning TCP keepalive on: %w", err)
		}
		if err := tc.SetKeepAlivePeriod(ka); err != nil {
			return fmt.Errorf("transport: setting the TCP keepalive period: %w", err)
		}
	}
	if userTimeout > 0 {
		if err := setTCPUserTimeout(tc, userTimeout); err != nil {
			return fmt.Errorf("transport: setting TCP_USER_TIMEOUT: %w", err)
		}
	}
	return nil
}

// clientUserTimeout is the TCP_USER_TIMEOUT of a client connection: the
// keepalive Timeout when keepalive pings are on, else none (0). grpc-go
// does the same.
func clientUserTimeout(p keepalive.ClientParameters) time.Duration {
	if p = p.Effective(); p.Time != keepalive.Infinity {
		return p.Timeout
	}
	return 0
}

// serverUserTimeout is the TCP_USER_TIMEOUT of a server connection: the
// keepalive Timeout unless server pings are turned off (Time Infinity).
// As in grpc-go, the server's pings are on by default (every
// keepalive.DefaultServerTime), so this is normally set.
func serverUserTimeout(p keepalive.ServerParameters) time.Duration {
	if p = p.Effective(); p.Time != keepalive.Infinity {
		return p.Timeout
	}
	return 0
}
