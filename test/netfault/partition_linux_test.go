package netfault

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Keepalive of the partition tests, both sides, and the slack allowed
// on top of Time + Timeout for a busy CI machine.
const (
	kaTime    = time.Second
	kaTimeout = time.Second
	kaSlack   = 3 * time.Second
	// testTimeout bounds each test's RPCs.
	testTimeout = 60 * time.Second
)

// waitLeaveReady returns once cc is no longer READY (or ctx ends).
func waitLeaveReady(ctx context.Context, cc *rpc.ClientConn) {
	for s := cc.State(); s == rpc.Ready; s = cc.State() {
		if !cc.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// closedAt parses the time of a "closed" line of the server process.
func closedAt(t *testing.T, line string) (time.Time, string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("bad line %q", line)
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("bad line %q: %v", line, err)
	}
	return time.Unix(0, ns), strings.Join(f[2:], " ")
}

// TestPartitionDetectedByKeepalive: with keepalive Time 1 s and Timeout
// 1 s on both sides, a partition fails an open streaming RPC with
// UNAVAILABLE and takes the channel out of READY within Time + Timeout
// (plus slack) on the client, and the server closes its connection
// within the same bound.
func TestPartitionDetectedByKeepalive(t *testing.T) {
	e := newEnv(t)
	srv := e.startServer(serverConfig{kaTime: kaTime, kaTimeout: kaTimeout})
	cc := e.client(rpc.WithKeepaliveParams(keepalive.ClientParameters{Time: kaTime, Timeout: kaTimeout}))
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	chat, err := c.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&echov1.EchoRequest{Message: "before"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	if s := cc.State(); s != rpc.Ready {
		t.Fatalf("channel %v, want READY", s)
	}

	start := time.Now()
	e.link.Partition(true)
	recvErr := make(chan error, 1)
	go func() {
		_, err := chat.Recv()
		recvErr <- err
	}()
	waitLeaveReady(ctx, cc)
	left := time.Since(start)
	err = <-recvErr
	failed := time.Since(start)
	bound := kaTime + kaTimeout + kaSlack
	t.Logf("client: channel left READY %v and the stream failed %v after the partition (keepalive %v + %v): %v",
		left.Round(time.Millisecond), failed.Round(time.Millisecond), kaTime, kaTimeout, err)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("open stream failed with %v, want UNAVAILABLE", err)
	}
	if left > bound || failed > bound {
		t.Errorf("client detected the partition after %v, %v; want within %v", left, failed, bound)
	}
	if s := cc.State(); s == rpc.Ready {
		t.Errorf("channel %v after the partition was detected", s)
	}

	line, ok := srv.waitLine("closed ", bound+kaSlack)
	if !ok {
		t.Fatalf("the server never reported its connection closed")
	}
	at, reason := closedAt(t, line)
	t.Logf("server: connection closed %v after the partition (%s)", at.Sub(start).Round(time.Millisecond), reason)
	if d := at.Sub(start); d > bound {
		t.Errorf("server detected the partition after %v; want within %v", d, bound)
	}
	e.link.Partition(false)
}

// TestPartitionDeadlineAndWaitForReady: during a partition an RPC with a
// 1 s deadline fails DEADLINE_EXCEEDED by its deadline; wait-for-ready
// RPCs issued once the dead connection was detected complete after the
// partition heals, and none before.
func TestPartitionDeadlineAndWaitForReady(t *testing.T) {
	e := newEnv(t)
	e.startServer(serverConfig{})
	cc := e.client(rpc.WithKeepaliveParams(keepalive.ClientParameters{Time: kaTime, Timeout: kaTimeout, PermitWithoutStream: true}))
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.Unary(ctx, &echov1.EchoRequest{Message: "warm-up"}); err != nil {
		t.Fatal(err)
	}

	e.link.Partition(true)
	const deadline = time.Second
	dctx, dcancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	_, err := c.Unary(dctx, &echov1.EchoRequest{Message: "deadline"})
	el := time.Since(start)
	dcancel()
	t.Logf("RPC with a %v deadline during the partition ended after %v: %v", deadline, el.Round(time.Millisecond), err)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("got %v, want DEADLINE_EXCEEDED", err)
	}
	if el > deadline+time.Second {
		t.Errorf("ended %v after its %v deadline", el-deadline, deadline)
	}

	// Keepalive finds the connection dead; calls issued from now on wait
	// for a new one.
	waitLeaveReady(ctx, cc)
	const n = 8
	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			_, err := c.Unary(ctx, &echov1.EchoRequest{Message: fmt.Sprint("wfr-", i)}, rpc.WaitForReady(true))
			results <- result{err, time.Now()}
		}()
	}
	time.Sleep(2 * time.Second) // the partition lasts a while longer
	select {
	case r := <-results:
		t.Fatalf("a wait-for-ready RPC ended during the partition: %v", r.err)
	default:
	}
	healed := time.Now()
	e.link.Partition(false)
	var last time.Duration
	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("wait-for-ready RPC: %v", r.err)
		}
		last = max(last, r.at.Sub(healed))
	}
	t.Logf("%d wait-for-ready RPCs completed within %v of the heal (%d connection attempts in all)", n, last.Round(time.Millisecond), len(e.dials()))
}
