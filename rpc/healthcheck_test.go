package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/health"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/manual"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// hcWait bounds every wait of these tests; they never assert timings.
const hcWait = 20 * time.Second

// hcService is the service name the health-checking tests' service
// config names.
const hcService = "echo.v1.Echo"

// hcBackend is an echo server on one loopback address, optionally with
// the health service, counting the calls it got.
type hcBackend struct {
	addr    string
	hits    atomic.Int64
	hs      *health.Server // nil: the backend does not serve grpc.health.v1
	watches atomic.Int64   // Watch calls under way
	srv     *rpc.Server
}

// countingHealth is the health service, counting its Watch calls.
type countingHealth struct {
	*health.Server
	b *hcBackend
}

func (h countingHealth) Watch(in *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	h.b.watches.Add(1)
	defer h.b.watches.Add(-1)
	return h.Server.Watch(in, s)
}

type hcEcho struct {
	echov1.Service
	b *hcBackend
}

func (e hcEcho) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	e.b.hits.Add(1)
	return e.Service.Unary(ctx, in)
}

// startHCBackend serves on host, port 0, with the health service when
// withHealth (hcService SERVING); it stops when the test ends.
func startHCBackend(t *testing.T, host string, withHealth bool) *hcBackend {
	t.Helper()
	lis, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hcBackend{addr: lis.Addr().String(), srv: rpc.NewServer()}
	echov1.RegisterEchoServer(b.srv, hcEcho{b: b})
	if withHealth {
		b.hs = health.NewServer()
		b.hs.SetServingStatus(hcService, healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(b.srv, countingHealth{Server: b.hs, b: b})
	}
	done := make(chan error, 1)
	go func() { done <- b.srv.Serve(lis) }()
	t.Cleanup(func() {
		b.srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return b
}

// hcServiceConfig is round_robin with client-side health checking of
// hcService.
const hcServiceConfig = `{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": "` + hcService + `"}}`

var hcSchemes atomic.Int64

// newTestClient is the one place these tests create clients.
func newTestClient(t *testing.T, target string, opts ...rpc.DialOption) *rpc.ClientConn {
	t.Helper()
	cc, err := rpc.NewClient(target, append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// dialBackends returns a client of bs behind a manual resolver whose
// service config is sc, and the resolver.
func dialBackends(t *testing.T, sc string, bs []*hcBackend, opts ...rpc.DialOption) (echov1.EchoClient, *manual.Resolver) {
	t.Helper()
	r := manual.NewBuilderWithScheme(fmt.Sprintf("hc%d", hcSchemes.Add(1)))
	cfg, err := serviceconfig.Parse(sc)
	if err != nil {
		t.Fatal(err)
	}
	r.InitialState(resolver.State{Addresses: hcAddrs(bs...), ServiceConfig: &serviceconfig.ParseResult{Config: cfg}})
	cc := newTestClient(t, r.Scheme()+":///backends", append([]rpc.DialOption{rpc.WithResolvers(r)}, opts...)...)
	return echov1.NewEchoClient(cc), r
}

func hcAddrs(bs ...*hcBackend) []resolver.Address {
	as := make([]resolver.Address, len(bs))
	for i, b := range bs {
		as[i] = resolver.Address{Addr: b.addr}
	}
	return as
}

func startHCBackends(t *testing.T, withHealth ...bool) []*hcBackend {
	bs := make([]*hcBackend, len(withHealth))
	for i, h := range withHealth {
		bs[i] = startHCBackend(t, fmt.Sprintf("127.0.0.%d", i+1), h)
	}
	return bs
}

// callRound makes n calls (wait for ready) and returns how many each
// backend got.
func callRound(t *testing.T, c echov1.EchoClient, bs []*hcBackend, n int) []int64 {
	t.Helper()
	before := make([]int64, len(bs))
	for i, b := range bs {
		before[i] = b.hits.Load()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hcWait)
	defer cancel()
	for range n {
		if _, err := c.Unary(ctx, &echov1.EchoRequest{Message: "hi"}, rpc.WaitForReady(true)); err != nil {
			t.Fatalf("Unary: %v", err)
		}
	}
	got := make([]int64, len(bs))
	for i, b := range bs {
		got[i] = b.hits.Load() - before[i]
	}
	return got
}

// eventually runs rounds of calls until ok accepts one's hits, and fails
// the test if none does within hcWait.
func eventually(t *testing.T, c echov1.EchoClient, bs []*hcBackend, what string, ok func(hits []int64) bool) {
	t.Helper()
	deadline := time.Now().Add(hcWait)
	for {
		hits := callRound(t, c, bs, 3*len(bs))
		if ok(hits) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; last round's calls per backend: %v", what, hits)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allGot(hits []int64) bool {
	for _, h := range hits {
		if h == 0 {
			return false
		}
	}
	return true
}

func TestHealthCheckNotServingBackendGetsNoCallsUntilServing(t *testing.T) {
	bs := startHCBackends(t, true, true, true)
	c, _ := dialBackends(t, hcServiceConfig, bs)
	eventually(t, c, bs, "every backend gets calls", allGot)

	bs[1].hs.SetServingStatus(hcService, healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, c, bs, "the NOT_SERVING backend gets no calls", func(h []int64) bool { return h[1] == 0 })
	// From now on it gets none, round after round.
	for range 5 {
		if hits := callRound(t, c, bs, 30); hits[1] != 0 || hits[0] == 0 || hits[2] == 0 {
			t.Fatalf("calls per backend with backend 1 NOT_SERVING: %v", hits)
		}
	}

	bs[1].hs.SetServingStatus(hcService, healthpb.HealthCheckResponse_SERVING)
	eventually(t, c, bs, "the backend SERVING again gets calls", allGot)
}

func TestHealthCheckBackendWithoutHealthServiceStillGetsCalls(t *testing.T) {
	bs := startHCBackends(t, false, true)
	// The client logs that backend 0 has no health service.
	c, _ := dialBackends(t, hcServiceConfig, bs, rpc.WithLogger(slog.New(slog.DiscardHandler)))
	eventually(t, c, bs, "both backends get calls", allGot)
}

func TestHealthCheckOfAnUnknownServiceMakesTheBackendUnavailable(t *testing.T) {
	bs := startHCBackends(t, true)
	const sc = `{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": "not.Served"}}`
	c, _ := dialBackends(t, sc, bs)
	ctx, cancel := context.WithTimeout(context.Background(), hcWait)
	defer cancel()
	// The connection is up but the backend does not serve not.Served
	// (SERVICE_UNKNOWN): the channel has nothing READY, and calls that do
	// not wait for ready fail once it is TRANSIENT_FAILURE.
	for {
		_, err := c.Unary(ctx, &echov1.EchoRequest{Message: "hi"})
		if status.Code(err) == codes.Unavailable {
			break
		}
		if err == nil || ctx.Err() != nil {
			t.Fatalf("Unary to a backend whose health check says SERVICE_UNKNOWN: %v; want UNAVAILABLE", err)
		}
	}
	if n := bs[0].hits.Load(); n != 0 {
		t.Fatalf("the unhealthy backend got %d calls", n)
	}
}

func TestWithDisableHealthCheckIgnoresHealthCheckConfig(t *testing.T) {
	bs := startHCBackends(t, true, true)
	bs[0].hs.SetServingStatus(hcService, healthpb.HealthCheckResponse_NOT_SERVING)
	c, _ := dialBackends(t, hcServiceConfig, bs, rpc.WithDisableHealthCheck())
	eventually(t, c, bs, "both backends, one NOT_SERVING, get calls", allGot)
	if n := bs[0].watches.Load() + bs[1].watches.Load(); n != 0 {
		t.Fatalf("%d health Watch calls with health checking disabled", n)
	}
}

func TestPickFirstDoesNotHealthCheck(t *testing.T) {
	bs := startHCBackends(t, true)
	bs[0].hs.SetServingStatus(hcService, healthpb.HealthCheckResponse_NOT_SERVING)
	const sc = `{"healthCheckConfig": {"serviceName": "` + hcService + `"}}`
	c, _ := dialBackends(t, sc, bs)
	if hits := callRound(t, c, bs, 3); hits[0] != 3 {
		t.Fatalf("pick_first sent %d of 3 calls to its only backend", hits[0])
	}
}

func TestHealthCheckStreamEndsWhenTheBackendIsRemoved(t *testing.T) {
	bs := startHCBackends(t, true, true)
	c, r := dialBackends(t, hcServiceConfig, bs)
	eventually(t, c, bs, "both backends get calls", allGot)
	if bs[0].watches.Load() != 1 {
		t.Fatalf("backend 0 has %d health Watch calls; want 1", bs[0].watches.Load())
	}
	cfg, err := serviceconfig.Parse(hcServiceConfig)
	if err != nil {
		t.Fatal(err)
	}
	r.UpdateState(resolver.State{Addresses: hcAddrs(bs[1]), ServiceConfig: &serviceconfig.ParseResult{Config: cfg}})
	// The removed subchannel's connection closes once its RPCs are done:
	// its health Watch must end, or it would keep the connection open.
	deadline := time.Now().Add(hcWait)
	for bs[0].watches.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the removed backend's health Watch is still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if hits := callRound(t, c, bs, 6); hits[0] != 0 {
		t.Fatalf("the removed backend got %d calls", hits[0])
	}
}

// flakyHealth fails its first Watch calls with UNAVAILABLE, then serves.
type flakyHealth struct {
	*health.Server
	failures atomic.Int64
}

func (h *flakyHealth) Watch(in *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	if h.failures.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "not yet")
	}
	return h.Server.Watch(in, s)
}

func TestHealthCheckStreamFailureIsRetried(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer()
	b := &hcBackend{addr: lis.Addr().String()}
	echov1.RegisterEchoServer(srv, hcEcho{b: b})
	fh := &flakyHealth{Server: health.NewServer()}
	fh.failures.Store(2)
	fh.SetServingStatus(hcService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, fh)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	defer func() { srv.Stop(); <-done }()

	fast := rpc.BackoffConfig{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond}
	c, _ := dialBackends(t, hcServiceConfig, []*hcBackend{b}, rpc.WithBackoff(fast))
	if hits := callRound(t, c, []*hcBackend{b}, 1); hits[0] != 1 {
		t.Fatalf("calls to the backend: %d; want 1", hits[0])
	}
	if n := fh.failures.Load(); n >= 0 {
		t.Fatalf("the health Watch was called %d times; want 3 (two failures, then SERVING)", 2-n)
	}
}

// TestHealthCheckMessagesAreGrpcHealthV1s checks that the messages the
// client-side health check sends and receives (rpc cannot import the
// generated grpc_health_v1, which imports rpc) are grpc.health.v1's on the
// wire.
func TestHealthCheckMessagesAreGrpcHealthV1s(t *testing.T) {
	for _, service := range []string{"", "echo.v1.Echo", "a.b.C/with\x00odd bytes é"} {
		got, err := proto.Marshal(rpc.NewHealthCheckRequestForTest(service))
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("request for %q: % x; grpc_health_v1 encodes % x", service, got, want)
		}
		var back healthpb.HealthCheckRequest
		if err := proto.Unmarshal(got, &back); err != nil || back.Service != service {
			t.Errorf("request for %q decodes as %q, %v", service, back.Service, err)
		}
	}
	for v, name := range healthpb.HealthCheckResponse_ServingStatus_name {
		b, err := proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_ServingStatus(v)})
		if err != nil {
			t.Fatal(err)
		}
		var got rpc.HealthCheckResponseForTest
		if err := proto.Unmarshal(b, &got); err != nil || got.Value != v {
			t.Errorf("response %s decodes as %d, %v; want %d", name, got.Value, err, v)
		}
	}
}

