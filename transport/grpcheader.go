package transport

// The gRPC header codec: how grpc-timeout, content-type, grpc-message,
// binary metadata and the status trailers are written to and read from
// HTTP/2 header fields. The rules are those of the gRPC document "gRPC over
// HTTP2" (PROTOCOL-HTTP2.md in the grpc repository), sections "Requests",
// "Responses" and "Errors"; the comments below cite it as [gRPC-H2].

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Wire constants of the gRPC header codec.
const (
	// maxTimeoutValue is the largest grpc-timeout number: at most 8 ASCII
	// digits ([gRPC-H2] "Requests": TimeoutValue).
	maxTimeoutValue = 99999999

	// baseContentType is the media type of every gRPC message stream;
	// "+codec" may follow ([gRPC-H2] "Requests": Content-Type).
	baseContentType = "application/grpc"

	// binHdrSuffix ends the names of binary metadata, whose values are
	// base64 on the wire ([gRPC-H2] "Requests": Binary-Header).
	binHdrSuffix = "-bin"

	// maxQuotedInError bounds how much of a peer's header value an error
	// message quotes.
	maxQuotedInError = 64
)

// Errors of the header codec; the errors returned wrap them.
var (
	// errBadTimeout: a grpc-timeout value that is not 1 to 8 digits and a unit.
	errBadTimeout = errors.New("transport: malformed grpc-timeout")
	// errBadBinHeader: a binary metadata value that is not valid base64.
	errBadBinHeader = errors.New("transport: malformed binary header value")
	// errBadMetadata: metadata a user asked to send that cannot be sent.
	errBadMetadata = errors.New("transport: invalid metadata")
)

// quotePeerValue quotes a peer-supplied value for an error message,
// truncated so a large header cannot make a large error.
func quotePeerValue(s string) string {
	if len(s) > maxQuotedInError {
		return strconv.Quote(s[:maxQuotedInError]) + "..."
	}
	return strconv.Quote(s)
}

// ---- grpc-timeout ----

// timeoutUnits lists the grpc-timeout units from the smallest up.
var timeoutUnits = [...]struct {
	unit byte
	d    time.Duration
}{
	{'n', time.Nanosecond},
	{'u', time.Microsecond},
	{'m', time.Millisecond},
	{'S', time.Second},
	{'M', time.Minute},
	{'H', time.Hour},
}

// encodeTimeout writes d as a grpc-timeout value in the smallest unit whose
// count fits in 8 digits ([gRPC-H2] "Requests": Timeout).
//
// The count is rounded up, as grpc-go does, so the server's deadline is
// never earlier than the client's and a tiny timeout never becomes zero.
// The server may see the timeout longer by less than one unit, under 1e-5
// of d: a unit is only chosen once the count in the next smaller one has
// passed 8 digits, so the count is at least 100000. A non-positive d
// encodes as "0n": the deadline has passed, and the server sees it so.
func encodeTimeout(d time.Duration) string {
	if d <= 0 {
		return "0n"
	}
	for _, u := range timeoutUnits {
		n := int64(d / u.d)
		if d%u.d != 0 {
			n++
		}
		if n <= maxTimeoutValue {
			var buf [9]byte
			b := strconv.AppendInt(buf[:0], n, 10)
			b = append(b, u.unit)
			return string(b)
		}
	}
	// Unreachable: the largest Duration is about 2.6 million hours.
	return strconv.Itoa(maxTimeoutValue) + "H"
}

// decodeTimeout parses a grpc-timeout value: 1 to 8 ASCII digits and one of
// the units H M S m u n, nothing else (no sign, no space). Errors wrap
// errBadTimeout. A value past the largest time.Duration (99999999H is over
// 11,000 years) saturates to it.
func decodeTimeout(s string) (time.Duration, error) {
	n := len(s)
	if n < 2 || n > 9 {
		return 0, fmt.Errorf("%w: %s: need 1 to 8 digits and a unit", errBadTimeout, quotePeerValue(s))
	}
	var unit time.Duration
	for _, u := range timeoutUnits {
		if s[n-1] == u.unit {
			unit = u.d
			break
		}
	}
	if unit == 0 {
		return 0, fmt.Errorf("%w: %s: unknown unit", errBadTimeout, quotePeerValue(s))
	}
	var v int64
	for i := 0; i < n-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %s: not a decimal number", errBadTimeout, quotePeerValue(s))
		}
		v = v*10 + int64(c-'0')
	}
	if v > math.MaxInt64/int64(unit) {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Duration(v) * unit, nil
}

// ---- content-type ----

