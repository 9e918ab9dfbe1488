package orca

import (
	"errors"
	"time"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// DefaultMinReportInterval is the shortest interval at which the
// out-of-band service sends reports unless ServiceOptions sets another:
// a client asking for less gets this.
const DefaultMinReportInterval = 30 * time.Second

// ErrNoServerMetricsProvider is NewService's error when
// ServiceOptions.ServerMetricsProvider is nil.
var ErrNoServerMetricsProvider = errors.New("orca: ServiceOptions.ServerMetricsProvider is required")

// ServiceOptions configure the out-of-band service.
type ServiceOptions struct {
	// ServerMetricsProvider provides the metrics to report, usually a
	// ServerMetricsRecorder. Required.
	ServerMetricsProvider ServerMetricsProvider
	// MinReportInterval is the shortest interval between two reports on
	// a stream: a client that asks for less, or for nothing, gets this.
	// Zero or negative means DefaultMinReportInterval (30 s); tests set
	// less.
	MinReportInterval time.Duration
}

// Service is the out-of-band ORCA service,
// xds.service.orca.v3.OpenRcaService: on each StreamCoreMetrics stream it
// sends the provider's metrics at once, then once every interval, until
// the client cancels. It runs on the stream's handler goroutine only.
type Service struct {
	orcaservicev3.UnimplementedOpenRcaServiceServer

	smp         ServerMetricsProvider
	minInterval time.Duration
}

// NewService returns the service with opts.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.ServerMetricsProvider == nil {
		return nil, ErrNoServerMetricsProvider
	}
	minInterval := opts.MinReportInterval
	if minInterval <= 0 {
		minInterval = DefaultMinReportInterval
	}
	return &Service{smp: opts.ServerMetricsProvider, minInterval: minInterval}, nil
}

// Register registers the out-of-band service with opts on s.
func Register(s rpc.ServiceRegistrar, opts ServiceOptions) error {
	svc, err := NewService(opts)
	if err != nil {
		return err
	}
	orcaservicev3.RegisterOpenRcaServiceServer(s, svc)
	return nil
}

// interval is the report interval of a stream opened with req: what the
// client asked for, but not less than the service's minimum.
func (s *Service) interval(req *orcaservicev3.OrcaLoadReportRequest) time.Duration {
	d := req.GetReportInterval()
	if d == nil || d.CheckValid() != nil {
		return s.minInterval
	}
	return max(d.AsDuration(), s.minInterval)
}

// StreamCoreMetrics sends the server's metrics now and every interval
// until the stream's context ends. Out-of-band reports carry no request
// costs: those belong to single RPCs.
func (s *Service) StreamCoreMetrics(req *orcaservicev3.OrcaLoadReportRequest, stream rpc.ServerStreamingServer[orcav3.OrcaLoadReport]) error {
	ctx := stream.Context()
	t := time.NewTicker(s.interval(req))
	defer t.Stop()
	for {
		sm := s.smp.ServerMetrics()
		sm.RequestCost = nil
		if err := stream.Send(sm.LoadReport()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
}
