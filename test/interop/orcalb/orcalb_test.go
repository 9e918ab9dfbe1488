package orcalb

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/orca"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeSubConn struct{ listener func(balancer.SubConnState) }

func (*fakeSubConn) Connect()                      {}
func (*fakeSubConn) Shutdown()                     {}
func (*fakeSubConn) Addresses() []resolver.Address { return nil }

// fakeConn is the channel.
type fakeConn struct {
	subConns []*fakeSubConn
	state    balancer.State
}

func (c *fakeConn) NewSubConn(_ []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	sc := &fakeSubConn{listener: opts.StateListener}
	c.subConns = append(c.subConns, sc)
	return sc, nil
}
func (c *fakeConn) UpdateState(s balancer.State)          { c.state = s }
func (c *fakeConn) ResolveNow(resolver.ResolveNowOptions) {}
func (c *fakeConn) Target() string                        { return "fake" }

// childBuilder is a one-subchannel pick_first stand-in whose picks'
// Done count calls.
type childBuilder struct{ doneCalls *int }

func (childBuilder) Name() string { return "orcalb_test_child" }
func (b childBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &child{cc: cc, doneCalls: b.doneCalls}
}

type child struct {
	cc        balancer.ClientConn
	doneCalls *int
}

func (c *child) UpdateClientConnState(s balancer.ClientConnState) error {
	var sc balancer.SubConn
	sc, err := c.cc.NewSubConn(s.ResolverState.Addresses, balancer.NewSubConnOptions{StateListener: func(st balancer.SubConnState) {
		c.cc.UpdateState(balancer.State{ConnectivityState: st.ConnectivityState, Picker: pickOne{sc, c.doneCalls}})
	}})
	return err
}
func (c *child) ResolverError(error) {}
func (c *child) ExitIdle()           {}
func (c *child) Close()              {}

type pickOne struct {
	sc        balancer.SubConn
	doneCalls *int
}

func (p pickOne) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc, Done: func(balancer.DoneInfo) { *p.doneCalls++ }}, nil
}

// oobRegs records registerOOBListener calls.
type oobRegs struct {
	listeners map[balancer.SubConn]orca.OOBListener
	intervals []orca.OOBListenerOptions
	stopped   int
}

func useFakes(t *testing.T) (*oobRegs, *int) {
	regs := &oobRegs{listeners: map[balancer.SubConn]orca.OOBListener{}}
	var doneCalls int
	balancer.Register(childBuilder{&doneCalls})
	oldChild, oldReg := childPolicy, registerOOBListener
	childPolicy = childBuilder{}.Name()
	registerOOBListener = func(sc balancer.SubConn, l orca.OOBListener, opts orca.OOBListenerOptions) func() {
		regs.listeners[sc] = l
		regs.intervals = append(regs.intervals, opts)
		return func() { regs.stopped++; delete(regs.listeners, sc) }
	}
	t.Cleanup(func() { childPolicy, registerOOBListener = oldChild, oldReg })
	return regs, &doneCalls
}

// pick picks an RPC carrying a Result and ends it with di.
func pick(t *testing.T, p balancer.Picker, di balancer.DoneInfo) *Result {
	t.Helper()
	r := new(Result)
	res, err := p.Pick(balancer.PickInfo{FullMethodName: "/grpc.testing.TestService/UnaryCall", Ctx: NewContext(context.Background(), r)})
	if err != nil {
		t.Fatal(err)
	}
	res.Done(di)
	return r
}

func TestPolicyReportsPerRPCLoadElseTheLatestOOBReport(t *testing.T) {
	regs, doneCalls := useFakes(t)
	cc := &fakeConn{}
	b := balancer.Get(Name).Build(cc, balancer.BuildOptions{})
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Addresses: []resolver.Address{{Addr: "127.0.0.1:1"}}}}); err != nil {
		t.Fatal(err)
	}
	if len(cc.subConns) != 1 {
		t.Fatalf("%d subchannels, want 1", len(cc.subConns))
	}
	sc := cc.subConns[0]
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	l := regs.listeners[sc]
	if l == nil {
		t.Fatal("no out-of-band listener on the READY subchannel")
	}
	if got := regs.intervals[0].ReportInterval; got != OOBReportInterval {
		t.Errorf("out-of-band interval %v, want %v", got, OOBReportInterval)
	}
	if cc.state.ConnectivityState != connectivity.Ready || cc.state.Picker == nil {
		t.Fatalf("channel state %v, want READY with a picker", cc.state)
	}

	// No report yet: the RPC was picked, with nothing to report.
	r := pick(t, cc.state.Picker, balancer.DoneInfo{})
	if !r.Picked() || r.Report() != nil {
		t.Errorf("before any report: picked %v, report %v; want picked, none", r.Picked(), r.Report())
	}
	oob := &orcav3.OrcaLoadReport{CpuUtilization: 0.5}
	l.OnLoadReport(oob)
	if got := pick(t, cc.state.Picker, balancer.DoneInfo{ServerLoad: &orcav3.OrcaLoadReport{}}).Report(); !proto.Equal(got, oob) {
		t.Errorf("with an empty per-RPC report: %v, want the out-of-band %v", got, oob)
	}
	perRPC := &orcav3.OrcaLoadReport{MemUtilization: 0.25, RequestCost: map[string]float64{"c": 1}}
	if got := pick(t, cc.state.Picker, balancer.DoneInfo{ServerLoad: perRPC}).Report(); !proto.Equal(got, perRPC) {
		t.Errorf("with a per-RPC report: %v, want it", got)
	}
	if *doneCalls != 3 {
		t.Errorf("pick_first's Done ran %d times, want 3", *doneCalls)
	}

	// Leaving READY stops the listener; SHUTDOWN forgets the report.
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Idle})
	if regs.stopped != 1 || regs.listeners[sc] != nil {
		t.Errorf("after IDLE: %d stops, listener %v; want 1 stop, none", regs.stopped, regs.listeners[sc])
	}
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Shutdown})
	if got := b.(*lb).oobReport(sc); got != nil {
		t.Errorf("report after SHUTDOWN %v, want none", got)
	}
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	b.Close()
	if regs.stopped != 3 || len(regs.listeners) != 0 {
		t.Errorf("after Close: %d stops, %d listeners; want 3, 0", regs.stopped, len(regs.listeners))
	}
}

func TestPolicyWithoutPickFirstFailsRPCs(t *testing.T) {
	old := childPolicy
	childPolicy = "orcalb_test_missing"
	t.Cleanup(func() { childPolicy = old })
	cc := &fakeConn{}
	b := balancer.Get(Name).Build(cc, balancer.BuildOptions{})
	if err := b.UpdateClientConnState(balancer.ClientConnState{}); err == nil {
		t.Error("UpdateClientConnState succeeded without a child policy")
	}
	if cc.state.ConnectivityState != connectivity.TransientFailure {
		t.Fatalf("state %v, want TRANSIENT_FAILURE", cc.state.ConnectivityState)
	}
	if _, err := cc.state.Picker.Pick(balancer.PickInfo{Ctx: context.Background()}); err == nil || errors.Is(err, balancer.ErrNoSubConnAvailable) {
		t.Errorf("Pick error %v, want one naming the missing policy", err)
	}
}