// contentSubtype checks a content-type for gRPC and returns its codec name:
// "application/grpc" gives ("", true), "application/grpc+proto" gives
// ("proto", true). Media type and subtype are matched case-insensitively
// (RFC 9110 §8.3.1) and the subtype is returned in lower case; parameters
// after ';' are ignored. "application/grpc+" counts as no subtype, as in
// grpc-go. Anything else, including a subtype that is not an HTTP token,
// gives ("", false).
func contentSubtype(ct string) (subtype string, ok bool) {
	// The common cases, without work.
	switch ct {
	case baseContentType:
		return "", true
	case baseContentType + "+proto":
		return "proto", true
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.Trim(ct, " \t")
	if len(ct) < len(baseContentType) || !strings.EqualFold(ct[:len(baseContentType)], baseContentType) {
		return "", false
	}
	rest := ct[len(baseContentType):]
	if rest == "" {
		return "", true
	}
	if rest[0] != '+' {
		return "", false
	}
	sub := rest[1:]
	for i := 0; i < len(sub); i++ {
		if !isHTTPTokenByte(sub[i]) {
			return "", false
		}
	}
	return strings.ToLower(sub), true
}

// contentTypeFor returns the content-type that names codec subtype: plain
// "application/grpc" for "" and "application/grpc+<subtype>" otherwise.
func contentTypeFor(subtype string) string {
	switch subtype {
	case "":
		return baseContentType
	case "proto":
		return baseContentType + "+proto"
	}
	return baseContentType + "+" + subtype
}

// isHTTPTokenByte reports whether c may appear in an HTTP token (RFC 9110
// §5.6.2: tchar).
func isHTTPTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ---- grpc-message ----

// msgByteUnencoded reports whether c goes into grpc-message as itself:
// printable ASCII other than '%' ([gRPC-H2] "Responses":
// Percent-Byte-Unencoded).
func msgByteUnencoded(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '%'
}

const pctHexDigits = "0123456789ABCDEF"

// encodeGrpcMessage percent-encodes a status message for grpc-message: any
// byte that is not printable ASCII, and '%' itself, becomes %XX (upper-case
// hex). The message should be UTF-8; each byte that is not part of a valid
// UTF-8 sequence is sent as U+FFFD, so the peer always receives UTF-8. A
// message that needs no encoding is returned as is, without allocating.
func encodeGrpcMessage(s string) string {
	for i := 0; i < len(s); i++ {
		if !msgByteUnencoded(s[i]) {
			return encodeGrpcMessageFrom(s, i)
		}
	}
	return s
}

// encodeGrpcMessageFrom encodes s, whose bytes before start need no
// encoding.
func encodeGrpcMessageFrom(s string, start int) string {
	var b strings.Builder
	b.Grow(len(s) + 2*(len(s)-start))
	b.WriteString(s[:start])
	pct := func(c byte) {
		b.WriteByte('%')
		b.WriteByte(pctHexDigits[c>>4])
		b.WriteByte(pctHexDigits[c&0xf])
	}
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case msgByteUnencoded(c):
			b.WriteByte(c)
			i++
		case c < utf8.RuneSelf:
			pct(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString("%EF%BF%BD") // U+FFFD in place of a stray byte
				i++
				continue
			}
			for j := i; j < i+size; j++ {
				pct(s[j])
			}
			i += size
		}
	}
	return b.String()
}

// hexDigitValue returns the value of hex digit c and whether c is one.
func hexDigitValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeGrpcMessage decodes a grpc-message value. It never fails: a '%'
// not followed by two hex digits is kept as it is. The result is valid
// UTF-8: a message sent as UTF-8 comes back unchanged, and each byte of an
// invalid sequence becomes U+FFFD (as encodeGrpcMessage does), because a
// status message is a proto3 string. A value with nothing to decode is
// returned as is, without allocating.
func decodeGrpcMessage(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		if utf8.ValidString(s) {
			return s
		}
		return validUTF8PerByte(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := hexDigitValue(s[i+1])
			lo, ok2 := hexDigitValue(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	out := b.String()
	if utf8.ValidString(out) {
		return out
	}
	return validUTF8PerByte(out)
}

// validUTF8PerByte returns s with each byte that is not part of a valid
// UTF-8 sequence replaced by U+FFFD. (strings.ToValidUTF8 replaces a whole
// run with one U+FFFD; per byte matches what the encoder does.)
func validUTF8PerByte(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.WriteString(s[:size])
		}
		s = s[size:]
	}
	return sb.String()
}

// ---- binary metadata ----

