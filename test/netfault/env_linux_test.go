package netfault

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
)

// serverPort is where the server process listens, on the server
// namespace's address; a restarted server takes the same address.
const serverPort = 50051

var envSeq atomic.Int32

// env is one test's network: client and server namespaces, the Link
// between them, and a counting dialer for the client side.
type env struct {
	t              testing.TB
	clientNS       string
	serverNS       string
	clientIP       string
	serverIP       string
	link           *Link
	tuns           [2]*os.File
	dialMu         sync.Mutex
	dialTimes      []time.Time // when each connection attempt started
	serverAddrPort string
}

// newEnv builds the two namespaces and the link, or skips the test with
// the reason when this machine cannot.
func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: %v (euid %d)", errNoRoot, os.Geteuid())
	}
	if sysSetns == 0 {
		t.Skip("skipping: setns is not known on this architecture")
	}
	n := envSeq.Add(1)
	e := &env{
		t:        t,
		clientNS: fmt.Sprintf("%s%d-%d", nsPrefixClient, os.Getpid(), n),
		serverNS: fmt.Sprintf("%s%d-%d", nsPrefixServer, os.Getpid(), n),
		clientIP: fmt.Sprintf("10.213.%d.1", n%250),
		serverIP: fmt.Sprintf("10.213.%d.2", n%250),
	}
	e.serverAddrPort = net.JoinHostPort(e.serverIP, fmt.Sprint(serverPort))
	for _, ns := range []string{e.clientNS, e.serverNS} {
		if err := ipCmd("netns", "add", ns); err != nil {
			t.Skipf("skipping: cannot create a network namespace: %v", err)
		}
		t.Cleanup(func() { ipCmd("netns", "del", ns) })
	}
	for i, ns := range []string{e.clientNS, e.serverNS} {
		f, err := openTUN(ns)
		if err != nil {
			t.Skipf("skipping: cannot create a TUN device: %v", err)
		}
		e.tuns[i] = f
	}
	e.link = newLink(e.tuns[0], e.tuns[1], uint64(n))
	t.Cleanup(func() {
		e.tuns[0].Close()
		e.tuns[1].Close()
		e.link.wait()
	})
	for _, c := range []struct{ ns, local, peer string }{
		{e.clientNS, e.clientIP, e.serverIP},
		{e.serverNS, e.serverIP, e.clientIP},
	} {
		for _, args := range [][]string{
			{"-n", c.ns, "link", "set", "lo", "up"},
			{"-n", c.ns, "addr", "add", c.local, "peer", c.peer, "dev", tunName},
			{"-n", c.ns, "link", "set", tunName, "up"},
		} {
			if err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return e
}

// dial connects from the client namespace; rpc calls it for every
// connection attempt, which it counts.
func (e *env) dial(ctx context.Context, addr string) (net.Conn, error) {
	e.dialMu.Lock()
	e.dialTimes = append(e.dialTimes, time.Now())
	e.dialMu.Unlock()
	return inNetns(e.clientNS, func() (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
}

// dials returns the start times of the connection attempts so far.
func (e *env) dials() []time.Time {
	e.dialMu.Lock()
	defer e.dialMu.Unlock()
	return append([]time.Time(nil), e.dialTimes...)
}

// client returns a ClientConn to the server through the link.
func (e *env) client(opts ...rpc.DialOption) *rpc.ClientConn {
	e.t.Helper()
	opts = append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials()), rpc.WithContextDialer(e.dial)}, opts...)
	cc, err := rpc.NewClient(e.serverAddrPort, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Close() })
	return cc
}
