package orca

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestOOBServiceNeedsAProvider(t *testing.T) {
	if _, err := NewService(ServiceOptions{}); err != ErrNoServerMetricsProvider {
		t.Fatalf("NewService without a provider: %v, want ErrNoServerMetricsProvider", err)
	}
}

func TestOOBServiceIntervalIsTheRequestedOneButNotBelowTheMinimum(t *testing.T) {
	smr := NewServerMetricsRecorder()
	def, err := NewService(ServiceOptions{ServerMetricsProvider: smr})
	if err != nil {
		t.Fatal(err)
	}
	short, err := NewService(ServiceOptions{ServerMetricsProvider: smr, MinReportInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	req := func(d *durationpb.Duration) *orcaservicev3.OrcaLoadReportRequest {
		return &orcaservicev3.OrcaLoadReportRequest{ReportInterval: d}
	}
	for _, tc := range []struct {
		name string
		svc  *Service
		req  *orcaservicev3.OrcaLoadReportRequest
		want time.Duration
	}{
		{"default minimum, none asked", def, req(nil), DefaultMinReportInterval},
		{"default minimum, less asked", def, req(durationpb.New(time.Second)), DefaultMinReportInterval},
		{"default minimum, more asked", def, req(durationpb.New(time.Minute)), time.Minute},
		{"1s minimum, none asked", short, req(nil), time.Second},
		{"1s minimum, 2s asked", short, req(durationpb.New(2 * time.Second)), 2 * time.Second},
		{"1s minimum, negative asked", short, req(&durationpb.Duration{Seconds: -5}), time.Second},
		{"1s minimum, invalid asked", short, req(&durationpb.Duration{Seconds: 1, Nanos: -1}), time.Second},
	} {
		if got := tc.svc.interval(tc.req); got != tc.want {
			t.Errorf("%s: interval %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOOBServiceStreamsTheServerMetricsUntilCancelled(t *testing.T) {
	smr := NewServerMetricsRecorder()
	smr.SetCPUUtilization(0.5)
	smr.SetNamedUtilization("u", 0.25)
	handlerDone := make(chan error, 1)
	addr := startServer(t, func(s *rpc.Server) {
		if err := Register(s, ServiceOptions{ServerMetricsProvider: smr, MinReportInterval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}, rpc.StreamInterceptor(func(srv any, ss rpc.ServerStream, info *rpc.StreamServerInfo, h rpc.StreamHandler) error {
		err := h(srv, ss)
		handlerDone <- err
		return err
	}))
	ctx, cancel := context.WithCancel(ctxWait(t))
	defer cancel()
	st, err := orcaservicev3.NewOpenRcaServiceClient(dial(t, addr)).StreamCoreMetrics(ctx,
		&orcaservicev3.OrcaLoadReportRequest{ReportInterval: durationpb.New(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if want := (&orcav3.OrcaLoadReport{CpuUtilization: 0.5, Utilization: map[string]float64{"u": 0.25}}); !proto.Equal(first, want) {
		t.Fatalf("first report %v, want %v", first, want)
	}

	// A change of the server's metrics shows in a later report.
	smr.SetCPUUtilization(0.75)
	want := &orcav3.OrcaLoadReport{CpuUtilization: 0.75, Utilization: map[string]float64{"u": 0.25}}
	for {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("waiting for %v: %v", want, err)
		}
		if proto.Equal(r, want) {
			break
		}
	}

	cancel()
	for {
		if _, err := st.Recv(); err != nil {
			if status.Code(err) != codes.Canceled {
				t.Fatalf("Recv after cancel: %v, want CANCELED", err)
			}
			break
		}
	}
	select {
	case err := <-handlerDone:
		if status.Code(err) != codes.Canceled {
			t.Errorf("handler returned %v, want CANCELED", err)
		}
	case <-time.After(longWait):
		t.Fatal("the handler did not return after the client cancelled")
	}
}
