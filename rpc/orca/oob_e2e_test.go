package orca

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
)

// oobPolicy is a test policy: one subchannel over all addresses whose
// out-of-band reports go to oobReports while it is READY.
const oobPolicy = "test_orca_oob"

var oobReports = make(chanListener, 16)

// droppingListener passes reports to a channel, dropping those that do
// not fit: a full channel must not keep the producer from stopping.
type droppingListener chanListener

func (l droppingListener) OnLoadReport(r *orcav3.OrcaLoadReport) {
	select {
	case l <- r:
	default:
	}
}

type oobBuilder struct{}

func init() { balancer.Register(oobBuilder{}) }

func (oobBuilder) Name() string { return oobPolicy }
func (oobBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &oobBalancer{cc: cc}
}

type oobBalancer struct {
	cc balancer.ClientConn
	sc balancer.SubConn

	mu   sync.Mutex
	stop func() // while READY
}

func (b *oobBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if b.sc != nil {
		return nil
	}
	var err error
	b.sc, err = b.cc.NewSubConn(s.ResolverState.Addresses, balancer.NewSubConnOptions{StateListener: b.listen})
	if err != nil {
		return err
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: oobPicker{}})
	b.sc.Connect()
	return nil
}

func (b *oobBalancer) listen(st balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.ConnectivityState == connectivity.Ready {
		if b.stop == nil {
			b.stop = RegisterOOBListener(b.sc, droppingListener(oobReports), OOBListenerOptions{ReportInterval: time.Millisecond})
		}
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: oobPicker{b.sc}})
		return
	}
	b.stopLocked()
	if st.ConnectivityState == connectivity.Idle {
		b.sc.Connect()
	}
}

func (b *oobBalancer) stopLocked() {
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
}

func (b *oobBalancer) ResolverError(error) {}
func (b *oobBalancer) ExitIdle()           {}
func (b *oobBalancer) Close() {
	b.mu.Lock()
	b.stopLocked()
	b.mu.Unlock()
}

type oobPicker struct{ sc balancer.SubConn }

func (p oobPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	if p.sc == nil {
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	return balancer.PickResult{SubConn: p.sc}, nil
}

// TestOOBListenerThroughAChannel: a balancer of a real ClientConn that
// registers a listener on its READY subchannel gets the server's
// out-of-band reports over the subchannel's own connection.
func TestOOBListenerThroughAChannel(t *testing.T) {
	smr := NewServerMetricsRecorder()
	smr.SetCPUUtilization(0.25)
	smr.SetNamedUtilization("queue", 0.5)
	addr := startServer(t, func(s *rpc.Server) {
		if err := Register(s, ServiceOptions{ServerMetricsProvider: smr, MinReportInterval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		echov1.RegisterEchoServer(s, &echoService{})
	})
	t.Cleanup(oobRunning.Wait) // after the channel's Close, which stops the listener
	cc, err := newTestClient(addr, rpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"`+oobPolicy+`": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	// A call wakes the channel up and proves the picker works.
	if _, err := echov1.NewEchoClient(cc).Unary(ctxWait(t), &echov1.EchoRequest{}, rpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	want := &orcav3.OrcaLoadReport{CpuUtilization: 0.25, Utilization: map[string]float64{"queue": 0.5}}
	if r := recvReport(t, oobReports); !proto.Equal(r, want) {
		t.Fatalf("first report %v, want %v", r, want)
	}
	smr.SetCPUUtilization(0.75)
	want.CpuUtilization = 0.75
	for r := recvReport(t, oobReports); !proto.Equal(r, want); r = recvReport(t, oobReports) {
	}
}