func TestHealthShutdownThenGracefulStopDrainsHealthCheckingClients(t *testing.T) {
	bs := startHCBackends(t, true, true)
	c, _ := dialBackends(t, hcServiceConfig, bs)
	eventually(t, c, bs, "both backends get calls", allGot)

	// The way down: NOT_SERVING first, so the client moves its calls
	// away, then GracefulStop, which must not wait forever for the
	// client's health Watch.
	bs[0].hs.Shutdown()
	eventually(t, c, bs, "the shut-down backend gets no calls", func(h []int64) bool { return h[0] == 0 })
	stopped := make(chan struct{})
	go func() {
		bs[0].srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(hcWait):
		t.Fatalf("GracefulStop still waits; %d health Watch calls open", bs[0].watches.Load())
	}
	if hits := callRound(t, c, bs, 6); hits[1] != 6 {
		t.Fatalf("calls per backend after backend 0 stopped: %v", hits)
	}
}

// methodRecorder is per-RPC credentials that record the method of each
// stream they are asked for.
type methodRecorder struct {
	mu      sync.Mutex
	methods []string
}

func (m *methodRecorder) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.methods = append(m.methods, ri.Method)
	return nil, nil
}

func (m *methodRecorder) RequireTransportSecurity() bool { return false }

// TestHealthCheckStreamTakesNoDefaultCallOptions: the health check's
// Watch stream is the channel's own, as in grpc-go, so the call options
// of WithDefaultCallOptions, meant for the application's calls, do not
// apply to it (their Header, Trailer or Peer targets would be written
// from the health check's goroutine). Here per-RPC credentials given as
// a default call option are asked only for the application's call,
// though the backend became READY through a Watch.
func TestHealthCheckStreamTakesNoDefaultCallOptions(t *testing.T) {
	bs := startHCBackends(t, true)
	rec := &methodRecorder{}
	c, _ := dialBackends(t, hcServiceConfig, bs, rpc.WithDefaultCallOptions(rpc.PerRPCCredentials(rec)))
	ctx, cancel := context.WithTimeout(context.Background(), hcWait)
	defer cancel()
	if _, err := c.Unary(ctx, &echov1.EchoRequest{}, rpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if bs[0].watches.Load() == 0 {
		t.Fatal("the backend saw no health Watch: the test checks nothing")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{"/echo.v1.Echo/Unary"}; !slices.Equal(rec.methods, want) {
		t.Errorf("default per-RPC credentials were asked for %q, want only %q", rec.methods, want)
	}
}
