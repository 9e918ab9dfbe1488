package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func bytesMsg(b []byte) *wrapperspb.BytesValue { return wrapperspb.Bytes(b) }

// randomBytes returns n incompressible bytes.
func randomBytes(n int) []byte {
	rnd := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

func TestPrefix(t *testing.T) {
	var p [PrefixLen]byte
	EncodePrefix(&p, false, 0x01020304)
	if p != [5]byte{0, 1, 2, 3, 4} {
		t.Errorf("EncodePrefix = %v", p)
	}
	if math.MaxInt > MaxMessageLen { // 64-bit int
		maxLen := uint64(MaxMessageLen) // a variable, so 32-bit builds compile
		EncodePrefix(&p, true, int(maxLen))
		if p != [5]byte{1, 0xff, 0xff, 0xff, 0xff} {
			t.Errorf("EncodePrefix(max) = %v", p)
		}
	}
	b := AppendPrefix([]byte("ab"), true, 7)
	if !bytes.Equal(b, []byte{'a', 'b', 1, 0, 0, 0, 7}) {
		t.Errorf("AppendPrefix = %v", b)
	}
	c, n, err := ParsePrefix(b[2:])
	if !c || n != 7 || err != nil {
		t.Errorf("ParsePrefix = %v, %d, %v", c, n, err)
	}
	for _, bad := range [][]byte{{2, 0, 0, 0, 0}, {0xff, 0, 0, 0, 1}} {
		_, _, err := ParsePrefix(bad)
		if !errors.Is(err, ErrInvalidFlag) || status.Code(err) != codes.Internal {
			t.Errorf("ParsePrefix(%v) error = %v, want INTERNAL ErrInvalidFlag", bad, err)
		}
	}
	if _, _, err := ParsePrefix([]byte{0, 0}); !errors.Is(err, io.ErrUnexpectedEOF) || status.Code(err) != codes.Internal {
		t.Errorf("ParsePrefix(short) error = %v", err)
	}
	tooLong := uint64(MaxMessageLen) + 1
	for _, n := range []int{-1, int(tooLong)} {
		if n >= 0 && uint64(n) != tooLong {
			continue // 32-bit int: no such length
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("EncodePrefix(%d) did not panic", n)
				}
			}()
			EncodePrefix(&p, false, n)
		}()
	}
}

