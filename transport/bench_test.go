package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// BenchmarkUnaryRoundTrip measures one unary RPC over loopback with our
// client and server: request HEADERS and DATA, response HEADERS, DATA and
// trailers, the handler goroutine included.
func BenchmarkUnaryRoundTrip(b *testing.B) {
	for _, size := range []int{1, 1 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			ts := newTestServer(b, ServerConfig{}, echoHandler)
			c := newTestClient(b, ts.addr(), ConnectOptions{})
			ctx := context.Background()
			req := bytes.Repeat([]byte{'r'}, size)
			prefix := frameMsg(size)
			buf := make([]byte, 5+size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := c.NewStream(ctx, &CallHdr{Method: "/bench.Echo/Unary"})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Write(prefix, req, WriteOptions{Last: true}); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, buf); err != nil {
					b.Fatal(err)
				}
				if st := s.Status(); st.Code() != codes.OK {
					b.Fatal(st)
				}
			}
		})
	}
}

// BenchmarkStreamDownload measures server-streaming throughput: one
// stream, 64 KiB messages, read by the client as they come.
func BenchmarkStreamDownload(b *testing.B) {
	const size = 64 << 10
	payload := bytes.Repeat([]byte{'d'}, size)
	prefix := frameMsg(size)
	ts := newTestServer(b, ServerConfig{}, func(s *ServerStream) {
		req, err := readMsg(s)
		if err != nil || len(req) != 4 {
			s.WriteStatus(status.New(codes.InvalidArgument, "want a count"))
			return
		}
		for n := binary.BigEndian.Uint32(req); n > 0; n-- {
			if err := s.Write(prefix, payload, WriteOptions{}); err != nil {
				s.WriteStatus(status.Convert(err))
				return
			}
		}
		s.WriteStatus(status.New(codes.OK, ""))
	})
	c := newTestClient(b, ts.addr(), ConnectOptions{})
	ctx := context.Background()
	buf := make([]byte, 5+size)

	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/bench.Bulk/Download"})
	if err != nil {
		b.Fatal(err)
	}
	req := binary.BigEndian.AppendUint32(nil, uint32(b.N))
	if err := s.Write(frameMsg(len(req)), req, WriteOptions{Last: true}); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if _, err := io.ReadFull(s, buf[:5]); err != nil {
			b.Fatal(err)
		}
		s.RequestRead(size)
		if _, err := io.ReadFull(s, buf[5:]); err != nil {
			b.Fatal(err)
		}
	}
	if st := s.Status(); st.Code() != codes.OK {
		b.Fatal(st)
	}
}

// typicalRequest is the header list of a typical gRPC request.
var typicalRequest = []hpack.HeaderField{
	{Name: ":method", Value: "POST"},
	{Name: ":scheme", Value: "http"},
	{Name: ":path", Value: "/helloworld.Greeter/SayHello"},
	{Name: ":authority", Value: "localhost:50051"},
	{Name: "content-type", Value: "application/grpc"},
	{Name: "user-agent", Value: "grpc-go/1.70.0"},
	{Name: "te", Value: "trailers"},
	{Name: "grpc-timeout", Value: "999937u"},
	{Name: "grpc-accept-encoding", Value: "gzip"},
	{Name: "x-request-id", Value: "6f1c1f0e-8d1c-4b6a-9a55-2a0e4cfb7c3e"},
}

// headersFrame encodes fields with enc as one HEADERS frame on stream 1
// and reads it back with a framer.
func headersFrame(b testing.TB, enc *hpack.Encoder, encBuf *bytes.Buffer) *http2.HeadersFrame {
	b.Helper()
	encBuf.Reset()
	for _, f := range typicalRequest {
		if err := enc.WriteField(f); err != nil {
			b.Fatal(err)
		}
	}
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, &wire)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: 1, BlockFragment: encBuf.Bytes(), EndHeaders: true,
	}); err != nil {
		b.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		b.Fatal(err)
	}
	return f.(*http2.HeadersFrame)
}

