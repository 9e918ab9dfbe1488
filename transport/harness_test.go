package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Test timeouts: long for what must happen, short for what must not.
const (
	longWait  = 20 * time.Second
	shortWait = 100 * time.Millisecond
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer runs a ServerTransport per accepted connection on loopback.
type testServer struct {
	t       testing.TB
	ln      net.Listener
	cfg     ServerConfig
	handler func(*ServerStream)
	// prepare, when set, runs on each accepted connection before the
	// transport starts (a TLS handshake, a latency wrapper); an error
	// drops the connection.
	prepare func(net.Conn) (net.Conn, error)

	mu    sync.Mutex
	conns []*http2Server
	wg    sync.WaitGroup
}

func newTestServer(t testing.TB, cfg ServerConfig, handler func(*ServerStream)) *testServer {
	t.Helper()
	return newTestServerWith(t, cfg, handler, nil)
}

// newTestServerWith is newTestServer with a prepare hook for accepted
// connections (see testServer.prepare).
func newTestServerWith(t testing.TB, cfg ServerConfig, handler func(*ServerStream), prepare func(net.Conn) (net.Conn, error)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, ln: ln, cfg: cfg, handler: handler, prepare: prepare}
	ts.wg.Add(1)
	go ts.serve()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) addr() string { return ts.ln.Addr().String() }

func (ts *testServer) serve() {
	defer ts.wg.Done()
	for {
		c, err := ts.ln.Accept()
		if err != nil {
			return
		}
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			if ts.prepare != nil {
				pc, err := ts.prepare(c)
				if err != nil {
					c.Close()
					return
				}
				c = pc
			}
			st, err := newHTTP2Server(c, ts.cfg)
			if err != nil {
				return
			}
			ts.mu.Lock()
			ts.conns = append(ts.conns, st)
			ts.mu.Unlock()
			var hw sync.WaitGroup
			st.HandleStreams(context.Background(), func(s *ServerStream) {
				hw.Add(1)
				go func() {
					defer hw.Done()
					ts.handler(s)
				}()
			})
			hw.Wait()
		}()
	}
}

// conn returns the i-th accepted server connection, waiting for it.
func (ts *testServer) conn(i int) *http2Server {
	deadline := time.Now().Add(longWait)
	for time.Now().Before(deadline) {
		ts.mu.Lock()
		if len(ts.conns) > i {
			c := ts.conns[i]
			ts.mu.Unlock()
			return c
		}
		ts.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	ts.t.Fatalf("server connection %d never arrived", i)
	return nil
}

func (ts *testServer) stop() {
	ts.ln.Close()
	ts.mu.Lock()
	for _, c := range ts.conns {
		c.Close(nil)
	}
	ts.mu.Unlock()
	ts.wg.Wait()
}

func newTestClient(t testing.TB, addr string, opts ConnectOptions) *http2Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	c, err := newHTTP2Client(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close(nil)
		<-c.Done()
		<-c.loopyDone.wait()
		if c.kpDone != nil {
			// Tests may change keepalive's minimums, which the
			// keepalive goroutine reads.
			<-c.kpDone
		}
	})
	return c
}

// newSmallWindowPair starts a server whose handler answers every stream
// with msg and status OK, without reading the request, and a client to
// it, both with fixed 64 KiB windows so that msg crosses many window
// updates. finished, if non-nil, is closed when a handler returns.
func newSmallWindowPair(t testing.TB, msg []byte, finished chan struct{}) *http2Client {
	cfg := ServerConfig{InitialWindowSize: 64 << 10, InitialConnWindowSize: 64 << 10}
	ts := newTestServer(t, cfg, func(s *ServerStream) {
		if finished != nil {
			defer close(finished)
		}
		if err := s.Write(frameMsg(len(msg)), msg, WriteOptions{}); err != nil {
			t.Error(err)
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	return newTestClient(t, ts.addr(), ConnectOptions{InitialWindowSize: 64 << 10, InitialConnWindowSize: 64 << 10})
}

// frameMsg returns the 5-byte gRPC prefix for a message of n bytes.
func frameMsg(n int) []byte {
	p := make([]byte, 5)
	binary.BigEndian.PutUint32(p[1:], uint32(n))
	return p
}

// readMsg reads one gRPC message from r.
func readMsg(r interface {
	io.Reader
	RequestRead(int)
}) ([]byte, error) {
	var p [5]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(p[1:]))
	r.RequestRead(n)
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// echoHandler echoes each request message, then ends with OK, sending
// request metadata back as header and trailer metadata.
func echoHandler(s *ServerStream) {
	md, _ := metadata.FromIncomingContext(s.Context())
	hdr := metadata.MD{}
	for k, v := range md {
		if len(k) > 5 && k[:5] == "echo-" {
			hdr[k] = v
		}
	}
	if len(hdr) > 0 {
		s.SetHeader(hdr)
		s.SetTrailer(metadata.Pairs("trailer-key", "trailer-value"))
	}
	for {
		m, err := readMsg(s)
		if err == io.EOF {
			s.WriteStatus(status.New(codes.OK, ""))
			return
		}
		if err != nil {
			s.WriteStatus(status.Convert(err))
			return
		}
		if err := s.Write(frameMsg(len(m)), m, WriteOptions{}); err != nil {
			s.WriteStatus(status.Convert(err))
			return
		}
	}
}

// unary sends one message, closes the send side and reads one reply and
// the status.
func unary(ctx context.Context, c *http2Client, method string, req []byte, md metadata.MD) ([]byte, *ClientStream, error) {
	s, err := c.NewStream(ctx, &CallHdr{Method: method, Metadata: md})
	if err != nil {
		return nil, nil, err
	}
	if err := s.Write(frameMsg(len(req)), req, WriteOptions{Last: true}); err != nil {
		if err != io.EOF {
			return nil, s, err
		}
		// The server ended the call before our request went out (a
		// handler that answers without reading): as with grpc-go's
		// SendMsg, io.EOF says the status is to be read.
	}
	resp, err := readMsg(s)
	if err != nil {
		if err == io.EOF {
			return nil, s, s.Status().Err()
		}
		return nil, s, err
	}
	if _, err := readMsg(s); err != io.EOF {
		return resp, s, errors.New("expected end of stream after one message")
	}
	return resp, s, s.Status().Err()
}
