// Package orcalb is the load-balancing policy of the ORCA interop cases,
// "test_backend_metrics_load_balancer", as grpc-go's interop client
// defines it: pick_first, plus the backend metrics (ORCA) of each RPC
// handed to the caller. Importing it registers the policy; a channel uses
// it through its service config:
//
//	{"loadBalancingConfig": [{"test_backend_metrics_load_balancer": {}}]}
//
// A caller passes a Result in the RPC's context (NewContext); when the
// RPC ends, the policy fills it with the RPC's per-RPC load report if the
// server sent a non-empty one, and otherwise with the latest out-of-band
// report of the subchannel that carried it (listened to at a 1 s
// interval while the subchannel is READY).
package orcalb

import (
	"context"
	"fmt"
	"sync"
	"time"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/orca"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// Name is the policy's name in the service config.
const Name = "test_backend_metrics_load_balancer"

// childPolicy is the policy this one wraps; tests replace it.
var childPolicy = "pick_first"

// OOBReportInterval is the out-of-band report interval the policy asks
// for, as grpc-go's does.
const OOBReportInterval = time.Second

// registerOOBListener is orca.RegisterOOBListener; tests replace it.
var registerOOBListener = orca.RegisterOOBListener

func init() { balancer.Register(builder{}) }

// Result receives the load report of one RPC.
type Result struct {
	mu     sync.Mutex
	picked bool
	report *orcav3.OrcaLoadReport
}

// Picked reports whether the RPC was picked by this policy at all: false
// means the channel does not use it.
func (r *Result) Picked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.picked
}

// Report is the RPC's load report (see the package doc); nil when there
// was none.
func (r *Result) Report() *orcav3.OrcaLoadReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report
}

func (r *Result) set(lr *orcav3.OrcaLoadReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.picked = true
	if lr != nil {
		r.report = lr
	}
}

type resultKey struct{}

// NewContext returns ctx carrying r, for an RPC whose load report r is
// to receive.
func NewContext(ctx context.Context, r *Result) context.Context {
	return context.WithValue(ctx, resultKey{}, r)
}

func resultFrom(ctx context.Context) *Result {
	if ctx == nil {
		return nil
	}
	r, _ := ctx.Value(resultKey{}).(*Result)
	return r
}

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &lb{
		cc:      cc,
		stops:   map[balancer.SubConn]func(){},
		reports: map[balancer.SubConn]*orcav3.OrcaLoadReport{},
	}
	child := balancer.Get(childPolicy)
	if child == nil {
		return &noChild{cc: cc}
	}
	b.child = child.Build(&childConn{ClientConn: cc, lb: b}, opts)
	return b
}

// lb is the policy: pick_first (child) behind a ClientConn that watches
// its subchannels and wraps its pickers.
type lb struct {
	cc    balancer.ClientConn
	child balancer.Balancer

	// stops are the out-of-band listeners' stops, by READY subchannel.
	// Used only from the channel's serialized calls.
	stops map[balancer.SubConn]func()

	mu      sync.Mutex // guards reports, written by the OOB listeners
	reports map[balancer.SubConn]*orcav3.OrcaLoadReport
}

func (b *lb) UpdateClientConnState(s balancer.ClientConnState) error {
	return b.child.UpdateClientConnState(s)
}

func (b *lb) ResolverError(err error) { b.child.ResolverError(err) }

func (b *lb) ExitIdle() { b.child.ExitIdle() }

func (b *lb) Close() {
	for sc, stop := range b.stops {
		stop()
		delete(b.stops, sc)
	}
	b.child.Close()
}

// subConnState follows sc's state: an out-of-band listener while it is
// READY, its last report forgotten at SHUTDOWN.
func (b *lb) subConnState(sc balancer.SubConn, s balancer.SubConnState) {
	if stop := b.stops[sc]; stop != nil {
		stop()
		delete(b.stops, sc)
	}
	switch s.ConnectivityState {
	case connectivity.Ready:
		b.stops[sc] = registerOOBListener(sc, &oobListener{lb: b, sc: sc}, orca.OOBListenerOptions{ReportInterval: OOBReportInterval})
	case connectivity.Shutdown:
		b.mu.Lock()
		delete(b.reports, sc)
		b.mu.Unlock()
	}
}

// oobListener keeps the latest out-of-band report of one subchannel.
type oobListener struct {
	lb *lb
	sc balancer.SubConn
}

func (l *oobListener) OnLoadReport(r *orcav3.OrcaLoadReport) {
	l.lb.mu.Lock()
	l.lb.reports[l.sc] = r
	l.lb.mu.Unlock()
}

func (b *lb) oobReport(sc balancer.SubConn) *orcav3.OrcaLoadReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reports[sc]
}

// childConn is the ClientConn pick_first sees.
type childConn struct {
	balancer.ClientConn
	lb *lb
}

func (c *childConn) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	var sc balancer.SubConn // set before the channel calls the listener
	inner := opts.StateListener
	opts.StateListener = func(s balancer.SubConnState) {
		c.lb.subConnState(sc, s)
		if inner != nil {
			inner(s)
		}
	}
	sc, err := c.ClientConn.NewSubConn(addrs, opts)
	return sc, err
}

func (c *childConn) UpdateState(s balancer.State) {
	if s.Picker != nil {
		s.Picker = &picker{child: s.Picker, lb: c.lb}
	}
	c.ClientConn.UpdateState(s)
}

// picker is pick_first's picker, reporting each RPC's load report.
type picker struct {
	child balancer.Picker
	lb    *lb
}

func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	res, err := p.child.Pick(info)
	if err != nil {
		return res, err
	}
	r := resultFrom(info.Ctx)
	if r == nil {
		return res, nil
	}
	oob := p.lb.oobReport(res.SubConn)
	done := res.Done
	res.Done = func(di balancer.DoneInfo) {
		perRPC, _ := di.ServerLoad.(*orcav3.OrcaLoadReport)
		if hasLoad(perRPC) {
			r.set(perRPC)
		} else {
			r.set(oob)
		}
		if done != nil {
			done(di)
		}
	}
	return res, nil
}

// hasLoad reports whether a per-RPC report says anything the cases look
// at (a server may send an empty one).
func hasLoad(r *orcav3.OrcaLoadReport) bool {
	return r != nil && (r.GetCpuUtilization() != 0 || r.GetMemUtilization() != 0 ||
		len(r.GetUtilization()) > 0 || len(r.GetRequestCost()) > 0)
}

// noChild is the policy when pick_first is not registered: it fails
// every RPC saying so.
type noChild struct{ cc balancer.ClientConn }

func (n *noChild) err() error {
	return fmt.Errorf("orcalb: the %s policy needs %s, which is not registered", Name, childPolicy)
}

func (n *noChild) UpdateClientConnState(balancer.ClientConnState) error {
	n.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{n.err()}})
	return n.err()
}
func (n *noChild) ResolverError(error) {}
func (n *noChild) ExitIdle()           {}
func (n *noChild) Close()              {}

type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