// BenchmarkHeaderBlockDecode decodes a typical gRPC request header block
// with headerBlock, the reader's decoder. "literal" is a connection's
// first request (every field a literal, added to the dynamic table);
// "indexed" is a later request of the same shape (fields from the table).
func BenchmarkHeaderBlockDecode(b *testing.B) {
	b.Run("literal", func(b *testing.B) {
		var encBuf bytes.Buffer
		f := headersFrame(b, hpack.NewEncoder(&encBuf), &encBuf)
		hb := newHeaderBlock(DefaultMaxHeaderListSize)
		b.ReportAllocs()
		b.SetBytes(int64(len(f.HeaderBlockFragment())))
		for b.Loop() {
			// Each decode adds the fields to the table again, as the
			// literals ask; the table stays valid for the next round.
			if done, err := startFrame(hb, f); !done || err != nil {
				b.Fatal(done, err)
			}
		}
		if len(hb.fields) != len(typicalRequest) {
			b.Fatalf("%d fields, want %d", len(hb.fields), len(typicalRequest))
		}
	})
	b.Run("indexed", func(b *testing.B) {
		var encBuf bytes.Buffer
		enc := hpack.NewEncoder(&encBuf)
		first := headersFrame(b, enc, &encBuf)
		hb := newHeaderBlock(DefaultMaxHeaderListSize)
		if done, err := startFrame(hb, first); !done || err != nil {
			b.Fatal(done, err)
		}
		// The encoder's table now mirrors the decoder's.
		f := headersFrame(b, enc, &encBuf)
		b.ReportAllocs()
		b.SetBytes(int64(len(f.HeaderBlockFragment())))
		for b.Loop() {
			if done, err := startFrame(hb, f); !done || err != nil {
				b.Fatal(done, err)
			}
		}
		for i, got := range hb.fields {
			if got != typicalRequest[i] {
				b.Fatalf("field %d = %v, want %v", i, got, typicalRequest[i])
			}
		}
	})
}

// BenchmarkRequestFields measures building a client's request header
// fields (before HPACK encoding, which loopy does).
func BenchmarkRequestFields(b *testing.B) {
	t := &http2Client{scheme: "http", authority: "localhost:50051", userAgent: DefaultUserAgent}
	b.Run("plain", func(b *testing.B) {
		hdr := &CallHdr{Method: "/helloworld.Greeter/SayHello"}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := t.requestFields(ctx, hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deadline+metadata", func(b *testing.B) {
		hdr := &CallHdr{
			Method:         "/helloworld.Greeter/SayHello",
			AcceptCompress: "gzip",
			Metadata:       metadata.Pairs("x-request-id", "6f1c1f0e-8d1c-4b6a-9a55-2a0e4cfb7c3e", "trace-bin", "\x00\x01\x02\x03"),
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := t.requestFields(ctx, hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRecvBufferReleasesChunks: a receive buffer that was closed and read
// to the end gives its chunks back to the pool, whichever came first. The
// unary benchmark showed the kept last chunk costing 16 KiB per RPC.
func TestRecvBufferReleasesChunks(t *testing.T) {
	for _, closeFirst := range []bool{false, true} {
		var r recvBuffer
		r.init()
		r.write([]byte("hello"))
		if closeFirst {
			r.close(io.EOF)
		}
		p := make([]byte, 5)
		if n, err, ok := r.read(p); n != 5 || err != nil || !ok {
			t.Fatalf("read = %d, %v, %v", n, err, ok)
		}
		if !closeFirst {
			if _, held := r.stats(); held != recvChunkSize {
				t.Fatalf("an open buffer holds %d bytes, want its last chunk (%d) kept for refilling", held, recvChunkSize)
			}
			r.close(io.EOF)
		}
		if unread, held := r.stats(); unread != 0 || held != 0 {
			t.Errorf("closeFirst=%v: a closed, fully read buffer holds %d bytes (%d unread)", closeFirst, held, unread)
		}
		if _, err, ok := r.read(p); err != io.EOF || !ok {
			t.Errorf("closeFirst=%v: read after the end = %v, %v; want io.EOF", closeFirst, err, ok)
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// startFrame decodes the header block of a HEADERS frame with hb.
func startFrame(hb *headerBlock, f *http2.HeadersFrame) (bool, error) {
	hb.start(f.StreamID, f.StreamEnded())
	return hb.add(f.HeaderBlockFragment(), f.HeadersEnded())
}
