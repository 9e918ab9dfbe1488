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
)

// TestTrailersRacingCancelPublishSafely: the server's trailers (with
// many metadata fields, so the reader spends a while on them) arrive
// while the client cancels the stream. The reader must not write the
// stream's trailer state after the cancel ended the stream, because
// Header and Trailer read it then; -race reports unordered writes.
func TestTrailersRacingCancelPublishSafely(t *testing.T) {
	rs := newRawServer(t)
	c := newTestClient(t, rs.addr(), ConnectOptions{})
	p := rs.accept(t, rawPeerOpts{})
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
	rs := newRawServer(t)
	c := newTestClient(t, rs.addr(), ConnectOptions{})
	p := rs.accept(t, rawPeerOpts{})
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
