package rpc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// BenchmarkUnary measures one unary RPC through the whole stack, client
// and server in this process over loopback TCP: allocations per op count
// both sides. "deadline" calls with a long-lived context that has a
// deadline, as test/bench's allocs workload does (so grpc-timeout is sent
// and the server arms a deadline); "background" with context.Background.
func BenchmarkUnary(b *testing.B) {
	for _, tc := range []struct {
		name     string
		deadline bool
	}{{"background", false}, {"deadline", true}} {
		b.Run(tc.name, func(b *testing.B) {
			_, addr := startServer(b, &testService{})
			_, c := dial(b, addr)
			ctx := context.Background()
			if tc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			}
			in := wrapperspb.Bytes([]byte{'x'})
			// Warm up the connection (SETTINGS, BDP, pools).
			for range 100 {
				if _, err := c.Unary(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Unary(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
