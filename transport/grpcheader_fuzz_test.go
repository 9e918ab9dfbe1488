package transport

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http2/hpack"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

func FuzzDecodeTimeout(f *testing.F) {
	for _, s := range []string{"1n", "99999999H", "0S", "12345678m", "123456789u", "-1S", "1x", "", "1", "00000000M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeTimeout(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("decodeTimeout(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("decodeTimeout(%q) = %v < 0", s, d)
		}
		enc := encodeTimeout(d)
		if len(enc) < 2 || len(enc) > 9 {
			t.Fatalf("encodeTimeout(%v) = %q: bad length", d, enc)
		}
		d2, err := decodeTimeout(enc)
		if err != nil || d2 != d {
			t.Fatalf("decode(encode(decode(%q))) = %v, %v via %q; want %v", s, d2, err, enc, d)
		}
	})
}

func FuzzEncodeTimeout(f *testing.F) {
	for _, d := range []int64{0, 1, -5, 99999999, 100000000, int64(time.Hour), 1<<63 - 1} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		enc := encodeTimeout(d)
		got, err := decodeTimeout(enc)
		if err != nil {
			t.Fatalf("encodeTimeout(%v) = %q does not decode: %v", d, enc, err)
		}
		if d <= 0 {
			if got != 0 {
				t.Fatalf("encodeTimeout(%v) = %q decodes to %v", d, enc, got)
			}
			return
		}
		// Never shorter, and longer by less than one part in 10^5.
		if got < d || float64(got-d) >= float64(d)/1e5 {
			t.Fatalf("decode(encode(%v)) = %v via %q", d, got, enc)
		}
	})
}

func FuzzGrpcMessage(f *testing.F) {
	for _, s := range []string{"", "hello", "100%", "%41", "%zz", "日本語", "a\xffb", "%E6%97", "\x00\n\t", "%%%", "%4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeGrpcMessage(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("encodeGrpcMessage(%q) = %q has byte %#x", s, enc, enc[i])
			}
		}
		dec := decodeGrpcMessage(enc)
		if utf8.ValidString(s) {
			if dec != s {
				t.Fatalf("decode(encode(%q)) = %q", s, dec)
			}
		} else if dec != validUTF8PerByte(s) {
			t.Fatalf("decode(encode(%q)) = %q, want %q", s, dec, validUTF8PerByte(s))
		}
		// Decoding arbitrary input never fails and always gives UTF-8.
		if d := decodeGrpcMessage(s); !utf8.ValidString(d) {
			t.Fatalf("decodeGrpcMessage(%q) = %q is not UTF-8", s, d)
		}
	})
}

func FuzzBinHeader(f *testing.F) {
	for _, s := range []string{"", "YQ", "YQ==", "AAH/", "!!", "Y", "YQ=", "a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Encoding round-trips any bytes.
		enc := encodeBinHeader([]byte(s))
		if strings.ContainsAny(enc, "=\r\n") {
			t.Fatalf("encodeBinHeader(%q) = %q", s, enc)
		}
		b, err := decodeBinHeader(enc)
		if err != nil || string(b) != s {
			t.Fatalf("decode(encode(%q)) = %q, %v", s, b, err)
		}
		// Decoding arbitrary input never panics; what it accepts
		// re-encodes to a value that decodes to the same bytes.
		b, err = decodeBinHeader(s)
		if err != nil {
			return
		}
		b2, err := decodeBinHeader(encodeBinHeader(b))
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("decodeBinHeader(%q) = %q does not round-trip: %q, %v", s, b, b2, err)
		}
	})
}

func FuzzStatusDetails(f *testing.F) {
	good, _ := proto.Marshal(&spb.Status{Code: 5, Message: "m", Details: []*anypb.Any{{TypeUrl: "type.googleapis.com/x.Y", Value: []byte{1}}}})
	f.Add(good, "5", "m")
	f.Add([]byte{}, "0", "")
	f.Add([]byte{0xff, 0xff}, "13", "%zz")
	f.Add([]byte{0x08, 0x05}, "5", "")
	f.Fuzz(func(t *testing.T, details []byte, code, msg string) {
		for _, v := range []string{encodeBinHeader(details), string(details)} {
			fs := []hpack.HeaderField{
				{Name: "grpc-status", Value: code},
				{Name: "grpc-message", Value: msg},
				{Name: "grpc-status-details-bin", Value: v},
			}
			st := statusFromHeaders(fs)
			if st == nil {
				t.Fatal("statusFromHeaders returned nil")
			}
			_ = st.Details()
			if !utf8.ValidString(st.Message()) {
				t.Fatalf("message %q is not UTF-8", st.Message())
			}
			// Whatever came in, the status can be sent on unchanged (a
			// proxy relaying it), and reads back the same.
			out, err := appendStatus(nil, st)
			if err != nil {
				t.Fatalf("appendStatus(%v) = %v", st, err)
			}
			back := statusFromHeaders(out)
			if st.Code() == codes.OK {
				// An OK status is sent without details.
				if back.Code() != codes.OK || back.Message() != st.Message() {
					t.Fatalf("OK status %v came back as %v", st, back)
				}
				continue
			}
			if !proto.Equal(back.Proto(), st.Proto()) {
				t.Fatalf("status %v came back as %v", st.Proto(), back.Proto())
			}
		}
	})
}
