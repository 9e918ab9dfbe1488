package orca

import (
	"context"
	"errors"
	"io"
	"math"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// record records the metrics of wantReport on r.
func record(r CallMetricsRecorder) {
	r.SetCPUUtilization(0.8210)
	r.SetMemoryUtilization(0.5847)
	r.SetApplicationUtilization(1.5)
	r.SetQPS(120)
	r.SetEPS(2.5)
	r.SetRequestCost("cost", 3456.32)
	r.SetNamedUtilization("util", 0.30499)
	r.SetNamedMetric("queue", 7)
}

func wantReport() *orcav3.OrcaLoadReport {
	return &orcav3.OrcaLoadReport{
		CpuUtilization:         0.8210,
		MemUtilization:         0.5847,
		ApplicationUtilization: 1.5,
		RpsFractional:          120,
		Eps:                    2.5,
		RequestCost:            map[string]float64{"cost": 3456.32},
		Utilization:            map[string]float64{"util": 0.30499},
		NamedMetrics:           map[string]float64{"queue": 7},
	}
}

// unaryTrailer makes one Unary call and returns its trailer and error.
func unaryTrailer(t *testing.T, addr string) (metadata.MD, error) {
	t.Helper()
	var tr metadata.MD
	_, err := echov1.NewEchoClient(dial(t, addr)).Unary(ctxWait(t), &echov1.EchoRequest{Message: "hi"}, rpc.Trailer(&tr))
	return tr, err
}

func mustParse(t *testing.T, tr metadata.MD) *orcav3.OrcaLoadReport {
	t.Helper()
	got, err := ParseLoadReport(tr)
	if err != nil {
		t.Fatalf("ParseLoadReport(%v): %v", tr, err)
	}
	if got == nil {
		t.Fatalf("trailer %v has no %s", tr, TrailerKey)
	}
	return got
}

func TestUnaryCallMetricsReachTheClientInTheTrailer(t *testing.T) {
	svc := &echoService{unary: func(ctx context.Context) error {
		record(CallMetricsRecorderFromContext(ctx))
		return nil
	}}
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, svc) }, CallMetricsServerOptions(nil)...)
	tr, err := unaryTrailer(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, tr); !proto.Equal(got, wantReport()) {
		t.Errorf("report %v, want %v", got, wantReport())
	}
	// The balancer hook sees the same report.
	got, ok := balancer.ParseServerLoad(tr).(*orcav3.OrcaLoadReport)
	if !ok || !proto.Equal(got, wantReport()) {
		t.Errorf("balancer.ParseServerLoad = %v, want %v", balancer.ParseServerLoad(tr), wantReport())
	}
}

func TestStreamCallMetricsReachTheClientInTheTrailer(t *testing.T) {
	svc := &echoService{chat: func(ctx context.Context) error {
		record(CallMetricsRecorderFromContext(ctx))
		return nil
	}}
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, svc) }, CallMetricsServerOptions(nil)...)
	st, err := echov1.NewEchoClient(dial(t, addr)).Chat(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&echov1.EchoRequest{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if got := mustParse(t, st.Trailer()); !proto.Equal(got, wantReport()) {
		t.Errorf("report %v, want %v", got, wantReport())
	}
}

func TestCallMetricsAreSentWhenTheHandlerFails(t *testing.T) {
	svc := &echoService{unary: func(ctx context.Context) error {
		CallMetricsRecorderFromContext(ctx).SetCPUUtilization(0.5)
		return status.Error(codes.ResourceExhausted, "busy")
	}}
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, svc) }, CallMetricsServerOptions(nil)...)
	tr, err := unaryTrailer(t, addr)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call error %v, want RESOURCE_EXHAUSTED", err)
	}
	if got, want := mustParse(t, tr), (&orcav3.OrcaLoadReport{CpuUtilization: 0.5}); !proto.Equal(got, want) {
		t.Errorf("report %v, want %v", got, want)
	}
}

func TestNoCallMetricsRecorderWithoutTheServerOptions(t *testing.T) {
	var rec CallMetricsRecorder
	svc := &echoService{unary: func(ctx context.Context) error {
		rec = CallMetricsRecorderFromContext(ctx)
		return nil
	}}
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, svc) })
	tr, err := unaryTrailer(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if rec != nil {
		t.Errorf("CallMetricsRecorderFromContext = %v without CallMetricsServerOptions, want nil", rec)
	}
	if v, ok := tr[TrailerKey]; ok {
		t.Errorf("trailer has %s = %q, want none", TrailerKey, v)
	}
	if got := balancer.ParseServerLoad(tr); got != nil {
		t.Errorf("balancer.ParseServerLoad = %#v, want nil", got)
	}
}

