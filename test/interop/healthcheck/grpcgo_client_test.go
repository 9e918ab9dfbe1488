package healthcheck

import (
	"context"
	"os/exec"
	"regexp"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// testService is the service our interop server reports SERVING.
const testService = "grpc.testing.TestService"

// newGrpcGoClient returns a grpc-go client of addr, closed when the test
// ends.
func newGrpcGoClient(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
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

func TestGrpcGoHealthClientChecksOurServer(t *testing.T) {
	p := startOurServer(t)
	c := healthpb.NewHealthClient(newGrpcGoClient(t, p.addr))
	ctx := ctxWait(t)
	for _, service := range []string{"", testService} {
		r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q): %v, %v; want SERVING", service, r, err)
		}
	}
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(unknown service): %v; want NOT_FOUND", err)
	}
	p.health(t, "NOT_SERVING "+testService)
	r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: testService})
	if err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Check after NOT_SERVING: %v, %v", r, err)
	}
}

func TestGrpcGoHealthClientListsOurServer(t *testing.T) {
	p := startOurServer(t)
	c := healthpb.NewHealthClient(newGrpcGoClient(t, p.addr))
	p.health(t, "NOT_SERVING other.Service")
	r, err := c.List(ctxWait(t), &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":              healthpb.HealthCheckResponse_SERVING,
		testService:     healthpb.HealthCheckResponse_SERVING,
		"other.Service": healthpb.HealthCheckResponse_NOT_SERVING,
	}
	if len(r.Statuses) != len(want) {
		t.Fatalf("List: %v; want %v", r.Statuses, want)
	}
	for name, st := range want {
		if got := r.Statuses[name]; got.GetStatus() != st {
			t.Errorf("List[%q] = %v; want %v", name, got, st)
		}
	}
}

func TestGrpcGoHealthClientWatchesOurServer(t *testing.T) {
	p := startOurServer(t)
	c := healthpb.NewHealthClient(newGrpcGoClient(t, p.addr))
	ctx, cancel := context.WithCancel(ctxWait(t))
	defer cancel()
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: testService})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := w.Recv()
		if err != nil {
			t.Fatalf("Watch.Recv: %v", err)
		}
		return r.Status
	}
	if st := recv(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status %v; want SERVING", st)
	}
	p.health(t, "NOT_SERVING "+testService)
	if st := recv(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after NOT_SERVING: %v", st)
	}
	p.health(t, "SERVING "+testService)
	if st := recv(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("after SERVING: %v", st)
	}
	p.health(t, "shutdown")
	if st := recv(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after Shutdown: %v", st)
	}

	// A service that does not exist yet is SERVICE_UNKNOWN, and the
	// watch goes on.
	p.health(t, "resume")
	w2, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "later.Service"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w2.Recv()
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("Watch of an unknown service: %v, %v; want SERVICE_UNKNOWN", r, err)
	}
	p.health(t, "SERVING later.Service")
	if r, err := w2.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("after the service was added: %v, %v; want SERVING", r, err)
	}
}

// probeTool is the outcome of building grpc_health_probe, once.
var probeTool struct {
	once sync.Once
	out  string
	err  error
}

// probeFetchFailure matches the go command's errors when it cannot
// download a module (no module proxy, no network).
var probeFetchFailure = regexp.MustCompile(`(?i)(dial tcp|lookup .* no such host|module lookup disabled|GOFLAGS=-mod=mod|proxy\.golang\.org|connection refused|i/o timeout|cannot find module)`)

// needProbe skips the test when grpc_health_probe cannot be built
// because its module cannot be fetched; CI, which has the module proxy,
// always runs it. Any other failure to build it fails the test.
func needProbe(t *testing.T) {
	t.Helper()
	probeTool.once.Do(func() {
		out, err := exec.Command("go", "tool", "grpc-health-probe", "-version").CombinedOutput()
		probeTool.out, probeTool.err = string(out), err
	})
	if probeTool.err == nil {
		return
	}
	if probeFetchFailure.MatchString(probeTool.out) {
		t.Skipf("grpc_health_probe (tool directive of go.mod) cannot be fetched here: %v\n%s", probeTool.err, probeTool.out)
	}
	t.Fatalf("go tool grpc-health-probe: %v\n%s", probeTool.err, probeTool.out)
}

// probe runs grpc_health_probe (the tool directive of this module's
// go.mod) against addr and returns its exit code and output.
func probe(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "grpc-health-probe", "-addr=" + addr, "-connect-timeout=20s", "-rpc-timeout=20s"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running grpc_health_probe: %v\n%s", err, out)
	return 0, ""
}

func TestGrpcHealthProbeAgainstOurServer(t *testing.T) {
	needProbe(t)
	p := startOurServer(t)
	if code, out := probe(t, p.addr); code != 0 {
		t.Fatalf("grpc_health_probe (whole server): exit %d; want 0\n%s", code, out)
	}
	if code, out := probe(t, p.addr, "-service="+testService); code != 0 {
		t.Fatalf("grpc_health_probe -service=%s: exit %d; want 0\n%s", testService, code, out)
	}
	if code, out := probe(t, p.addr, "-service=no.such.Service"); code == 0 {
		t.Fatalf("grpc_health_probe of an unknown service: exit 0; want non-zero\n%s", out)
	}
	p.health(t, "NOT_SERVING "+testService)
	if code, out := probe(t, p.addr, "-service="+testService); code == 0 {
		t.Fatalf("grpc_health_probe of a NOT_SERVING service: exit 0; want non-zero\n%s", out)
	}
	p.health(t, "shutdown")
	if code, out := probe(t, p.addr); code == 0 {
		t.Fatalf("grpc_health_probe after Shutdown: exit 0; want non-zero\n%s", out)
	}
}
