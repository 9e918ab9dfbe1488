package transport

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// openWaiting opens a stream whose handler (on ts) runs until its reads
// fail, and waits until the server has it.
func openWaiting(t *testing.T, c *http2Client, ts *testServer) *ClientStream {
	t.Helper()
	s, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Close/Wait"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(frameMsg(1), []byte{1}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := ts.conn(0)
	pollUntil(t, "the server stream", func() bool { return sc.activeStreams() > 0 })
	return s
}

// TestClientCloseCancelsStreamsAtServer: closing the client transport
// ends its streams with CANCELLED, and the server's handler sees a
// cancel (the client reset the stream before its GOAWAY and close), not
// a broken connection.
func TestClientCloseCancelsStreamsAtServer(t *testing.T) {
	for _, closeErr := range []error{ErrConnClosing, status.Error(codes.Canceled, "rpc: the client connection is closing")} {
		handlerErr := make(chan error, 1)
		ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
			for {
				if _, err := readMsg(s); err != nil {
					handlerErr <- err
					s.WriteStatus(status.Convert(err))
					return
				}
			}
		})
		c := newTestClient(t, ts.addr(), ConnectOptions{})
		s := openWaiting(t, c, ts)
		c.Close(closeErr)
		if st := s.Status(); st.Code() != codes.Canceled {
			t.Errorf("Close(%v): client stream status %v, want CANCELLED", closeErr, st)
		}
		if err := rawRecv(t, handlerErr, "the handler's read error"); status.Code(err) != codes.Canceled {
			t.Errorf("Close(%v): the server handler's read failed with %v, want CANCELLED", closeErr, err)
		}
		if !errors.Is(c.Err(), closeErr) {
			t.Errorf("Err() = %v, want %v", c.Err(), closeErr)
		}
	}
}

// checkStatusText fails the test when a status message nests another
// status text or repeats a package prefix.
func checkStatusText(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := status.Convert(err).Message()
	if strings.Contains(msg, "rpc error:") {
		t.Errorf("%s: status message nests a status: %q", what, msg)
	}
	if strings.Count(msg, "transport:") > 1 || strings.Contains(msg, "controlbuf:") || strings.Contains(msg, "rpc:") {
		t.Errorf("%s: status message repeats package prefixes: %q", what, msg)
	}
}

// TestStatusTextsHaveOnePrefixAndNoNesting: the texts of typical
// failures (connection closed by either side, a reset, a closed buffer)
// carry one package prefix and no status text inside.
func TestStatusTextsHaveOnePrefixAndNoNesting(t *testing.T) {
	resetErr := make(chan error, 1)
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		for {
			if _, err := readMsg(s); err != nil {
				if s.Method() == "/test.Close/Reset" {
					resetErr <- err
				}
				s.WriteStatus(status.Convert(err))
				return
			}
		}
	})
	// Closed by the client with a status error (what rpc passes).
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	s := openWaiting(t, c, ts)
	c.Close(status.Error(codes.Canceled, "rpc: the client connection is closing"))
	checkStatusText(t, "client closed", s.Status().Err())
	// A new stream on the closed connection: the buffer is closed.
	_, err := c.NewStream(context.Background(), &CallHdr{Method: "/test.Close/After"})
	checkStatusText(t, "stream after close", err)

	// Closed by the server.
	c2 := newTestClient(t, ts.addr(), ConnectOptions{})
	s2, err := c2.NewStream(rawCtx(t), &CallHdr{Method: "/test.Close/Server"})
	if err != nil {
		t.Fatal(err)
	}
	s2.Write(frameMsg(1), []byte{1}, WriteOptions{})
	sc := ts.conn(1)
	pollUntil(t, "the server stream", func() bool { return sc.activeStreams() > 0 })
	sc.Close(&ConnectionError{Code: 0, Desc: "test closes", Err: errors.New("transport: controlbuf: boom")})
	checkStatusText(t, "server closed", s2.Status().Err())

	// A stream reset by the client's cancel, as the server sees it.
	c3 := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	s3, err := c3.NewStream(ctx, &CallHdr{Method: "/test.Close/Reset"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s3.Write(frameMsg(1), []byte{1}, WriteOptions{})
	sc3 := ts.conn(2)
	pollUntil(t, "the server stream", func() bool { return sc3.activeStreams() > 0 })
	cancel()
	checkStatusText(t, "client cancelled", s3.Status().Err())
	checkStatusText(t, "reset at the server", rawRecv(t, resetErr, "the handler's read error"))
}

// TestServerCloseStopsDrainTimer: a connection closed while its
// graceful drain waits for the PING ack stops the drain's timer, which
// would otherwise keep the connection reachable until it fires.
func TestServerCloseStopsDrainTimer(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		s.WriteStatus(status.New(codes.OK, ""))
	})
	newTestClient(t, ts.addr(), ConnectOptions{})
	sc := ts.conn(0)
	sc.Drain("test")
	sc.Close(nil)
	<-sc.Done()
	sc.mu.Lock()
	timer := sc.drainTimer
	sc.mu.Unlock()
	if timer == nil {
		t.Fatal("Drain set no timer")
	}
	if timer.Stop() {
		t.Fatal("the drain timer was still running after the connection closed")
	}
}