func TestNoTrailerWhenTheHandlerRecordsNothing(t *testing.T) {
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, &echoService{}) }, CallMetricsServerOptions(nil)...)
	tr, err := unaryTrailer(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := tr[TrailerKey]; ok {
		t.Errorf("trailer has %s = %q, want none", TrailerKey, v)
	}
}

func TestCallMetricsOverrideTheServerMetricsProvider(t *testing.T) {
	smr := NewServerMetricsRecorder()
	smr.SetCPUUtilization(0.1)
	smr.SetMemoryUtilization(0.2)
	smr.SetNamedUtilization("a", 0.3)
	smr.SetNamedUtilization("b", 0.4)
	var handlerRecords atomic.Bool
	svc := &echoService{unary: func(ctx context.Context) error {
		if handlerRecords.Load() {
			r := CallMetricsRecorderFromContext(ctx)
			r.SetCPUUtilization(0.9)
			r.SetNamedUtilization("b", 0.8)
			r.SetRequestCost("c", 5)
		}
		return nil
	}}
	addr := startServer(t, func(s *rpc.Server) { echov1.RegisterEchoServer(s, svc) }, CallMetricsServerOptions(smr)...)

	// The handler records nothing: the server's metrics go anyway.
	tr, err := unaryTrailer(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	want := &orcav3.OrcaLoadReport{CpuUtilization: 0.1, MemUtilization: 0.2, Utilization: map[string]float64{"a": 0.3, "b": 0.4}}
	if got := mustParse(t, tr); !proto.Equal(got, want) {
		t.Errorf("report without call metrics %v, want %v", got, want)
	}

	handlerRecords.Store(true)
	tr, err = unaryTrailer(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	want = &orcav3.OrcaLoadReport{CpuUtilization: 0.9, MemUtilization: 0.2,
		Utilization: map[string]float64{"a": 0.3, "b": 0.8}, RequestCost: map[string]float64{"c": 5}}
	if got := mustParse(t, tr); !proto.Equal(got, want) {
		t.Errorf("report with call metrics %v, want %v", got, want)
	}
	// The call's metrics did not leak into the server's.
	if sm := smr.ServerMetrics(); sm.CPUUtilization != 0.1 || sm.Utilization["b"] != 0.4 || len(sm.RequestCost) != 0 {
		t.Errorf("server metrics after the call %+v, want them unchanged", sm)
	}
}

func TestRecorderIgnoresValuesOutOfRangeAndForgetsDeleted(t *testing.T) {
	r := (&callContext{Context: context.Background()}).recorder()
	record(r)
	for _, v := range []float64{-1, math.NaN(), math.Inf(1)} {
		r.SetCPUUtilization(v)
		r.SetApplicationUtilization(v)
		r.SetQPS(v)
		r.SetEPS(v)
	}
	r.SetMemoryUtilization(1.5)
	r.SetNamedUtilization("util", 2)
	r.SetRequestCost("cost", math.NaN())
	if got := r.ServerMetrics().LoadReport(); !proto.Equal(got, wantReport()) {
		t.Errorf("after out-of-range values: %v, want the previous values %v", got, wantReport())
	}
	r.DeleteCPUUtilization()
	r.DeleteMemoryUtilization()
	r.DeleteApplicationUtilization()
	r.DeleteQPS()
	r.DeleteEPS()
	r.DeleteNamedUtilization("util")
	r.DeleteRequestCost("cost")
	r.DeleteNamedMetric("queue")
	sm := r.ServerMetrics()
	if sm.CPUUtilization != Unset || sm.MemUtilization != Unset || sm.AppUtilization != Unset || sm.QPS != Unset || sm.EPS != Unset {
		t.Errorf("deleted metrics %+v, want Unset", sm)
	}
	if got := sm.LoadReport(); !proto.Equal(got, &orcav3.OrcaLoadReport{}) {
		t.Errorf("report after deleting everything %v, want empty", got)
	}
}

func TestParseLoadReportRejectsMalformedTrailers(t *testing.T) {
	good, err := proto.Marshal(wantReport())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		md   metadata.MD
	}{
		{"not a report", metadata.MD{TrailerKey: {"\xff\xff\xff"}}},
		{"two values", metadata.MD{TrailerKey: {string(good), string(good)}}},
	} {
		r, err := ParseLoadReport(tc.md)
		if !errors.Is(err, ErrMalformedLoadReport) || r != nil {
			t.Errorf("%s: ParseLoadReport = %v, %v; want nil and ErrMalformedLoadReport", tc.name, r, err)
		}
		if got := balancer.ParseServerLoad(tc.md); got != nil {
			t.Errorf("%s: balancer.ParseServerLoad = %#v, want nil", tc.name, got)
		}
	}
	r, err := ParseLoadReport(metadata.MD{"other": {"x"}})
	if r != nil || err != nil {
		t.Errorf("ParseLoadReport without the key = %v, %v; want nil, nil", r, err)
	}
}
