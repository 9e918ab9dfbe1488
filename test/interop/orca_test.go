package interop_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/orca"
	"github.com/h2rpc/h2rpc/test/interop/cases"
	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
	"github.com/h2rpc/h2rpc/test/interop/service"
)

// startORCAServer serves our TestService as the interop server does, with
// backend metrics, on a loopback port.
func startORCAServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(orca.CallMetricsServerOptions(nil)...)
	if err := service.RegisterWithMetrics(srv, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// TestServerReportsTheORCAMetricsTheCasesAsk checks, without a load
// balancer, what orca_per_rpc and orca_oob need of our server: the
// per-query report of a UnaryCall comes back in its trailer, and the
// out-of-band report a FullDuplexCall sets is streamed by OpenRcaService.
func TestServerReportsTheORCAMetricsTheCasesAsk(t *testing.T) {
	addr := startORCAServer(t)
	cc, err := newTestClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	tc := testpb.NewTestServiceClient(cc)

	// orca_per_rpc.
	var tr metadata.MD
	_, err = tc.UnaryCall(ctx, &testpb.SimpleRequest{OrcaPerQueryReport: &testpb.TestOrcaReport{
		CpuUtilization:    0.8210,
		MemoryUtilization: 0.5847,
		RequestCost:       map[string]float64{"cost": 3456.32},
		Utilization:       map[string]float64{"util": 0.30499},
	}}, rpc.Trailer(&tr))
	if err != nil {
		t.Fatal(err)
	}
	got, err := orca.ParseLoadReport(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := &orcav3.OrcaLoadReport{
		CpuUtilization: 0.8210,
		MemUtilization: 0.5847,
		RequestCost:    map[string]float64{"cost": 3456.32},
		Utilization:    map[string]float64{"util": 0.30499},
	}
	if !proto.Equal(got, want) {
		t.Errorf("per-RPC report %v, want %v", got, want)
	}

	// orca_oob.
	st, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.CloseSend()
	oob, err := orcaservicev3.NewOpenRcaServiceClient(cc).StreamCoreMetrics(ctx,
		&orcaservicev3.OrcaLoadReportRequest{ReportInterval: durationpb.New(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*testpb.TestOrcaReport{
		{CpuUtilization: 0.8210, MemoryUtilization: 0.5847, Utilization: map[string]float64{"util": 0.30499}},
		{CpuUtilization: 0.29309, MemoryUtilization: 0.2, Utilization: map[string]float64{"util": 0.2039}},
	} {
		if err := st.Send(&testpb.StreamingOutputCallRequest{OrcaOobReport: r, ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		want := &orcav3.OrcaLoadReport{CpuUtilization: r.CpuUtilization, MemUtilization: r.MemoryUtilization, Utilization: r.Utilization}
		for {
			got, err := oob.Recv()
			if err != nil {
				t.Fatalf("waiting for the out-of-band report %v: %v", want, err)
			}
			if proto.Equal(got, want) {
				break
			}
		}
	}
}

// TestNoBinaryLinksBothORCAProtoPackages checks that none of our interop
// binaries links grpc-go's ORCA protos (github.com/cncf/xds/go, pulled in
// by google.golang.org/grpc/orca) beside ours: both register
// xds/data/orca/v3/orca_load_report.proto and xds.data.orca.v3.* in the
// global protobuf registry, and the protobuf runtime panics at init on
// such a conflict. grpc-go's own interop client and server are built as
// separate binaries and link only theirs.
func TestNoBinaryLinksBothORCAProtoPackages(t *testing.T) {
	const theirs = "github.com/cncf/xds/go/xds/data/orca/v3"
	for _, pkg := range []string{"./server", "./client", "./matrix", "./attack"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == theirs {
				t.Errorf("%s links %s, which conflicts with our proto/xds/data/orca/v3", pkg, theirs)
			}
		}
	}
}

// TestORCACasesFailClearlyWithoutTheirPolicy checks that our client's
// ORCA cases do not pass on a channel that does not use the
// test_backend_metrics_load_balancer policy, and say why.
func TestORCACasesFailClearlyWithoutTheirPolicy(t *testing.T) {
	addr := startORCAServer(t)
	cc, err := newTestClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, name := range cases.ORCANames {
		ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
		err := cases.Run(ctx, name, &cases.Env{Conn: cc})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "test_backend_metrics_load_balancer") {
			t.Errorf("%s without the policy: %v, want an error naming the policy", name, err)
		}
	}
}
