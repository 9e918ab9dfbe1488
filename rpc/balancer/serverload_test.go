package balancer

import (
	"testing"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

func TestParseServerLoadUsesTheInstalledParser(t *testing.T) {
	t.Cleanup(func() { SetServerLoadParser(nil) })
	md := metadata.Pairs("load", "7")
	if got := ParseServerLoad(md); got != nil {
		t.Fatalf("ParseServerLoad without a parser = %v, want nil", got)
	}
	SetServerLoadParser(func(md metadata.MD) any {
		if v := md.Get("load"); len(v) == 1 {
			return v[0]
		}
		return nil
	})
	if got := ParseServerLoad(md); got != "7" {
		t.Fatalf("ParseServerLoad = %v, want the parser's result \"7\"", got)
	}
	if got := ParseServerLoad(metadata.MD{}); got != nil {
		t.Fatalf("ParseServerLoad of a trailer without a report = %v, want nil", got)
	}
	SetServerLoadParser(nil)
	if got := ParseServerLoad(md); got != nil {
		t.Fatalf("ParseServerLoad after SetServerLoadParser(nil) = %v, want nil", got)
	}
}