// encodeBinHeader encodes a binary metadata value: standard base64 without
// padding, as [gRPC-H2] asks senders to emit.
func encodeBinHeader(v []byte) string {
	return base64.RawStdEncoding.EncodeToString(v)
}

// decodeBinHeader decodes one binary metadata value, padded or not
// ([gRPC-H2]: "Implementations MUST accept padded and un-padded values").
// Errors wrap errBadBinHeader. Line breaks, which Go's base64 decoder would
// skip, are rejected.
func decodeBinHeader(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: line break in value", errBadBinHeader)
	}
	enc := base64.RawStdEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.StdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadBinHeader, err)
	}
	return b, nil
}

// ---- metadata ----

// isReservedHeader reports whether a header field belongs to the protocol
// rather than to the application: it is neither sent from nor delivered to
// user metadata. That is pseudo-headers (":path"...), content-type,
// user-agent, te, every name starting with "grpc-" (reserved by [gRPC-H2]
// "Requests": grpc-status, grpc-message, grpc-timeout, grpc-encoding,
// grpc-accept-encoding, grpc-status-details-bin, grpc-tags-bin,
// grpc-trace-bin...) and the connection-specific fields HTTP/2 forbids
// (RFC 9113 §8.2.2).
//
// The two headers of gRFC A6 retries are the exception, as in grpc-go:
// grpc-previous-rpc-attempts reaches a server handler's metadata and
// grpc-retry-pushback-ms, which a handler sets in its trailers, reaches
// the client's trailer metadata, where the retry logic reads it. (A
// client user still cannot send either: validateMetadata refuses every
// grpc- key on requests.)
func isReservedHeader(key string) bool {
	if key == "" {
		return false
	}
	if key[0] == ':' {
		return true
	}
	if strings.HasPrefix(key, "grpc-") {
		return key != "grpc-previous-rpc-attempts" && key != "grpc-retry-pushback-ms"
	}
	switch key {
	case "content-type", "user-agent", "te",
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// validMetadataKey reports whether key is a legal custom metadata name:
// non-empty, only 0-9 a-z _ - . ([gRPC-H2] "Requests": HeaderName).
func validMetadataKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validMetadataValue reports whether v may be sent as an ASCII (not -bin)
// metadata value: printable ASCII only ([gRPC-H2] "Requests": ASCII-Value).
func validMetadataValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// validateMetadata checks metadata a user asked to send on a request, so
// the RPC fails with a clear error instead of appendMetadata silently
// leaving fields out (as grpc-go does). Keys must be non-empty and made
// of 0-9 a-z _ - . only (upper case included: the rpc API lower-cases
// keys, so an upper-case key here was never going to be sent as given);
// keys starting with "grpc-" are reserved for the protocol; values of
// keys other than -bin ones must be printable ASCII. HTTP headers the
// transport sets itself (content-type, user-agent, te, hop-by-hop
// headers, and ":authority", which a server's incoming metadata holds)
// are left out by appendMetadata, as before. Errors wrap
// errBadMetadata.
func validateMetadata(md metadata.MD) error {
	for k, vs := range md {
		if k == ":authority" {
			// A server's incoming metadata holds the request's
			// :authority (as in grpc-go); a proxy that forwards it as
			// outgoing metadata must not fail. appendMetadata leaves it
			// out, as grpc-go does. Other pseudo-headers stay errors.
			continue
		}
		if !validMetadataKey(k) {
			return fmt.Errorf("%w: key %q has characters outside [0-9a-z-_.]", errBadMetadata, k)
		}
		if strings.HasPrefix(k, "grpc-") {
			return fmt.Errorf("%w: key %q is reserved (grpc- keys are set by the transport)", errBadMetadata, k)
		}
		if strings.HasSuffix(k, binHdrSuffix) {
			continue
		}
		for _, v := range vs {
			if !validMetadataValue(v) {
				return fmt.Errorf("%w: value of key %q is not printable ASCII (use a -bin key for binary data)", errBadMetadata, k)
			}
		}
	}
	return nil
}

// appendMetadata appends md to fields as custom header fields: keys
// lower-cased, reserved keys (isReservedHeader) skipped, values of -bin keys
// base64-encoded. Fields that cannot be sent legally (a key with characters
// outside [0-9a-z-_.], an ASCII value that is not printable) are skipped
// too; call validateMetadata first to report them.
func appendMetadata(fields []hpack.HeaderField, md metadata.MD) []hpack.HeaderField {
	for k, vs := range md {
		k = strings.ToLower(k)
		if isReservedHeader(k) || !validMetadataKey(k) {
			continue
		}
		bin := strings.HasSuffix(k, binHdrSuffix)
		for _, v := range vs {
			if bin {
				v = encodeBinHeader([]byte(v))
			} else if !validMetadataValue(v) {
				continue
			}
			fields = append(fields, hpack.HeaderField{Name: k, Value: v})
		}
	}
	return fields
}

// checkMetadataField reports the error decodeMetadataField would give for
// the field, without keeping anything: only a -bin value can be wrong.
func checkMetadataField(name, value string) error {
	if !strings.HasSuffix(name, binHdrSuffix) {
		return nil
	}
	if !strings.Contains(value, ",") {
		if _, err := decodeBinHeader(value); err != nil {
			return fmt.Errorf("header %q: %w", name, err)
		}
		return nil
	}
	for part := range strings.SplitSeq(value, ",") {
		if _, err := decodeBinHeader(strings.Trim(part, " \t")); err != nil {
			return fmt.Errorf("header %q: %w", name, err)
		}
	}
	return nil
}

// decodeMetadataField adds one received custom header field to md. The
// caller has filtered out reserved fields (isReservedHeader) and checked
// the field against RFC 9113 §8.2. A value of a -bin key is base64-decoded;
// as [gRPC-H2] requires, it is first split on "," because an intermediary
// may have joined repeated fields into one, and each part becomes one
// value. Invalid base64 gives an error wrapping errBadBinHeader and leaves
// md unchanged.
func decodeMetadataField(md metadata.MD, name, value string) error {
	if !strings.HasSuffix(name, binHdrSuffix) {
		md[name] = append(md[name], value)
		return nil
	}
	if !strings.Contains(value, ",") {
		b, err := decodeBinHeader(value)
		if err != nil {
			return fmt.Errorf("header %q: %w", name, err)
		}
		md[name] = append(md[name], string(b))
		return nil
	}
	parts := strings.Split(value, ",")
	vals := make([]string, 0, len(parts))
	for _, p := range parts {
		b, err := decodeBinHeader(strings.Trim(p, " \t"))
		if err != nil {
			return fmt.Errorf("header %q: %w", name, err)
		}
		vals = append(vals, string(b))
	}
	md[name] = append(md[name], vals...)
	return nil
}

// ---- status ----

// appendStatus appends the status trailers of st ([gRPC-H2] "Responses":
// Status, Status-Message): grpc-status, grpc-message (percent-encoded, left
// out when empty) and, for a status that is not OK and has details,
// grpc-status-details-bin holding the whole google.rpc.Status, serialized.
// A nil st is OK. If the details cannot be serialized, the returned fields
// still hold grpc-status and grpc-message, usable as they are, and the
// error says why the details were left out.
func appendStatus(fields []hpack.HeaderField, st *status.Status) ([]hpack.HeaderField, error) {
	c := st.Code()
	// FormatUint returns constant strings for small numbers: no allocation.
	fields = append(fields, hpack.HeaderField{Name: "grpc-status", Value: strconv.FormatUint(uint64(c), 10)})
	if m := st.Message(); m != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-message", Value: encodeGrpcMessage(m)})
	}
	if c == codes.OK {
		return fields, nil
	}
	// Details() costs nothing when there are none, where Proto() would
	// copy the message for every error status.
	if len(st.Details()) == 0 {
		return fields, nil
	}
	b, err := proto.Marshal(st.Proto())
	if err != nil {
		return fields, fmt.Errorf("transport: serializing status details: %w", err)
	}
	fields = append(fields, hpack.HeaderField{Name: "grpc-status-details-bin", Value: encodeBinHeader(b)})
	return fields, nil
}

// headerStatus collects the status fields of a response's trailers (or of
// a trailers-only response) as they are decoded, and then builds the
// status. The zero value is ready to use.
type headerStatus struct {
	code        codes.Code
	haveCode    bool   // a grpc-status field was seen (valid or not)
	msg         string // grpc-message, decoded
	details     string // grpc-status-details-bin, still base64
	haveDetails bool
	httpStatus  int   // :status, 0 if none was seen
	err         error // the first malformed status field
}

// field consumes one header field. It returns true if the field was one of
// :status, grpc-status, grpc-message or grpc-status-details-bin (the caller
// must not treat it as metadata) and false for any other field. A
// malformed value is remembered and makes status report INTERNAL.
func (h *headerStatus) field(name, value string) bool {
	switch name {
	case "grpc-status":
		h.haveCode = true
		c, ok := parseStatusCode(value)
		if !ok && h.err == nil {
			h.err = fmt.Errorf("malformed grpc-status %s", quotePeerValue(value))
		}
		h.code = c
	case "grpc-message":
		h.msg = decodeGrpcMessage(value)
	case "grpc-status-details-bin":
		h.details = value
		h.haveDetails = true
	case ":status":
		n, ok := parseHTTPStatus(value)
		if !ok && h.err == nil {
			h.err = fmt.Errorf("malformed :status %s", quotePeerValue(value))
		}
		h.httpStatus = n
	default:
		return false
	}
	return true
}

// parseStatusCode parses a grpc-status value: decimal digits only, at most
// 2^31-1 (google.rpc.Status holds the code as int32). Codes above 16 are
// kept as they are.
func parseStatusCode(s string) (codes.Code, bool) {
	if s == "" || len(s) > 10 {
		return codes.Unknown, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return codes.Unknown, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > math.MaxInt32 {
		return codes.Unknown, false
	}
	return codes.Code(v), true
}

// parseHTTPStatus parses a :status value: exactly three digits (RFC 9110
// §15).
func parseHTTPStatus(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// status builds the status the fields describe:
//
//   - a malformed grpc-status or :status: INTERNAL saying which;
//   - no grpc-status: the code mapped from a non-200 HTTP status
//     (httpStatusToCode), else UNKNOWN;
//   - grpc-status-details-bin present: the google.rpc.Status it holds if
//     its code equals grpc-status; INTERNAL if it is corrupt or its code
//     differs (the message then quotes grpc-status and grpc-message);
//   - otherwise grpc-status with grpc-message.
func (h *headerStatus) status() *status.Status {
	if h.err != nil {
		return status.New(codes.Internal, "transport: "+h.err.Error())
	}
	if !h.haveCode {
		if h.httpStatus != 0 && h.httpStatus != http.StatusOK {
			return status.Newf(httpStatusToCode(h.httpStatus),
				"transport: unexpected HTTP status code %d (%s) without grpc-status", h.httpStatus, http.StatusText(h.httpStatus))
		}
		return status.New(codes.Unknown, "transport: response ended without grpc-status")
	}
	if !h.haveDetails {
		return status.New(h.code, h.msg)
	}
	b, err := decodeBinHeader(h.details)
	if err != nil {
		return status.Newf(codes.Internal, "transport: malformed grpc-status-details-bin: %v (grpc-status %d, grpc-message %s)", err, h.code, quotePeerValue(h.msg))
	}
	p := &spb.Status{}
	if err := proto.Unmarshal(b, p); err != nil {
		return status.Newf(codes.Internal, "transport: malformed grpc-status-details-bin: %v (grpc-status %d, grpc-message %s)", err, h.code, quotePeerValue(h.msg))
	}
	if p.Code != int32(h.code) {
		return status.Newf(codes.Internal, "transport: grpc-status-details-bin has code %d, grpc-status is %d (grpc-message %s)", p.Code, h.code, quotePeerValue(h.msg))
	}
	return status.FromProto(p)
}

// statusFromHeaders returns the status that a complete list of trailer
// fields (or of a trailers-only response) describes; see
// (*headerStatus).status.
func statusFromHeaders(fields []hpack.HeaderField) *status.Status {
	var h headerStatus
	for _, f := range fields {
		h.field(f.Name, f.Value)
	}
	return h.status()
}

// ---- status from HTTP ----

// httpStatusToCode maps the HTTP status of a response that carries no
// grpc-status to a gRPC code (gRPC document "HTTP to gRPC Status Code
// Mapping").
func httpStatusToCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest: // 400
		return codes.Internal
	case http.StatusUnauthorized: // 401
		return codes.Unauthenticated
	case http.StatusForbidden: // 403
		return codes.PermissionDenied
	case http.StatusNotFound: // 404
		return codes.Unimplemented
	case http.StatusTooManyRequests, // 429
		http.StatusBadGateway,         // 502
		http.StatusServiceUnavailable, // 503
		http.StatusGatewayTimeout:     // 504
		return codes.Unavailable
	}
	return codes.Unknown
}

// rstCodeToCode maps the error code of an RST_STREAM that ended a stream
// before its status arrived to a gRPC code ([gRPC-H2] "Errors"). NO_ERROR
// is INTERNAL too: the stream ended without a status. FLOW_CONTROL_ERROR is
// INTERNAL as the document says (grpc-go reports RESOURCE_EXHAUSTED).
func rstCodeToCode(c http2.ErrCode) codes.Code {
	switch c {
	case http2.ErrCodeCancel:
		return codes.Canceled
	case http2.ErrCodeRefusedStream:
		return codes.Unavailable // the stream was not processed: safe to retry
	case http2.ErrCodeEnhanceYourCalm:
		return codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		return codes.PermissionDenied
	}
	return codes.Internal
}
