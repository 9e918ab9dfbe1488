package transport

import (
	"context"
	"testing"
)

// TestRequestFieldsPreviousAttempts checks that a retry attempt announces
// how many attempts came before it (gRFC A6) and that a first attempt
// sends no such header.
func TestRequestFieldsPreviousAttempts(t *testing.T) {
	tr := &http2Client{scheme: "http", authority: "localhost:50051", userAgent: DefaultUserAgent}
	for _, tc := range []struct {
		prev int
		want string
	}{{0, ""}, {1, "1"}, {4, "4"}} {
		fields, err := tr.requestFields(context.Background(), &CallHdr{Method: "/s.S/M", PreviousAttempts: tc.prev})
		if err != nil {
			t.Fatal(err)
		}
		got, n := "", 0
		for _, f := range fields {
			if f.Name == "grpc-previous-rpc-attempts" {
				got, n = f.Value, n+1
			}
		}
		if got != tc.want || (tc.want == "") != (n == 0) || n > 1 {
			t.Errorf("PreviousAttempts %d: grpc-previous-rpc-attempts %q (%d fields), want %q", tc.prev, got, n, tc.want)
		}
	}
}
