package service

import (
	"context"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/orca"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// RegisterWithMetrics registers a TestServer that reports backend metrics
// (ORCA) as the orca_per_rpc and orca_oob cases ask, and the
// OpenRcaService that streams them out of band, sending reports no more
// often than minReportInterval. The server must also have been built
// with orca.CallMetricsServerOptions for the per-RPC reports of
// orca_per_rpc.
func RegisterWithMetrics(s rpc.ServiceRegistrar, minReportInterval time.Duration) error {
	metrics := orca.NewServerMetricsRecorder()
	if err := orca.Register(s, orca.ServiceOptions{ServerMetricsProvider: metrics, MinReportInterval: minReportInterval}); err != nil {
		return err
	}
	testpb.RegisterTestServiceServer(s, &TestServer{metrics: metrics})
	return nil
}

// recordCallMetrics records a SimpleRequest's orca_per_query_report on
// its RPC's call metrics recorder, when it has both.
func recordCallMetrics(ctx context.Context, in *testpb.SimpleRequest) {
	r := in.GetOrcaPerQueryReport()
	if r == nil {
		return
	}
	rec := orca.CallMetricsRecorderFromContext(ctx)
	if rec == nil {
		return
	}
	recordORCA(rec, r)
	for k, v := range r.GetRequestCost() {
		rec.SetRequestCost(k, v)
	}
}

// recordServerMetrics records a StreamingOutputCallRequest's
// orca_oob_report on the server's metrics, reported out of band, when the
// server has them.
func (s *TestServer) recordServerMetrics(in *testpb.StreamingOutputCallRequest) {
	if r := in.GetOrcaOobReport(); r != nil && s.metrics != nil {
		recordORCA(s.metrics, r)
	}
}

// recordORCA records the utilizations of a TestOrcaReport.
func recordORCA(rec orca.ServerMetricsRecorder, r *testpb.TestOrcaReport) {
	rec.SetCPUUtilization(r.GetCpuUtilization())
	rec.SetMemoryUtilization(r.GetMemoryUtilization())
	for k, v := range r.GetUtilization() {
		rec.SetNamedUtilization(k, v)
	}
}
