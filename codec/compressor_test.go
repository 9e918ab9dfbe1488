package codec

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// fakeCompressor is a registrable compressor that does not compress.
type fakeCompressor struct{ name string }

func (c fakeCompressor) Name() string { return c.name }
func (fakeCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return nopWriteCloser{w}, nil
}
func (fakeCompressor) Decompress(r io.Reader) (io.Reader, error) { return r, nil }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestCompressorRegistry(t *testing.T) {
	if c := GetCompressor(GzipName); c == nil || c.Name() != "gzip" {
		t.Fatalf("GetCompressor(gzip) = %v", c)
	}
	for _, name := range []string{"", Identity, "GZIP", "no-such"} {
		if c := GetCompressor(name); c != nil {
			t.Errorf("GetCompressor(%q) = %v, want nil", name, c)
		}
	}
	names := RegisteredCompressors()
	if len(names) == 0 || names[0] != "gzip" {
		t.Fatalf("RegisteredCompressors() = %q, want gzip first", names)
	}
	if slices.Contains(names, Identity) {
		t.Error("identity is advertised")
	}
	names[0] = "changed" // the caller's copy
	if RegisteredCompressors()[0] != "gzip" {
		t.Error("RegisteredCompressors returned the registry's own slice")
	}

	RegisterCompressor(fakeCompressor{name: "test-a"})
	RegisterCompressor(fakeCompressor{name: "test-b"})
	RegisterCompressor(fakeCompressor{name: "test-a"}) // keeps its place
	h := AcceptEncodingHeader()
	if !strings.HasPrefix(h, "gzip,") || strings.Contains(h, " ") {
		t.Errorf("AcceptEncodingHeader() = %q, want gzip first, no spaces", h)
	}
	if !strings.HasSuffix(h, ",test-a,test-b") || strings.Count(h, "test-a") != 1 {
		t.Errorf("AcceptEncodingHeader() = %q, want ...,test-a,test-b", h)
	}
	if got := strings.Join(RegisteredCompressors(), ","); got != h {
		t.Errorf("RegisteredCompressors() = %q, header %q", got, h)
	}
}

func TestRegisterCompressorPanics(t *testing.T) {
	for name, c := range map[string]Compressor{
		"nil": nil, "empty name": fakeCompressor{}, "identity": fakeCompressor{name: Identity},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			RegisterCompressor(c)
		})
	}
}

func TestLookupEncoding(t *testing.T) {
	for _, enc := range []string{"", Identity} {
		c, err := LookupEncoding(enc)
		if c != nil || err != nil {
			t.Errorf("LookupEncoding(%q) = %v, %v; want nil, nil", enc, c, err)
		}
	}
	if c, err := LookupEncoding("gzip"); err != nil || c == nil || c.Name() != "gzip" {
		t.Errorf("LookupEncoding(gzip) = %v, %v", c, err)
	}
	c, err := LookupEncoding("br")
	if c != nil || status.Code(err) != codes.Unimplemented || !errors.Is(err, ErrCompressorNotFound) {
		t.Fatalf("LookupEncoding(br) = %v, %v; want UNIMPLEMENTED wrapping ErrCompressorNotFound", c, err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, `"br"`) {
		t.Errorf("message %q does not name the encoding", msg)
	}
	_, err = LookupEncoding(strings.Repeat("x", 10000))
	if n := len(status.Convert(err).Message()); n > 200 {
		t.Errorf("a long encoding made a %d-byte message", n)
	}
}
