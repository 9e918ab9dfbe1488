package healthcheck

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// grpcGoBackendListening is the line grpcgobackend writes once it
// listens.
var grpcGoBackendListening = regexp.MustCompile(`grpc-go backend listening on (\S+) `)

// whoService is the service our client calls and health-checks on the
// grpc-go backends; its method Who answers with the backend's address.
const whoService = "test.Who"

// newTestClient is the one place this package creates clients of ours.
func newTestClient(t *testing.T, target string, opts ...rpc.DialOption) *rpc.ClientConn {
	t.Helper()
	cc, err := rpc.NewClient(target, append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestOurClientHealthChecksGrpcGoBackends runs our client, with
// round_robin and client-side health checking, against three grpc-go
// servers whose health is grpc-go's health service.
func TestOurClientHealthChecksGrpcGoBackends(t *testing.T) {
	bin := build(t, "github.com/h2rpc/h2rpc/test/interop/healthcheck/grpcgobackend")
	var backends []*process
	var addrs []resolver.Address
	for i := range 3 {
		p := start(t, grpcGoBackendListening, bin, fmt.Sprintf("--listen=127.0.0.%d:0", i+1))
		p.health(t, "SERVING "+whoService)
		backends = append(backends, p)
		addrs = append(addrs, resolver.Address{Addr: p.addr})
	}
	cfg, err := serviceconfig.Parse(`{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": "` + whoService + `"}}`)
	if err != nil {
		t.Fatal(err)
	}
	r := manual.NewBuilderWithScheme("healthcheck")
	r.InitialState(resolver.State{Addresses: addrs, ServiceConfig: &serviceconfig.ParseResult{Config: cfg}})
	cc := newTestClient(t, "healthcheck:///backends", rpc.WithResolvers(r))

	// round calls Who 3 times per backend and counts the answers by
	// backend address.
	round := func() map[string]int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), longWait)
		defer cancel()
		got := map[string]int{}
		for range 3 * len(backends) {
			var who wrapperspb.StringValue
			if err := cc.Invoke(ctx, "/"+whoService+"/Who", wrapperspb.String("who?"), &who, rpc.WaitForReady(true)); err != nil {
				t.Fatalf("Who: %v", err)
			}
			got[who.Value]++
		}
		return got
	}
	eventually := func(what string, ok func(map[string]int) bool) {
		t.Helper()
		deadline := time.Now().Add(longWait)
		for {
			got := round()
			if ok(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never happened; last round's answers by backend: %v", what, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	all := func(got map[string]int) bool { return len(got) == len(backends) }
	eventually("every backend answers", all)

	sick := backends[1]
	sick.health(t, "NOT_SERVING "+whoService)
	eventually("the NOT_SERVING backend gets no calls", func(got map[string]int) bool { return got[sick.addr] == 0 })
	for range 3 {
		if got := round(); got[sick.addr] != 0 || len(got) != 2 {
			t.Fatalf("answers by backend with %s NOT_SERVING: %v", sick.addr, got)
		}
	}
	sick.health(t, "SERVING "+whoService)
	eventually("the backend SERVING again gets calls", all)
}