// decodeFrame checks the prefix of an encoded message and returns the
// flag.
func decodeFrame(t *testing.T, prefix, data []byte) bool {
	t.Helper()
	if len(prefix) != PrefixLen {
		t.Fatalf("prefix of %d bytes", len(prefix))
	}
	c, n, err := ParsePrefix(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != len(data) {
		t.Fatalf("prefix says %d bytes, data has %d", n, len(data))
	}
	return c
}

func TestEncode(t *testing.T) {
	gz := GetCompressor(GzipName)
	for name, payload := range testPayloads() {
		for _, comp := range []Compressor{nil, gz} {
			in := bytesMsg(payload)
			prefix, data, release, err := Encode(ProtoCodec{}, comp, in, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			compressed := decodeFrame(t, prefix, data)
			wantCompressed := comp != nil && len(payload) > 0
			if compressed != wantCompressed {
				t.Errorf("%s: compressed flag %v, want %v", name, compressed, wantCompressed)
			}
			plain := data
			if compressed {
				plain = gunzipBytes(t, gz, bytes.NewReader(data))
			}
			var out wrapperspb.BytesValue
			if err := Decode(ProtoCodec{}, plain, &out); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in, &out) {
				t.Errorf("%s: decoded message differs", name)
			}
			release()
		}
	}
}

func TestEncodeOtherCodecs(t *testing.T) {
	for _, c := range []Codec{fakeCodec{name: "fake"}, appendCodec{fakeCodec{name: "append"}}} {
		for _, s := range []string{"", "short", strings.Repeat("long ", 1000)} {
			prefix, data, release, err := Encode(c, nil, &s, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			decodeFrame(t, prefix, data)
			if string(data) != s {
				t.Errorf("%s: data %q, want %q", c.Name(), data, s)
			}
			release()
		}
		_, _, _, err := Encode(c, nil, 42, 1<<20)
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "int") {
			t.Errorf("%s: Encode of a bad value: %v, want INTERNAL", c.Name(), err)
		}
	}
}

func TestEncodeNotProto(t *testing.T) {
	prefix, data, release, err := Encode(ProtoCodec{}, nil, "not a message", 1<<20)
	if prefix != nil || data != nil || release != nil {
		t.Error("results besides the error are not nil")
	}
	if status.Code(err) != codes.Internal || !errors.Is(err, ErrNotProtoMessage) {
		t.Fatalf("Encode of a string: %v, want INTERNAL wrapping ErrNotProtoMessage", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.GRPCStatus().Code() != codes.Internal {
		t.Errorf("errors.As(*Error) failed for %v", err)
	}
}

func TestEncodeTooLarge(t *testing.T) {
	// The limit is on the bytes sent: the marshalled size, or the
	// compressed size.
	text := bytesMsg(bytes.Repeat([]byte("a"), 1<<20))
	random := bytesMsg(randomBytes(64 << 10))
	size := proto.Size(random)
	gz := GetCompressor(GzipName)
	for _, tc := range []struct {
		name    string
		msg     proto.Message
		comp    Compressor
		maxSend int
		ok      bool
	}{
		{"at the limit", random, nil, size, true},
		{"one over", random, nil, size - 1, false},
		{"zero limit", random, nil, 0, false},
		{"negative limit", random, nil, -5, false},
		{"empty at zero limit", bytesMsg(nil), gz, 0, true},
		{"compresses under the limit", text, gz, 64 << 10, true},
		{"too large after compression", random, gz, size, false},
		{"uncompressed over", text, nil, 64 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes := watchBuffers(t)
			_, data, release, err := Encode(ProtoCodec{}, tc.comp, tc.msg, tc.maxSend)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if len(data) > max(tc.maxSend, 0) {
					t.Errorf("sent %d bytes over a limit of %d", len(data), tc.maxSend)
				}
				release()
				return
			}
			if status.Code(err) != codes.ResourceExhausted || !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("error %v, want RESOURCE_EXHAUSTED wrapping ErrMessageTooLarge", err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "trying to send message larger than max (") {
				t.Errorf("message %q", msg)
			}
			if tc.comp == nil && len(*sizes) != 0 {
				t.Errorf("buffers %v allocated for a message known to be too large", *sizes)
			}
		})
	}
}

// failingCompressor fails where it is told to.
type failingCompressor struct {
	fakeCompressor
	failCompress, failWrite, failClose bool
}

var errCompressorBroken = errors.New("compressor broken")

type failingWriter struct{ failWrite, failClose bool }

func (w failingWriter) Write(p []byte) (int, error) {
	if w.failWrite {
		return 0, errCompressorBroken
	}
	return len(p), nil
}

func (w failingWriter) Close() error {
	if w.failClose {
		return errCompressorBroken
	}
	return nil
}

func (c failingCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if c.failCompress {
		return nil, errCompressorBroken
	}
	return failingWriter{c.failWrite, c.failClose}, nil
}

func TestEncodeCompressorErrors(t *testing.T) {
	for _, c := range []failingCompressor{{failCompress: true}, {failWrite: true}, {failClose: true}} {
		_, _, _, err := Encode(ProtoCodec{}, c, wrapperspb.String("x"), 1<<20)
		if status.Code(err) != codes.Internal || !errors.Is(err, errCompressorBroken) {
			t.Errorf("%+v: error %v, want INTERNAL wrapping the compressor's error", c, err)
		}
	}
}

func TestReleaseTwicePanics(t *testing.T) {
	_, _, release, err := Encode(ProtoCodec{}, nil, wrapperspb.String("x"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	release()
	defer func() {
		if recover() == nil {
			t.Error("a second release did not panic")
		}
	}()
	release()
}

func TestEncodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	msg := wrapperspb.String("hello, h2rpc")
	allocs := testing.AllocsPerRun(1000, func() {
		_, _, release, err := Encode(ProtoCodec{}, nil, msg, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
	if allocs > 0 {
		t.Errorf("Encode of a small message: %.1f allocs, want 0", allocs)
	}
}

func TestDecodeErrors(t *testing.T) {
	var m wrapperspb.StringValue
	err := Decode(ProtoCodec{}, []byte{0x0a, 0x10, 'a'}, &m) // field 1, 16 bytes, only 1 present
	if status.Code(err) != codes.Internal {
		t.Errorf("Decode of a truncated message: %v, want INTERNAL", err)
	}
	if errors.Is(err, io.EOF) {
		t.Error("a decode error looks like io.EOF")
	}
	err = Decode(fakeCodec{}, nil, 42)
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "failed to unmarshal") {
		t.Errorf("Decode into a bad type: %v", err)
	}
}

// cachedCodec returns the same encoding, which it keeps, for every
// message: a pass-through proxy or a cache of encoded replies. Its
// capacity is a pool size class, the case that used to be pooled.
type cachedCodec struct{ enc []byte }

func (c cachedCodec) Name() string                       { return "cached" }
func (c cachedCodec) Marshal(any) ([]byte, error)        { return c.enc, nil }
func (c cachedCodec) Unmarshal(data []byte, v any) error { return nil }

// cachedAppendCodec ignores the buffer MarshalAppend is given and
// returns its own cached encoding.
type cachedAppendCodec struct{ cachedCodec }

func (c cachedAppendCodec) MarshalAppend(_ []byte, _ any) ([]byte, error) { return c.enc, nil }

func TestEncodeNeverPoolsCodecOwnedMemory(t *testing.T) {
	for _, c := range []Codec{cachedCodec{}, cachedAppendCodec{}} {
		t.Run(fmt.Sprintf("%T", c), func(t *testing.T) {
			enc := make([]byte, 100, minPooledSize)
			for i := range enc {
				enc[i] = byte(i)
			}
			want := bytes.Clone(enc)
			switch cc := c.(type) {
			case cachedCodec:
				cc.enc = enc
				c = cc
			case cachedAppendCodec:
				cc.enc = enc
				c = cc
			}
			other := bytesMsg(bytes.Repeat([]byte{0xee}, 600)) // a 1 KiB class buffer
			for i := range 100 {
				prefix, data, release, err := Encode(c, nil, nil, math.MaxInt32)
				if err != nil {
					t.Fatal(err)
				}
				if compressed := decodeFrame(t, prefix, data); compressed || !bytes.Equal(data, want) {
					t.Fatalf("message %d arrived as %x, want %x", i, data, want)
				}
				release()
				// Later messages take buffers from the pool and write them.
				for range 2 {
					_, _, rel, err := Encode(ProtoCodec{}, nil, other, math.MaxInt32)
					if err != nil {
						t.Fatal(err)
					}
					rel()
				}
				if !bytes.Equal(enc, want) {
					t.Fatalf("after %d messages the codec's cached encoding was overwritten: %x", i+1, enc[:16])
				}
			}
		})
	}
}
