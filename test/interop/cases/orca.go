package cases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/test/interop/orcalb"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// ORCANames are the backend-metrics cases. They need the channel's
// load-balancing policy to be orcalb.Name (ORCAServiceConfig), which
// reads the load reports; they are not in Names.
var ORCANames = []string{"orca_per_rpc", "orca_oob"}

// ORCAServiceConfig is the service config the ORCA cases need, what
// grpc-go's interop tests pass in --service_config_json.
const ORCAServiceConfig = `{"loadBalancingConfig": [{"test_backend_metrics_load_balancer": {}}]}`

// errNoORCAPolicy is the error of an ORCA case whose RPC did not go
// through the orcalb policy.
var errNoORCAPolicy = errors.New("the RPC was not picked by the " + orcalb.Name +
	" policy: the channel must use it (service config " + ORCAServiceConfig + ")")

// orcaTimeout bounds each ORCA case, as in grpc-go's client.
const orcaTimeout = 30 * time.Second

// orcaUnary makes a UnaryCall of in and returns the load report the
// policy gave it.
func orcaUnary(ctx context.Context, env *Env, in *testpb.SimpleRequest) (*orcav3.OrcaLoadReport, error) {
	var r orcalb.Result
	if _, err := client(env).UnaryCall(orcalb.NewContext(ctx, &r), in); err != nil {
		return nil, fmt.Errorf("UnaryCall: %w", err)
	}
	if !r.Picked() {
		return nil, errNoORCAPolicy
	}
	return r.Report(), nil
}

// orcaPerRPC: the server attaches the load report the request carries to
// the call, and the policy gets it.
func orcaPerRPC(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, orcaTimeout)
	defer cancel()
	got, err := orcaUnary(ctx, env, &testpb.SimpleRequest{OrcaPerQueryReport: &testpb.TestOrcaReport{
		CpuUtilization:    0.8210,
		MemoryUtilization: 0.5847,
		RequestCost:       map[string]float64{"cost": 3456.32},
		Utilization:       map[string]float64{"util": 0.30499},
	}})
	if err != nil {
		return err
	}
	want := &orcav3.OrcaLoadReport{
		CpuUtilization: 0.8210,
		MemUtilization: 0.5847,
		RequestCost:    map[string]float64{"cost": 3456.32},
		Utilization:    map[string]float64{"util": 0.30499},
	}
	if !proto.Equal(got, want) {
		return fmt.Errorf("the call's load report is %v, want %v", got, want)
	}
	return nil
}

// orcaOOB: the server publishes the load reports a FullDuplexCall's
// requests carry out of band, and the policy gets each in turn.
func orcaOOB(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, orcaTimeout)
	defer cancel()
	stream, err := client(env).FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %w", err)
	}
	defer stream.CloseSend()
	for _, r := range []*testpb.TestOrcaReport{
		{CpuUtilization: 0.8210, MemoryUtilization: 0.5847, Utilization: map[string]float64{"util": 0.30499}},
		{CpuUtilization: 0.29309, MemoryUtilization: 0.2, Utilization: map[string]float64{"util": 0.2039}},
	} {
		req := &testpb.StreamingOutputCallRequest{OrcaOobReport: r, ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("FullDuplexCall: Send: %w", err)
		}
		if _, err := stream.Recv(); err != nil {
			return fmt.Errorf("FullDuplexCall: Recv: %w", err)
		}
		want := &orcav3.OrcaLoadReport{CpuUtilization: r.CpuUtilization, MemUtilization: r.MemoryUtilization, Utilization: r.Utilization}
		if err := awaitOOBReport(ctx, env, want); err != nil {
			return err
		}
	}
	return nil
}

// awaitOOBReport makes a UnaryCall every second until the policy hands
// one the out-of-band report want.
func awaitOOBReport(ctx context.Context, env *Env, want *orcav3.OrcaLoadReport) error {
	var last *orcav3.OrcaLoadReport
	for {
		got, err := orcaUnary(ctx, env, &testpb.SimpleRequest{})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if proto.Equal(got, want) {
			return nil
		}
		last = got
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("no out-of-band load report %v within %v (last %v)", want, orcaTimeout, last)
		case <-t.C:
		}
	}
	return fmt.Errorf("no out-of-band load report %v within %v (last %v)", want, orcaTimeout, last)
}
