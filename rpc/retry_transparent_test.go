package rpc

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// rawGRPCServer is a minimal HTTP/2 gRPC server on one connection that
// answers each new stream as reply says: "refuse" (RST_STREAM
// REFUSED_STREAM, so the stream was never processed), "unavailable" (a
// trailers-only UNAVAILABLE), "headers-then-unavailable" (response
// headers, then trailers with UNAVAILABLE) or "ok" (an empty message and
// OK). It
// records each stream's grpc-previous-rpc-attempts.
type rawGRPCServer struct {
	replies []string

	mu   sync.Mutex
	prev []string
}

func (rs *rawGRPCServer) serve(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 1)
	go func() {
		defer close(done)
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		conns <- conn
		rs.handle(conn)
	}()
	t.Cleanup(func() {
		lis.Close()
		select {
		case conn := <-conns:
			conn.Close()
		default:
		}
		<-done
	})
	return lis.Addr().String()
}

func (rs *rawGRPCServer) handle(conn net.Conn) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(conn, preface); err != nil {
		return
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings() != nil {
		return
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	block := func(fields ...string) []byte {
		hbuf.Reset()
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hbuf.Bytes())
	}
	n := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			rs.mu.Lock()
			rs.prev = append(rs.prev, headerValue(f, "grpc-previous-rpc-attempts"))
			rs.mu.Unlock()
			reply := "ok"
			if n < len(rs.replies) {
				reply = rs.replies[n]
			}
			n++
			id := f.StreamID
			switch reply {
			case "refuse":
				fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
			case "headers-then-unavailable":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true,
					BlockFragment: block(":status", "200", "content-type", "application/grpc")})
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
					BlockFragment: block("grpc-status", "14", "grpc-message", "down after headers")})
			case "unavailable":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
					BlockFragment: block(":status", "200", "content-type", "application/grpc", "grpc-status", "14", "grpc-message", "down")})
			default:
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true,
					BlockFragment: block(":status", "200", "content-type", "application/grpc")})
				fr.WriteData(id, false, []byte{0, 0, 0, 0, 0})
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
					BlockFragment: block("grpc-status", "0")})
			}
		}
	}
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

func TestRetryTransparentRetryDoesNotCountAsAnAttempt(t *testing.T) {
	// A refused stream (never processed), then a retryable failure, then
	// success: with maxAttempts 2 the call succeeds only if the refused
	// stream did not count as an attempt.
	srv := &rawGRPCServer{replies: []string{"refuse", "unavailable", "ok"}}
	addr := srv.serve(t)
	_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(2, `["UNAVAILABLE"]`, "")))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatalf("Unary: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	// The transparent retry is the same attempt again: no header; the
	// one real retry says one attempt came before.
	if len(srv.prev) != 3 || srv.prev[0] != "" || srv.prev[1] != "" || srv.prev[2] != "1" {
		t.Errorf("grpc-previous-rpc-attempts per stream = %q, want [\"\" \"\" \"1\"]", srv.prev)
	}
}

// TestRetryTrailersOnlyIsRetriedButHeadersCommit: a trailers-only
// response with a retryable code does not commit the call, which is
// retried (gRFC A6: only response headers commit); response headers
// followed by trailers with the same code commit it, and it is not
// retried. Unary and server-streaming calls alike.
func TestRetryTrailersOnlyIsRetriedButHeadersCommit(t *testing.T) {
	download := func(c *testClient) error {
		s, err := c.Download(ctxWait(t), wrapperspb.Bytes(nil))
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
	unary := func(c *testClient) error {
		_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
		return err
	}
	for _, kind := range []struct {
		name string
		call func(*testClient) error
	}{{"unary", unary}, {"server streaming", download}} {
		for _, tc := range []struct {
			replies []string
			code    codes.Code
			streams int
		}{
			{[]string{"unavailable", "unavailable", "ok"}, codes.OK, 3},
			{[]string{"headers-then-unavailable", "ok"}, codes.Unavailable, 1},
		} {
			srv := &rawGRPCServer{replies: tc.replies}
			addr := srv.serve(t)
			_, c := dial(t, addr, WithDefaultServiceConfig(retryConfig(3, `["UNAVAILABLE"]`, "")))
			err := kind.call(c)
			srv.mu.Lock()
			n := len(srv.prev)
			srv.mu.Unlock()
			if status.Code(err) != tc.code || n != tc.streams {
				t.Errorf("%s, replies %q: %v after %d attempts, want code %v after %d", kind.name, tc.replies, err, n, tc.code, tc.streams)
			}
		}
	}
}
