package transport

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// TestTrailersRacingCancelPublishSafely: the server's trailers (with
// many metadata fields, so the reader spends a while on them) arrive
// while the client cancels the stream. The reader must not write the
// stream's trailer state after the cancel ended the stream, because
// Header and Trailer read it then; -race reports unordered writes.
func TestTrailersRacingCancelPublishSafely(t *testing.T) {
	c, p := dialRawServer(t, ConnectOptions{})
	trailers := respFields(":status", "200", "content-type", "application/grpc", "grpc-status", "0")
	for i := range 48 {
		trailers = append(trailers, hpack.HeaderField{Name: fmt.Sprintf("trailer-%02d", i), Value: "some trailer value"})
	}
	const iterations, streams = 30, 40
	for range iterations {
		var wg sync.WaitGroup
		start := make(chan struct{})
		ids := make([]uint32, 0, streams)
		for range streams {
			ctx, cancel := context.WithCancel(context.Background())
			s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Race/Trailers"})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			ids = append(ids, p.expect(anyHeaders()).StreamID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				cancel()
				<-s.Done()
				s.Header()
				s.Trailer()
			}()
		}
		p.must(p.write(func(fr *http2.Framer) error {
			for _, id := range ids {
				err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.encode(trailers), EndStream: true, EndHeaders: true})
				if err != nil {
					return err
				}
			}
			return nil
		}))
		close(start)
		wg.Wait()
	}
}

// TestEndStreamWithoutTrailersDeliversMessages: a server that ends the
// response with END_STREAM on DATA, without trailers, still delivers the
// complete messages it sent; the stream then ends with INTERNAL.
func TestEndStreamWithoutTrailersDeliversMessages(t *testing.T) {
	c, p := dialRawServer(t, ConnectOptions{})
	s, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Raw/NoTrailers"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(frameMsg(0), nil, WriteOptions{Last: true}); err != nil {
		t.Fatal(err)
	}
	id := p.expect(anyHeaders()).StreamID
	p.must(p.writeHeaders(id, false, respFields(":status", "200", "content-type", "application/grpc")))
	p.must(p.write(func(fr *http2.Framer) error {
		if err := fr.WriteData(id, false, append(frameMsg(5), "first"...)); err != nil {
			return err
		}
		return fr.WriteData(id, true, append(frameMsg(6), "second"...))
	}))
	<-s.Done()
	for _, want := range []string{"first", "second"} {
		got, err := readMsg(s)
		if err != nil {
			t.Fatalf("reading %q: %v", want, err)
		}
		if string(got) != want {
			t.Fatalf("message %q, want %q", got, want)
		}
	}
	if _, err := readMsg(s); err != io.EOF {
		t.Fatalf("after the messages: %v, want io.EOF", err)
	}
	st := s.Status()
	if st.Code() != codes.Internal || !strings.Contains(st.Message(), "without sending trailers") {
		t.Fatalf("status %v, want INTERNAL (no trailers)", st)
	}
}

// TestWriteAfterServerEndedReturnsEOF: once the server ended a
// client-streaming call with its status, the client's writes fail at once
// with io.EOF (the status is for reads), instead of being queued for a
// stream loopy no longer has.
func TestWriteAfterServerEndedReturnsEOF(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, func(s *ServerStream) {
		s.WriteStatus(status.New(codes.FailedPrecondition, "no more, thanks"))
	})
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	s, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Upload/Early"})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	msg := make([]byte, 1024)
	for i := range 100 {
		if err := s.Write(frameMsg(len(msg)), msg, WriteOptions{}); err != io.EOF {
			t.Fatalf("write %d after the stream ended: %v, want io.EOF", i, err)
		}
	}
	if _, err := readMsg(s); err != io.EOF {
		t.Fatalf("read: %v, want io.EOF", err)
	}
	if st := s.Status(); st.Code() != codes.FailedPrecondition {
		t.Fatalf("status %v, want FAILED_PRECONDITION", st)
	}
}

// TestInvalidRequestMetadataFailsBeforeSending: metadata that cannot be
// sent as given (a non-ASCII value, an upper-case or illegal key, a
// reserved grpc- key) fails the stream with INTERNAL before anything
// goes on the wire; -bin keys carry any bytes.
func TestInvalidRequestMetadataFailsBeforeSending(t *testing.T) {
	c, p := dialRawServer(t, ConnectOptions{})
	for _, md := range []metadata.MD{
		{"name": {"José"}},
		{"Name": {"x"}},
		{"bad key": {"x"}},
		{"grpc-custom": {"x"}},
		{"ok": {"fine"}, "line": {"a\nb"}},
	} {
		_, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Raw/Metadata", Metadata: md})
		if st := status.Convert(err); st.Code() != codes.Internal {
			t.Errorf("NewStream with %q: %v, want INTERNAL", md, err)
		}
	}
	s, err := c.NewStream(rawCtx(t), &CallHdr{Method: "/test.Raw/Metadata", Metadata: metadata.MD{"data-bin": {"\x00\xffJosé"}, "ok": {"fine"}}})
	if err != nil {
		t.Fatalf("NewStream with valid metadata: %v", err)
	}
	defer s.Close(nil)
	// The first stream on the wire is the valid one: none of the invalid
	// ones sent anything.
	if f := p.expect(anyHeaders()); f.StreamID != 1 || f.header("data-bin") == "" {
		t.Fatalf("first HEADERS %v, want stream 1 with data-bin", f)
	}
}
