package rpc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/blocking"
)

// sendUntilBlocked sends up to 20 messages of 10 KiB and reports how many
// went through before a send failed or blocked for a second (then unblock
// must free it): the peer never reads, so what goes through is its window
// plus the sender's write quota.
func sendUntilBlocked(send func(*wrapperspb.BytesValue) error, unblock func()) int {
	msg := &wrapperspb.BytesValue{Value: make([]byte, 10<<10)}
	return blocking.Count(20, time.Second, func() error { return send(msg) }, unblock)
}

// TestWriteQuotaOptions: WithWriteQuota and WriteQuota reach the
// transport. With 64 KiB of peer window and 16 KiB of quota about 9 sends
// of 10 KiB go through before one blocks; with the default quota (1 MiB)
// all 20 do.
func TestWriteQuotaOptions(t *testing.T) {
	small := func(n int) bool { return n >= 7 && n <= 9 }
	all := func(n int) bool { return n == 20 }
	for _, tc := range []struct {
		name  string
		quota int32
		want  func(int) bool
	}{{"small", 16 << 10, small}, {"default", 0, all}} {
		t.Run("client/"+tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			_, addr := startServer(t, &testService{
				upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
					select { // never reads
					case <-hold:
					case <-s.Context().Done():
					}
					return nil
				},
			}, InitialWindowSize(64<<10), InitialConnWindowSize(1<<20))
			var dopts []DialOption
			if tc.quota != 0 {
				dopts = append(dopts, WithWriteQuota(tc.quota))
			}
			_, c := dial(t, addr, dopts...)
			ctx, cancel := context.WithCancel(ctxWait(t))
			defer cancel()
			up, err := c.Upload(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := sendUntilBlocked(up.Send, cancel); !tc.want(n) {
				t.Fatalf("%d sends went through before one blocked", n)
			}
		})
		t.Run("server/"+tc.name, func(t *testing.T) {
			got := make(chan int, 1)
			blocked := make(chan struct{})
			var sopts []ServerOption
			if tc.quota != 0 {
				sopts = append(sopts, WriteQuota(tc.quota))
			}
			_, addr := startServer(t, &testService{
				download: func(_ *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
					// A blocked Send ends when the client cancels.
					got <- sendUntilBlocked(s.Send, func() { close(blocked) })
					return nil
				},
			}, sopts...)
			_, c := dial(t, addr, WithInitialWindowSize(64<<10), WithInitialConnWindowSize(1<<20))
			ctx, cancel := context.WithCancel(ctxWait(t))
			defer cancel()
			if _, err := c.Download(ctx, &wrapperspb.BytesValue{}); err != nil { // and never reads
				t.Fatal(err)
			}
			select {
			case <-blocked:
				cancel()
			case n := <-got:
				got <- n
			}
			if n := <-got; !tc.want(n) {
				t.Fatalf("%d sends went through before one blocked", n)
			}
		})
	}
}

// TestConnWriteBudgetOptions: WithConnWriteBudget and ConnWriteBudget
// reach the transport. With 64 KiB of peer window, the default 1 MiB
// stream quota and a 16 KiB connection budget, about 9 sends of 10 KiB go
// through before one blocks; with the default budget (32 MiB) all 20 do.
func TestConnWriteBudgetOptions(t *testing.T) {
	small := func(n int) bool { return n >= 7 && n <= 9 }
	all := func(n int) bool { return n == 20 }
	for _, tc := range []struct {
		name   string
		budget int64
		want   func(int) bool
	}{{"small", 16 << 10, small}, {"default", 0, all}} {
		t.Run("client/"+tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			_, addr := startServer(t, &testService{
				upload: func(s ClientStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
					select { // never reads
					case <-hold:
					case <-s.Context().Done():
					}
					return nil
				},
			}, InitialWindowSize(64<<10), InitialConnWindowSize(1<<20))
			var dopts []DialOption
			if tc.budget != 0 {
				dopts = append(dopts, WithConnWriteBudget(tc.budget))
			}
			_, c := dial(t, addr, dopts...)
			ctx, cancel := context.WithCancel(ctxWait(t))
			defer cancel()
			up, err := c.Upload(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := sendUntilBlocked(up.Send, cancel); !tc.want(n) {
				t.Fatalf("%d sends went through before one blocked", n)
			}
		})
		t.Run("server/"+tc.name, func(t *testing.T) {
			got := make(chan int, 1)
			blocked := make(chan struct{})
			var sopts []ServerOption
			if tc.budget != 0 {
				sopts = append(sopts, ConnWriteBudget(tc.budget))
			}
			_, addr := startServer(t, &testService{
				download: func(_ *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
					// A blocked Send ends when the client cancels.
					got <- sendUntilBlocked(s.Send, func() { close(blocked) })
					return nil
				},
			}, sopts...)
			_, c := dial(t, addr, WithInitialWindowSize(64<<10), WithInitialConnWindowSize(1<<20))
			ctx, cancel := context.WithCancel(ctxWait(t))
			defer cancel()
			if _, err := c.Download(ctx, &wrapperspb.BytesValue{}); err != nil { // and never reads
				t.Fatal(err)
			}
			select {
			case <-blocked:
				cancel()
			case n := <-got:
				got <- n
			}
			if n := <-got; !tc.want(n) {
				t.Fatalf("%d sends went through before one blocked", n)
			}
		})
	}
}
