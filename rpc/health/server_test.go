package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// longWait bounds every wait of these tests; they never assert timings.
const longWait = 20 * time.Second

const (
	serving        = healthpb.HealthCheckResponse_SERVING
	notServing     = healthpb.HealthCheckResponse_NOT_SERVING
	serviceUnknown = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
)

// serve serves hs on a loopback port and returns the server (stopped when
// the test ends) and a health client of it.
func serve(t *testing.T, hs *Server) (*rpc.Server, healthpb.HealthClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	cc := newTestClient(t, lis.Addr().String())
	return srv, healthpb.NewHealthClient(cc)
}

// newTestClient is the one place this package's tests create clients.
func newTestClient(t *testing.T, target string, opts ...rpc.DialOption) *rpc.ClientConn {
	t.Helper()
	cc, err := rpc.NewClient(target, append([]rpc.DialOption{rpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	t.Cleanup(cancel)
	return ctx
}

func check(ctx context.Context, c healthpb.HealthClient, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return r.Status, nil
}

func TestCheckWholeServerIsServingByDefault(t *testing.T) {
	_, c := serve(t, NewServer())
	st, err := check(ctxWait(t), c, "")
	if err != nil || st != serving {
		t.Fatalf(`Check(""): %v, %v; want SERVING`, st, err)
	}
}

func TestCheckUnknownServiceIsNotFound(t *testing.T) {
	_, c := serve(t, NewServer())
	_, err := check(ctxWait(t), c, "no.such.Service")
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(unknown): %v; want NOT_FOUND", err)
	}
}

func TestCheckReportsTheStatusSet(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	ctx := ctxWait(t)
	for _, want := range []ServingStatus{serving, notServing, healthpb.HealthCheckResponse_UNKNOWN, serving} {
		hs.SetServingStatus("echo.v1.Echo", want)
		if st, err := check(ctx, c, "echo.v1.Echo"); err != nil || st != want {
			t.Fatalf("Check after SetServingStatus(%v): %v, %v", want, st, err)
		}
	}
	hs.SetServingStatus("", notServing)
	if st, err := check(ctx, c, ""); err != nil || st != notServing {
		t.Fatalf(`Check("") after SetServingStatus("", NOT_SERVING): %v, %v`, st, err)
	}
}

func TestListReportsEveryService(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	hs.SetServingStatus("a.A", serving)
	hs.SetServingStatus("b.B", notServing)
	r, err := c.List(ctxWait(t), &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ServingStatus{"": serving, "a.A": serving, "b.B": notServing}
	if len(r.Statuses) != len(want) {
		t.Fatalf("List: %v; want %v", r.Statuses, want)
	}
	for name, st := range want {
		if got := r.Statuses[name]; got.GetStatus() != st {
			t.Errorf("List[%q] = %v; want %v", name, got, st)
		}
	}
}

func TestListOfMoreThanMaxServicesIsResourceExhausted(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	ctx := ctxWait(t)
	// "" counts: MaxListedServices statuses in all are listed.
	for i := range MaxListedServices - 1 {
		hs.SetServingStatus(fmt.Sprintf("svc.S%d", i), serving)
	}
	r, err := c.List(ctx, &healthpb.HealthListRequest{})
	if err != nil || len(r.Statuses) != MaxListedServices {
		t.Fatalf("List of %d services: %d statuses, %v", MaxListedServices, len(r.GetStatuses()), err)
	}
	hs.SetServingStatus("one.More", serving)
	if _, err := c.List(ctx, &healthpb.HealthListRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("List of %d services: %v; want RESOURCE_EXHAUSTED", MaxListedServices+1, err)
	}
}

// recvStatus receives the next status of a Watch.
func recvStatus(t *testing.T, w healthpb.Health_WatchClient) ServingStatus {
	t.Helper()
	r, err := w.Recv()
	if err != nil {
		t.Fatalf("Watch.Recv: %v", err)
	}
	return r.Status
}

func TestWatchSendsTheStatusAtOnceThenEveryChange(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	hs.SetServingStatus("echo.v1.Echo", serving)
	w, err := c.Watch(ctxWait(t), &healthpb.HealthCheckRequest{Service: "echo.v1.Echo"})
	if err != nil {
		t.Fatal(err)
	}
	if st := recvStatus(t, w); st != serving {
		t.Fatalf("first status %v; want SERVING", st)
	}
	for _, want := range []ServingStatus{notServing, serving, notServing} {
		hs.SetServingStatus("echo.v1.Echo", want)
		if st := recvStatus(t, w); st != want {
			t.Fatalf("after SetServingStatus(%v): got %v", want, st)
		}
	}
}

func TestWatchOfAnUnknownServiceReportsServiceUnknownAndKeepsWatching(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	w, err := c.Watch(ctxWait(t), &healthpb.HealthCheckRequest{Service: "later.Service"})
	if err != nil {
		t.Fatal(err)
	}
	if st := recvStatus(t, w); st != serviceUnknown {
		t.Fatalf("first status %v; want SERVICE_UNKNOWN", st)
	}
	hs.SetServingStatus("later.Service", serving)
	if st := recvStatus(t, w); st != serving {
		t.Fatalf("after the service was added: %v; want SERVING", st)
	}
}

func TestWatchEndsWhenTheClientCancels(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	ctx, cancel := context.WithCancel(ctxWait(t))
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recvStatus(t, w)
	cancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel: %v; want CANCELED", err)
	}
	// The handler unregisters its watcher once it returned.
	deadline := time.Now().Add(longWait)
	for watchers(hs) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled Watch is still registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func watchers(hs *Server) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	n := 0
	for _, ws := range hs.watchers {
		n += len(ws)
	}
	return n
}

func TestWatchEndsWhenTheServerStops(t *testing.T) {
	hs := NewServer()
	srv, c := serve(t, hs)
	w, err := c.Watch(ctxWait(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recvStatus(t, w)
	srv.Stop()
	if _, err := w.Recv(); err == nil {
		t.Fatal("Recv after the server stopped succeeded")
	}
}

// blockingStream is a Watch stream whose Send waits for the test.
type blockingStream struct {
	healthpb.Health_WatchServer
	ctx     context.Context
	sending chan ServingStatus // each Send offers its status here, then returns
}

func (s *blockingStream) Context() context.Context { return s.ctx }
func (s *blockingStream) Send(r *healthpb.HealthCheckResponse) error {
	select {
	case s.sending <- r.Status:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func TestWatchOfASlowClientSkipsToTheLatestStatus(t *testing.T) {
	hs := NewServer()
	hs.SetServingStatus("s", serving)
	ctx, cancel := context.WithCancel(context.Background())
	st := &blockingStream{ctx: ctx, sending: make(chan ServingStatus)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hs.Watch(&healthpb.HealthCheckRequest{Service: "s"}, st)
	}()
	defer func() { cancel(); wg.Wait() }()
	if got := <-st.sending; got != serving {
		t.Fatalf("first status %v; want SERVING", got)
	}
	// The client reads nothing while the status changes many times: the
	// server keeps only the latest for it.
	for i := range 1000 {
		hs.SetServingStatus("s", []ServingStatus{notServing, serving}[i%2])
		if n := queued(hs, "s"); n > 1 {
			t.Fatalf("%d statuses queued for a watcher; want at most 1", n)
		}
	}
	hs.SetServingStatus("s", notServing)
	if got := <-st.sending; got != notServing {
		t.Fatalf("after the changes the watcher got %v; want the latest, NOT_SERVING", got)
	}
}

// queued counts the statuses waiting to be sent to the watchers of
// service.
func queued(hs *Server, service string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	n := 0
	for w := range hs.watchers[service] {
		n += len(w.latest)
	}
	return n
}

func TestShutdownMakesEveryServiceNotServingAndIgnoresSetUntilResume(t *testing.T) {
	hs := NewServer()
	_, c := serve(t, hs)
	ctx := ctxWait(t)
	hs.SetServingStatus("a.A", serving)
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "a.A"})
	if err != nil {
		t.Fatal(err)
	}
	recvStatus(t, w)

	hs.Shutdown()
	if st := recvStatus(t, w); st != notServing {
		t.Fatalf("watcher after Shutdown: %v; want NOT_SERVING", st)
	}
	for _, name := range []string{"", "a.A"} {
		if st, err := check(ctx, c, name); err != nil || st != notServing {
			t.Fatalf("Check(%q) after Shutdown: %v, %v; want NOT_SERVING", name, st, err)
		}
	}
	hs.SetServingStatus("a.A", serving)
	hs.SetServingStatus("b.B", serving)
	if st, err := check(ctx, c, "a.A"); err != nil || st != notServing {
		t.Fatalf("Check after Shutdown and SetServingStatus: %v, %v; want NOT_SERVING", st, err)
	}
	if _, err := check(ctx, c, "b.B"); status.Code(err) != codes.NotFound {
		t.Fatalf("a service added after Shutdown: %v; want NOT_FOUND", err)
	}

	hs.Resume()
	if st := recvStatus(t, w); st != serving {
		t.Fatalf("watcher after Resume: %v; want SERVING", st)
	}
	hs.SetServingStatus("a.A", notServing)
	if st, err := check(ctx, c, "a.A"); err != nil || st != notServing {
		t.Fatalf("SetServingStatus after Resume: %v, %v; want NOT_SERVING", st, err)
	}
}

// TestGracefulStopTurnsWatchersNotServing checks that a server's
// GracefulStop tells its health service (rpc.StopNotifier) before it
// drains: a watcher sees NOT_SERVING while its stream is still open,
// though the application never called Shutdown.
func TestGracefulStopTurnsWatchersNotServing(t *testing.T) {
	hs := NewServer()
	srv, c := serve(t, hs)
	hs.SetServingStatus("echo.v1.Echo", serving)
	ctx, cancel := context.WithCancel(ctxWait(t))
	defer cancel()
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "echo.v1.Echo"})
	if err != nil {
		t.Fatal(err)
	}
	if st := recvStatus(t, w); st != serving {
		t.Fatalf("first status %v; want SERVING", st)
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop() // waits for the Watch, which the test ends below
		close(stopped)
	}()
	if st := recvStatus(t, w); st != notServing {
		t.Fatalf("status once GracefulStop began: %v; want NOT_SERVING", st)
	}
	hs.SetServingStatus("echo.v1.Echo", serving) // ignored: shut down
	if r, err := hs.Check(ctx, &healthpb.HealthCheckRequest{Service: "echo.v1.Echo"}); err != nil || r.Status != notServing {
		t.Errorf("after SetServingStatus during the stop: %v, %v; want NOT_SERVING", r, err)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(longWait):
		t.Fatal("GracefulStop did not return once the watcher left")
	}
}
