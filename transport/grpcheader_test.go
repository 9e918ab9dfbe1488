package transport

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestEncodeTimeout(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0n"},
		{0, "0n"},
		{1, "1n"},
		{99999999, "99999999n"},
		{100000000, "100000u"},
		{100000001, "100001u"}, // rounded up
		{time.Second, "1000000u"},
		{99999999 * time.Microsecond, "99999999u"},
		{100 * time.Second, "100000m"},
		{100*time.Second + 1, "100001m"},
		{99999999 * time.Millisecond, "99999999m"},
		{100000 * time.Second, "100000S"},
		{99999999 * time.Second, "99999999S"},
		{100000000 * time.Second, "1666667M"},
		{99999999 * time.Minute, "99999999M"},
		{100000000 * time.Minute, "1666667H"},
		{math.MaxInt64, "2562048H"},
	}
	for _, tt := range tests {
		if got := encodeTimeout(tt.d); got != tt.want {
			t.Errorf("encodeTimeout(%d) = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

func TestDecodeTimeout(t *testing.T) {
	valid := []struct {
		s    string
		want time.Duration
	}{
		{"0n", 0},
		{"1n", 1},
		{"00000001n", 1},
		{"99999999n", 99999999},
		{"5u", 5 * time.Microsecond},
		{"7m", 7 * time.Millisecond},
		{"30S", 30 * time.Second},
		{"2M", 2 * time.Minute},
		{"1H", time.Hour},
		{"2562047H", 2562047 * time.Hour},
		{"2562048H", math.MaxInt64}, // saturated
		{"99999999H", math.MaxInt64},
		{"99999999M", 99999999 * time.Minute},
	}
	for _, tt := range valid {
		got, err := decodeTimeout(tt.s)
		if err != nil || got != tt.want {
			t.Errorf("decodeTimeout(%q) = %v, %v; want %v", tt.s, got, err, tt.want)
		}
	}
	invalid := []string{
		"", "n", "1", "12", "H", "123456789n", "999999999H", "-1S", "+1S", " 1S", "1S ", "1 S",
		"1s", "1h", "1x", "1.5S", "0x1S", "1SS", "１S", "1\x00S", strings.Repeat("9", 100) + "S",
	}
	for _, s := range invalid {
		d, err := decodeTimeout(s)
		if !errors.Is(err, errBadTimeout) {
			t.Errorf("decodeTimeout(%q) = %v, %v; want error wrapping errBadTimeout", s, d, err)
		}
	}
	// Errors quote only a bounded prefix of what the peer sent.
	_, err := decodeTimeout(strings.Repeat("7", 10000))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a long value is %d bytes", len(err.Error()))
	}
}

func TestTimeoutRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{1, 999, 123456789, time.Second + 1, 3*time.Hour + 7, 1<<62 + 12345, math.MaxInt64} {
		got, err := decodeTimeout(encodeTimeout(d))
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		// Never shorter, and longer by less than one part in 10^5.
		if got < d || float64(got-d) >= float64(d)/1e5 {
			t.Errorf("decode(encode(%d)) = %d", int64(d), int64(got))
		}
	}
}

func TestContentSubtype(t *testing.T) {
	tests := []struct {
		ct      string
		sub     string
		wantOK  bool
		comment string
	}{
		{"application/grpc", "", true, ""},
		{"application/grpc+proto", "proto", true, ""},
		{"application/grpc+json", "json", true, ""},
		{"application/grpc;charset=utf-8", "", true, "parameters"},
		{"application/grpc+proto; charset=utf-8", "proto", true, ""},
		{"application/grpc ; x=y", "", true, "OWS before ;"},
		{"Application/GRPC+Proto", "proto", true, "case-insensitive"},
		{"APPLICATION/GRPC", "", true, ""},
		{"application/grpc+", "", true, "empty subtype, as grpc-go"},
		{"application/grpc+my-codec.v1", "my-codec.v1", true, ""},
		{"", "", false, ""},
		{"application/json", "", false, ""},
		{"application/grpc-web", "", false, ""},
		{"application/grpcx", "", false, ""},
		{"application/grp", "", false, ""},
		{"application/grpc+pro to", "", false, "space in subtype"},
		{"application/grpc+a/b", "", false, "not a token"},
		{"text/plain", "", false, ""},
	}
	for _, tt := range tests {
		sub, ok := contentSubtype(tt.ct)
		if sub != tt.sub || ok != tt.wantOK {
			t.Errorf("contentSubtype(%q) = %q, %v; want %q, %v %s", tt.ct, sub, ok, tt.sub, tt.wantOK, tt.comment)
		}
	}
}

func TestContentTypeFor(t *testing.T) {
	for sub, want := range map[string]string{
		"":      "application/grpc",
		"proto": "application/grpc+proto",
		"json":  "application/grpc+json",
	} {
		got := contentTypeFor(sub)
		if got != want {
			t.Errorf("contentTypeFor(%q) = %q, want %q", sub, got, want)
		}
		if back, ok := contentSubtype(got); !ok || back != sub {
			t.Errorf("contentSubtype(contentTypeFor(%q)) = %q, %v", sub, back, ok)
		}
	}
}

func TestEncodeGrpcMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Hello", "Hello"},
		{"printable ~!@#$^&*()_+{}|:\"<>?`-=[]\\;',./", "printable ~!@#$^&*()_+{}|:\"<>?`-=[]\\;',./"},
		{"100%", "100%25"},
		{"%", "%25"},
		{"a\nb\tc\r", "a%0Ab%09c%0D"},
		{"\x00\x7f", "%00%7F"},
		{"héllo", "h%C3%A9llo"},
		{"日本", "%E6%97%A5%E6%9C%AC"},
		{"😀", "%F0%9F%98%80"},
		{"a\xffb", "a%EF%BF%BDb"},          // stray byte -> U+FFFD
		{"\xe6\x97", "%EF%BF%BD%EF%BF%BD"}, // truncated sequence, one per byte
	}
	for _, tt := range tests {
		if got := encodeGrpcMessage(tt.in); got != tt.want {
			t.Errorf("encodeGrpcMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeGrpcMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Hello", "Hello"},
		{"100%25", "100%"},
		{"a%0Ab", "a\nb"},
		{"h%C3%A9llo", "héllo"},
		{"h%c3%a9llo", "héllo"}, // lower-case hex accepted
		{"%E6%97%A5%E6%9C%AC", "日本"},
		{"%", "%"},
		{"%4", "%4"},
		{"a%", "a%"},
		{"%zz", "%zz"},
		{"%4g", "%4g"},
		{"%%41", "%A"},
		{"%41%", "A%"},
		{"%2", "%2"},
		{"héllo", "héllo"},                  // raw UTF-8 passes through
		{"a\xffb", "a\uFFFDb"},              // invalid UTF-8 made valid
		{"%FF%FE", "\uFFFD\uFFFD"},          // encoded invalid UTF-8 too
		{"%E6%97", "\uFFFD\uFFFD"},          // truncated sequence
		{"%E6%97%A5%FF", "日\uFFFD"},         // mixed
		{"%EF%BF%BD", "\uFFFD"},             // a real U+FFFD stays one
		{"x%C3%A9\xc3\xa9", "xéé"},          // raw and encoded mixed
		{"%C0%80", "\uFFFD\uFFFD"},          // overlong encoding of NUL
		{"%ED%A0%80", "\uFFFD\uFFFD\uFFFD"}, // surrogate
	}
	for _, tt := range tests {
		if got := decodeGrpcMessage(tt.in); got != tt.want {
			t.Errorf("decodeGrpcMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGrpcMessageRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "100% sure", "tab\there", "ünïcödé ✓", "\x00\x01\x02", strings.Repeat("日本語%", 100)} {
		enc := encodeGrpcMessage(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("encodeGrpcMessage(%q) = %q has byte %#x", s, enc, enc[i])
			}
		}
		if got := decodeGrpcMessage(enc); got != s {
			t.Errorf("decode(encode(%q)) = %q", s, got)
		}
	}
}

func TestGrpcMessageAllocs(t *testing.T) {
	msg := "a perfectly ordinary status message"
	if n := testing.AllocsPerRun(100, func() { _ = encodeGrpcMessage(msg) }); n != 0 {
		t.Errorf("encodeGrpcMessage fast path: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = decodeGrpcMessage(msg) }); n != 0 {
		t.Errorf("decodeGrpcMessage fast path: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeTimeout("12345678m") }); n != 0 {
		t.Errorf("decodeTimeout: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = contentSubtype("application/grpc+proto") }); n != 0 {
		t.Errorf("contentSubtype: %v allocs", n)
	}
}

func TestBinHeader(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{0}, "AA"},
		{[]byte("a"), "YQ"},
		{[]byte("ab"), "YWI"},
		{[]byte("abc"), "YWJj"},
		{[]byte{0xfb, 0xff, 0xbf}, "+/+/"},
	}
	for _, tt := range tests {
		enc := encodeBinHeader(tt.in)
		if enc != tt.want {
			t.Errorf("encodeBinHeader(%q) = %q, want %q", tt.in, enc, tt.want)
		}
		for _, s := range []string{enc, enc + strings.Repeat("=", (4-len(enc)%4)%4)} {
			got, err := decodeBinHeader(s)
			if err != nil || string(got) != string(tt.in) {
				t.Errorf("decodeBinHeader(%q) = %q, %v; want %q", s, got, err, tt.in)
			}
		}
	}
	for _, bad := range []string{"Y", "YQ=", "YQ===", "Y=Q", "YQ\n==", "YQ\r", "YQ!", "YW I", "-_", "YQ==YQ", "="} {
		if b, err := decodeBinHeader(bad); !errors.Is(err, errBadBinHeader) {
			t.Errorf("decodeBinHeader(%q) = %q, %v; want errBadBinHeader", bad, b, err)
		}
	}
}

func TestIsReservedHeader(t *testing.T) {
	reserved := []string{
		":path", ":authority", ":status", ":method", ":scheme",
		"content-type", "user-agent", "te",
		"grpc-message", "grpc-status", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
		"grpc-status-details-bin",
		"grpc-tags-bin", "grpc-trace-bin", "grpc-anything-new",
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
	}
	for _, k := range reserved {
		if !isReservedHeader(k) {
			t.Errorf("isReservedHeader(%q) = false", k)
		}
	}
	for _, k := range []string{"", "authorization", "x-grpc-thing", "grpc", "my-key-bin", "content-length", "trailer", "host", "grpcstatus",
		"grpc-previous-rpc-attempts", "grpc-retry-pushback-ms"} {
		if isReservedHeader(k) {
			t.Errorf("isReservedHeader(%q) = true", k)
		}
	}
}

func TestValidMetadataKey(t *testing.T) {
	for _, k := range []string{"a", "key", "x-my_key.v2", "0", "k-bin", "grpc-status"} {
		if !validMetadataKey(k) {
			t.Errorf("validMetadataKey(%q) = false", k)
		}
	}
	for _, k := range []string{"", "Key", "a b", "a:b", ":path", "a/b", "é", "a\x00", "a\tb", "key!"} {
		if validMetadataKey(k) {
			t.Errorf("validMetadataKey(%q) = true", k)
		}
	}
}

// sortedFields returns fields sorted by name then value, for comparing
// output built from a map.
func sortedFields(fs []hpack.HeaderField) []hpack.HeaderField {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b hpack.HeaderField) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

func TestAppendMetadata(t *testing.T) {
	md := metadata.MD{
		"key":                     {"v1", "v2"},
		"Upper":                   {"u"},
		"data-bin":                {"\x00\x01\xff", ""},
		"grpc-status":             {"0"},
		"grpc-custom":             {"x"},
		":path":                   {"/evil"},
		"content-type":            {"text/plain"},
		"user-agent":              {"ua"},
		"te":                      {"gzip"},
		"connection":              {"close"},
		"bad key":                 {"dropped"},
		"ascii":                   {"ok", "bad\nvalue", "bäd"},
		"empty":                   {""},
		"grpc-status-details-bin": {"x"},
	}
	prefix := []hpack.HeaderField{{Name: ":status", Value: "200"}}
	got := appendMetadata(prefix, md)
	if got[0] != prefix[0] {
		t.Fatal("appendMetadata lost the fields it appends to")
	}
	want := []hpack.HeaderField{
		{Name: "ascii", Value: "ok"},
		{Name: "data-bin", Value: ""},
		{Name: "data-bin", Value: "AAH/"},
		{Name: "empty", Value: ""},
		{Name: "key", Value: "v1"},
		{Name: "key", Value: "v2"},
		{Name: "upper", Value: "u"},
	}
	if g := sortedFields(got[1:]); !reflect.DeepEqual(g, want) {
		t.Errorf("appendMetadata =\n%v\nwant\n%v", g, want)
	}
	// Order of the values of one key is kept.
	got = appendMetadata(nil, metadata.MD{"k": {"3", "1", "2"}})
	if len(got) != 3 || got[0].Value != "3" || got[1].Value != "1" || got[2].Value != "2" {
		t.Errorf("value order = %v", got)
	}
	if got := appendMetadata(nil, nil); len(got) != 0 {
		t.Errorf("appendMetadata(nil) = %v", got)
	}
}

func TestValidateMetadata(t *testing.T) {
	good := []metadata.MD{
		nil,
		{"key": {"v"}, "bin-bin": {"\x00\xff"}, "content-type": {"x"}, "user-agent": {"ua"}, "e": {""}},
		// A server's incoming metadata, forwarded by a proxy.
		{":authority": {"backend:443"}, "content-type": {"application/grpc"}, "user-agent": {"ua"}, "k": {"v"}},
	}
	for _, md := range good {
		if err := validateMetadata(md); err != nil {
			t.Errorf("validateMetadata(%v) = %v", md, err)
		}
	}
	bad := []metadata.MD{
		{"bad key": {"v"}},
		{"": {"v"}},
		{"k": {"ok", "new\nline"}},
		{"k": {"bäd"}},
		{"k": {"\x7f"}},
		{"Upper": {"x"}},
		{":path": {"x"}},
		{"grpc-whatever": {"x"}},
		{"grpc-status": {"0"}},
		{"name": {"José"}},
	}
	for _, md := range bad {
		if err := validateMetadata(md); !errors.Is(err, errBadMetadata) {
			t.Errorf("validateMetadata(%q) = %v, want errBadMetadata", md, err)
		}
	}
}

func TestDecodeMetadataField(t *testing.T) {
	md := metadata.MD{}
	steps := []struct{ name, value string }{
		{"key", "v1"},
		{"key", "v2, with comma"},
		{"data-bin", "AAH/"},
		{"data-bin", "AAH/AA=="},
		{"multi-bin", "YQ,YWI=, YWJj ,"},
		{"empty-bin", ""},
	}
	for _, s := range steps {
		if err := checkMetadataField(s.name, s.value); err != nil {
			t.Fatalf("checkMetadataField(%q, %q) = %v", s.name, s.value, err)
		}
		if err := decodeMetadataField(md, s.name, s.value); err != nil {
			t.Fatalf("decodeMetadataField(%q, %q) = %v", s.name, s.value, err)
		}
	}
	want := metadata.MD{
		"key":       {"v1", "v2, with comma"},
		"data-bin":  {"\x00\x01\xff", "\x00\x01\xff\x00"},
		"multi-bin": {"a", "ab", "abc", ""},
		"empty-bin": {""},
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("md = %q\nwant %q", md, want)
	}
	for _, bad := range []string{"!!", "YQ,!!", "Y", "YQ\n", " YQ"} {
		if err := checkMetadataField("x-bin", bad); !errors.Is(err, errBadBinHeader) {
			t.Errorf("checkMetadataField(x-bin, %q) = %v, want errBadBinHeader", bad, err)
		}
		md := metadata.MD{}
		if err := decodeMetadataField(md, "x-bin", bad); !errors.Is(err, errBadBinHeader) {
			t.Errorf("decodeMetadataField(x-bin, %q) = %v, want errBadBinHeader", bad, err)
		}
		if len(md) != 0 {
			t.Errorf("failed decode changed md: %q", md)
		}
	}
}

// fieldsToMap keeps the last value of each field name.
func fieldsToMap(fs []hpack.HeaderField) map[string]string {
	m := map[string]string{}
	for _, f := range fs {
		m[f.Name] = f.Value
	}
	return m
}

func TestAppendStatus(t *testing.T) {
	withDetails, err := status.New(codes.ResourceExhausted, "quota 100%").WithDetails(&errdetails.ErrorInfo{Reason: "QUOTA"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		st   *status.Status
		want map[string]string // grpc-status-details-bin checked apart
		det  bool
	}{
		{"nil", nil, map[string]string{"grpc-status": "0"}, false},
		{"ok", status.New(codes.OK, ""), map[string]string{"grpc-status": "0"}, false},
		{"ok with message", status.New(codes.OK, "fine"), map[string]string{"grpc-status": "0", "grpc-message": "fine"}, false},
		{"error", status.New(codes.NotFound, "no such user: bøb"), map[string]string{"grpc-status": "5", "grpc-message": "no such user: b%C3%B8b"}, false},
		{"big code", status.New(codes.Code(1234), ""), map[string]string{"grpc-status": "1234"}, false},
		{"details", withDetails, map[string]string{"grpc-status": "8", "grpc-message": "quota 100%25"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := appendStatus([]hpack.HeaderField{{Name: ":status", Value: "200"}}, tt.st)
			if err != nil {
				t.Fatal(err)
			}
			m := fieldsToMap(fs)
			det, hasDet := m["grpc-status-details-bin"]
			delete(m, "grpc-status-details-bin")
			delete(m, ":status")
			if !reflect.DeepEqual(m, tt.want) || hasDet != tt.det {
				t.Errorf("fields = %v (details %v), want %v (details %v)", m, hasDet, tt.want, tt.det)
			}
			if hasDet {
				b, err := decodeBinHeader(det)
				if err != nil {
					t.Fatal(err)
				}
				p := &spb.Status{}
				if err := proto.Unmarshal(b, p); err != nil || !proto.Equal(p, tt.st.Proto()) {
					t.Errorf("details = %v, %v; want %v", p, err, tt.st.Proto())
				}
			}
			// And back.
			got := statusFromHeaders(fs)
			if got.Code() != tt.st.Code() || got.Message() != tt.st.Message() || tt.st != nil && !proto.Equal(got.Proto(), tt.st.Proto()) {
				t.Errorf("statusFromHeaders = %v, want %v", got, tt.st)
			}
		})
	}

	// Details that cannot be serialized (a message that is not UTF-8 is
	// not a valid proto3 string): grpc-status and grpc-message still come.
	bad, err := status.New(codes.Internal, "bad \xff utf-8").WithDetails(&errdetails.ErrorInfo{Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := appendStatus(nil, bad)
	if err == nil {
		t.Fatal("appendStatus with unserializable details succeeded")
	}
	m := fieldsToMap(fs)
	if m["grpc-status"] != "13" || m["grpc-message"] != "bad %EF%BF%BD utf-8" || m["grpc-status-details-bin"] != "" {
		t.Errorf("fields after error = %v", m)
	}
}

func TestAppendStatusAllocs(t *testing.T) {
	st := status.New(codes.NotFound, "plain message")
	buf := make([]hpack.HeaderField, 0, 4)
	if n := testing.AllocsPerRun(100, func() { _, _ = appendStatus(buf[:0], st) }); n != 0 {
		t.Errorf("appendStatus without details: %v allocs", n)
	}
}

// detailsValue returns a grpc-status-details-bin value for p.
func detailsValue(t *testing.T, p *spb.Status) string {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return encodeBinHeader(b)
}

func TestStatusFromHeaders(t *testing.T) {
	info, err := status.New(codes.Aborted, "from details").WithDetails(&errdetails.ErrorInfo{Reason: "R"})
	if err != nil {
		t.Fatal(err)
	}
	good := detailsValue(t, info.Proto())
	hf := func(kv ...string) []hpack.HeaderField {
		var fs []hpack.HeaderField
		for i := 0; i < len(kv); i += 2 {
			fs = append(fs, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return fs
	}
	tests := []struct {
		name     string
		fields   []hpack.HeaderField
		code     codes.Code
		msg      string // exact, or a substring when msgPart is set
		msgPart  bool
		nDetails int
	}{
		{"ok", hf("grpc-status", "0"), codes.OK, "", false, 0},
		{"code and message", hf("grpc-status", "14", "grpc-message", "try%20later"), codes.Unavailable, "try later", false, 0},
		{"unknown code kept", hf("grpc-status", "99"), codes.Code(99), "", false, 0},
		{"max int32", hf("grpc-status", "2147483647"), codes.Code(math.MaxInt32), "", false, 0},
		{"last grpc-status wins", hf("grpc-status", "1", "grpc-status", "2"), codes.Unknown, "", false, 0},
		{"details win", hf("grpc-status", "10", "grpc-message", "from header", "grpc-status-details-bin", good), codes.Aborted, "from details", false, 1},
		{"details padded", hf("grpc-status", "10", "grpc-status-details-bin", good+strings.Repeat("=", (4-len(good)%4)%4)), codes.Aborted, "from details", false, 1},
		{"details code mismatch", hf("grpc-status", "13", "grpc-message", "m", "grpc-status-details-bin", good), codes.Internal, "grpc-status-details-bin has code 10, grpc-status is 13", true, 0},
		{"details bad base64", hf("grpc-status", "10", "grpc-message", "m", "grpc-status-details-bin", "!!!"), codes.Internal, "malformed grpc-status-details-bin", true, 0},
		{"details bad proto", hf("grpc-status", "10", "grpc-status-details-bin", encodeBinHeader([]byte{0xff, 0xff, 0xff})), codes.Internal, "malformed grpc-status-details-bin", true, 0},
		{"details without grpc-status", hf(":status", "200", "grpc-status-details-bin", good), codes.Unknown, "without grpc-status", true, 0},
		{"malformed grpc-status", hf("grpc-status", "abc"), codes.Internal, `malformed grpc-status "abc"`, true, 0},
		{"negative grpc-status", hf("grpc-status", "-1"), codes.Internal, "malformed grpc-status", true, 0},
		{"empty grpc-status", hf("grpc-status", ""), codes.Internal, "malformed grpc-status", true, 0},
		{"huge grpc-status", hf("grpc-status", "2147483648"), codes.Internal, "malformed grpc-status", true, 0},
		{"malformed grpc-status then valid", hf("grpc-status", "x", "grpc-status", "0"), codes.Internal, "malformed grpc-status", true, 0},
		{"malformed :status", hf(":status", "2000", "grpc-status", "0"), codes.Internal, "malformed :status", true, 0},
		{"nothing", nil, codes.Unknown, "without grpc-status", true, 0},
		{"http 200 only", hf(":status", "200"), codes.Unknown, "without grpc-status", true, 0},
		{"http 404", hf(":status", "404"), codes.Unimplemented, "unexpected HTTP status code 404 (Not Found)", true, 0},
		{"http 503", hf(":status", "503", "content-type", "text/html"), codes.Unavailable, "503", true, 0},
		{"http 503 with grpc-status", hf(":status", "503", "grpc-status", "8"), codes.ResourceExhausted, "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statusFromHeaders(tt.fields)
			msgOK := st.Message() == tt.msg
			if tt.msgPart {
				msgOK = strings.Contains(st.Message(), tt.msg)
			}
			if st.Code() != tt.code || !msgOK || len(st.Details()) != tt.nDetails {
				t.Errorf("status = %v/%q/%d details; want %v/%q/%d", st.Code(), st.Message(), len(st.Details()), tt.code, tt.msg, tt.nDetails)
			}
		})
	}
}

func TestHeaderStatusField(t *testing.T) {
	var h headerStatus
	for _, name := range []string{"grpc-status", "grpc-message", "grpc-status-details-bin", ":status"} {
		if !h.field(name, "0") {
			t.Errorf("field(%q) = false", name)
		}
	}
	for _, name := range []string{"content-type", "grpc-encoding", "grpc-timeout", "key", "key-bin", ":path"} {
		if h.field(name, "x") {
			t.Errorf("field(%q) = true", name)
		}
	}
	// The zero value: no grpc-status seen.
	var z headerStatus
	if z.haveCode || z.status().Code() != codes.Unknown {
		t.Errorf("zero headerStatus: haveCode %v, status %v", z.haveCode, z.status())
	}
}

func TestHTTPStatusToCode(t *testing.T) {
	tests := map[int]codes.Code{
		400: codes.Internal,
		401: codes.Unauthenticated,
		403: codes.PermissionDenied,
		404: codes.Unimplemented,
		429: codes.Unavailable,
		502: codes.Unavailable,
		503: codes.Unavailable,
		504: codes.Unavailable,
		200: codes.Unknown,
		405: codes.Unknown,
		415: codes.Unknown,
		500: codes.Unknown,
		0:   codes.Unknown,
		999: codes.Unknown,
	}
	for h, want := range tests {
		if got := httpStatusToCode(h); got != want {
			t.Errorf("httpStatusToCode(%d) = %v, want %v", h, got, want)
		}
	}
}

func TestRSTCodeToCode(t *testing.T) {
	tests := map[http2.ErrCode]codes.Code{
		http2.ErrCodeNo:                 codes.Internal,
		http2.ErrCodeProtocol:           codes.Internal,
		http2.ErrCodeInternal:           codes.Internal,
		http2.ErrCodeFlowControl:        codes.Internal,
		http2.ErrCodeSettingsTimeout:    codes.Internal,
		http2.ErrCodeStreamClosed:       codes.Internal,
		http2.ErrCodeFrameSize:          codes.Internal,
		http2.ErrCodeRefusedStream:      codes.Unavailable,
		http2.ErrCodeCancel:             codes.Canceled,
		http2.ErrCodeCompression:        codes.Internal,
		http2.ErrCodeConnect:            codes.Internal,
		http2.ErrCodeEnhanceYourCalm:    codes.ResourceExhausted,
		http2.ErrCodeInadequateSecurity: codes.PermissionDenied,
		http2.ErrCodeHTTP11Required:     codes.Internal,
		0xdead:                          codes.Internal,
	}
	for c, want := range tests {
		if got := rstCodeToCode(c); got != want {
			t.Errorf("rstCodeToCode(%v) = %v, want %v", c, got, want)
		}
	}
}

func BenchmarkEncodeTimeout(b *testing.B) {
	d := 1234567 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeTimeout(d)
	}
}

func BenchmarkDecodeTimeout(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeTimeout("1234567u"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeGrpcMessage(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		msg := "a perfectly ordinary status message"
		b.ReportAllocs()
		for b.Loop() {
			_ = encodeGrpcMessage(msg)
		}
	})
	b.Run("escaped", func(b *testing.B) {
		msg := "100% ünïcödé message\n"
		b.ReportAllocs()
		for b.Loop() {
			_ = encodeGrpcMessage(msg)
		}
	})
}

func BenchmarkDecodeGrpcMessage(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		msg := "a perfectly ordinary status message"
		b.ReportAllocs()
		for b.Loop() {
			_ = decodeGrpcMessage(msg)
		}
	})
	b.Run("escaped", func(b *testing.B) {
		msg := encodeGrpcMessage("100% ünïcödé message\n")
		b.ReportAllocs()
		for b.Loop() {
			_ = decodeGrpcMessage(msg)
		}
	})
}

func BenchmarkAppendMetadata(b *testing.B) {
	md := metadata.Pairs("authorization", "Bearer abc", "x-request-id", "1234", "trace-bin", "\x01\x02\x03")
	buf := make([]hpack.HeaderField, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMetadata(buf[:0], md)
	}
}

func BenchmarkStatusFromHeaders(b *testing.B) {
	fs := []hpack.HeaderField{{Name: "grpc-status", Value: "5"}, {Name: "grpc-message", Value: "not found"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = statusFromHeaders(fs)
	}
}
