package rpc

import (
	"context"
	"io"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// flagByte encodes a compressed flag as one byte of a test message.
func flagByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// compressible is a payload that gzip shrinks, so compression is worth it.
var compressible = make([]byte, 4096)

func TestUnaryCompressionFlags(t *testing.T) {
	// The handler reports whether the request arrived compressed and
	// answers as the request's first byte says: 0 as the server would by
	// default, 1 with gzip chosen by SetSendCompressor, 2 with gzip chosen
	// but this message uncompressed, 3 with identity chosen.
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		switch in.Value[0] {
		case 1:
			if err := SetSendCompressor(ctx, "gzip"); err != nil {
				return nil, err
			}
		case 2:
			if err := SetSendCompressor(ctx, "gzip"); err != nil {
				return nil, err
			}
			if err := SetMessageCompression(ctx, false); err != nil {
				return nil, err
			}
		case 3:
			if err := SetSendCompressor(ctx, "identity"); err != nil {
				return nil, err
			}
		}
		return wrapperspb.Bytes(append([]byte{flagByte(RecvCompressed(ctx))}, compressible...)), nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx := ctxWait(t)

	for _, tc := range []struct {
		name         string
		mode         byte
		gzipRequest  bool
		wantRespComp bool
	}{
		{"plain request, default", 0, false, false},
		{"plain request, gzip chosen", 1, false, true},
		{"plain request, gzip chosen, message uncompressed", 2, false, false},
		{"gzip request, default answers in kind", 0, true, true},
		{"gzip request, identity chosen", 3, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var respComp bool
			opts := []CallOption{ResponseCompressed(&respComp)}
			if tc.gzipRequest {
				opts = append(opts, UseCompressor("gzip"))
			}
			out, err := c.Unary(ctx, wrapperspb.Bytes(append([]byte{tc.mode}, compressible...)), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Value[0] == 1; got != tc.gzipRequest {
				t.Errorf("the server saw a compressed request: %v, want %v", got, tc.gzipRequest)
			}
			if respComp != tc.wantRespComp {
				t.Errorf("ResponseCompressed = %v, want %v", respComp, tc.wantRespComp)
			}
		})
	}
}

func TestClientStreamMessageCompression(t *testing.T) {
	// The server answers with one byte per request: its compressed flag.
	svc := &testService{upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		var flags []byte
		for {
			_, err := s.Recv()
			if err == io.EOF {
				return s.SendAndClose(wrapperspb.Bytes(flags))
			}
			if err != nil {
				return err
			}
			flags = append(flags, flagByte(RecvCompressed(s.Context())))
		}
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx := ctxWait(t)

	up, err := c.Upload(ctx, UseCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, false, true}
	for _, on := range want {
		if err := SetMessageCompression(up.Context(), on); err != nil {
			t.Fatal(err)
		}
		if err := up.Send(wrapperspb.Bytes(compressible)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := up.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if wantBytes := []byte{1, 0, 0, 1}; !slices.Equal(got.Value, wantBytes) {
		t.Errorf("compressed flags seen by the server %v, want %v", got.Value, wantBytes)
	}

	// Without an encoding, turning compression on changes nothing.
	up, err = c.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetMessageCompression(up.Context(), true); err != nil {
		t.Fatal(err)
	}
	if err := up.Send(wrapperspb.Bytes(compressible)); err != nil {
		t.Fatal(err)
	}
	if got, err = up.CloseAndRecv(); err != nil || !slices.Equal(got.Value, []byte{0}) {
		t.Errorf("without an encoding: flags %v, %v; want [0]", got.GetValue(), err)
	}
}

func TestServerStreamMessageCompression(t *testing.T) {
	// The server sends one response per request byte, compressed when the
	// byte is 1, after choosing gzip.
	svc := &testService{download: func(in *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
		if err := SetSendCompressor(s.Context(), "gzip"); err != nil {
			return err
		}
		for _, b := range in.Value {
			if err := SetMessageCompression(s.Context(), b == 1); err != nil {
				return err
			}
			if err := s.Send(wrapperspb.Bytes(compressible)); err != nil {
				return err
			}
		}
		// The encoding is fixed once a message was sent.
		if err := SetSendCompressor(s.Context(), "identity"); err == nil {
			return status.Error(codes.Internal, "SetSendCompressor after a message succeeded")
		}
		return nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx := ctxWait(t)

	pattern := []byte{1, 0, 1, 1, 0}
	var last bool
	down, err := c.Download(ctx, wrapperspb.Bytes(pattern), ResponseCompressed(&last))
	if err != nil {
		t.Fatal(err)
	}
	if RecvCompressed(down.Context()) {
		t.Error("RecvCompressed before any message = true")
	}
	for i, want := range pattern {
		if _, err := down.Recv(); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if got := RecvCompressed(down.Context()); got != (want == 1) {
			t.Errorf("response %d: RecvCompressed = %v, want %v", i, got, want == 1)
		}
		if last != (want == 1) {
			t.Errorf("response %d: ResponseCompressed = %v, want %v", i, last, want == 1)
		}
	}
	if _, err := down.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
}

func TestSetSendCompressorErrors(t *testing.T) {
	errs := make(chan error, 4)
	var supported []string
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		var err error
		supported, err = ClientSupportedCompressors(ctx)
		if err != nil {
			return nil, err
		}
		errs <- SetSendCompressor(ctx, "no-such-compressor")
		if err := SendHeader(ctx, nil); err != nil {
			return nil, err
		}
		errs <- SetSendCompressor(ctx, "gzip")
		return in, nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(supported, []string{"gzip"}) {
		t.Errorf("ClientSupportedCompressors = %q, want [gzip]", supported)
	}
	wantCode(t, <-errs, codes.Internal) // not registered
	wantCode(t, <-errs, codes.Internal) // after the headers

	// Outside a handler or a stream.
	bg := context.Background()
	wantCode(t, SetSendCompressor(bg, "gzip"), codes.Internal)
	wantCode(t, SetMessageCompression(bg, false), codes.Internal)
	if _, err := ClientSupportedCompressors(bg); err == nil {
		t.Error("ClientSupportedCompressors outside a handler succeeded")
	}
	if RecvCompressed(bg) {
		t.Error("RecvCompressed outside a stream = true")
	}
}
