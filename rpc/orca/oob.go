package orca

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// OOBListener receives the out-of-band load reports of one subchannel.
type OOBListener interface {
	// OnLoadReport is called with each report of the subchannel, one at
	// a time, on a goroutine of this package (one per subchannel). The
	// report is the listener's to keep.
	OnLoadReport(*orcav3.OrcaLoadReport)
}

// OOBListenerOptions configure an OOBListener's registration.
type OOBListenerOptions struct {
	// ReportInterval is how often the listener wants a report. The
	// server may send less often (its minimum is 30 s by default), and
	// the listeners of one subchannel share one stream at the shortest
	// interval any of them asked for. Zero asks for the server's
	// minimum.
	ReportInterval time.Duration
}

// subConnStreamFunc opens a stream on one subchannel, bypassing the
// channel's picker: rpc.NewSubConnStream.
type subConnStreamFunc func(ctx context.Context, sc balancer.SubConn, desc *rpc.StreamDesc, method string, opts ...rpc.CallOption) (rpc.ClientStream, error)

// newSubConnStream opens the out-of-band streams; tests replace it.
var newSubConnStream subConnStreamFunc = rpc.NewSubConnStream

// The out-of-band stream's retry backoff (gRPC connection backoff):
// streams that end are reopened after it; one that delivered a report
// starts again from the base.
var (
	oobBackoffBase = time.Second
	oobBackoffMax  = 120 * time.Second
)

// oobLogger logs why out-of-band streams end.
var oobLogger = slog.Default()

// oobRunning counts the producers' goroutines, for tests.
var oobRunning sync.WaitGroup

// RegisterOOBListener makes l receive sc's out-of-band load reports,
// until stop is called: it opens an OpenRcaService.StreamCoreMetrics
// stream on sc (shared with the other listeners of sc) and, while
// registered, reopens it after a backoff whenever it ends, unless the
// server does not serve the service (UNIMPLEMENTED). Call it when sc
// turns READY and stop when it leaves READY, from the subchannel's state
// listener. stop does not wait: a report being delivered when it is
// called may still reach l. stop may be called more than once.
func RegisterOOBListener(sc balancer.SubConn, l OOBListener, opts OOBListenerOptions) (stop func()) {
	reg := &oobRegistration{l: l, interval: max(opts.ReportInterval, 0)}
	producersMu.Lock()
	p := producers[sc]
	if p == nil {
		ctx, cancel := context.WithCancel(context.Background())
		p = &oobProducer{sc: sc, cancel: cancel, regs: map[*oobRegistration]struct{}{}}
		producers[sc] = p
		p.regs[reg] = struct{}{}
		p.want = reg.interval
		oobRunning.Add(1)
		go p.run(ctx)
	} else {
		p.regs[reg] = struct{}{}
		p.retune()
	}
	producersMu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			producersMu.Lock()
			defer producersMu.Unlock()
			delete(p.regs, reg)
			if len(p.regs) == 0 {
				delete(producers, sc)
				p.cancel()
				return
			}
			p.retune()
		})
	}
}

// oobRegistration is one RegisterOOBListener call.
type oobRegistration struct {
	l        OOBListener
	interval time.Duration
}

var (
	producersMu sync.Mutex
	// producers has the producer of each subchannel that has listeners.
	producers = map[balancer.SubConn]*oobProducer{}
)

// oobProducer runs the out-of-band stream of one subchannel for its
// listeners, on one goroutine (run).
type oobProducer struct {
	sc     balancer.SubConn
	cancel context.CancelFunc // ends run

	// Guarded by producersMu.
	regs         map[*oobRegistration]struct{}
	want         time.Duration      // the shortest interval of regs
	streamCancel context.CancelFunc // ends the current stream; nil between streams
}

// retune recomputes the interval the listeners want and, when it
// changed, ends the current stream so that run opens one with the new
// interval. Called with producersMu held.
func (p *oobProducer) retune() {
	first := true
	var want time.Duration
	for r := range p.regs {
		if first || r.interval < want {
			want, first = r.interval, false
		}
	}
	if want == p.want {
		return
	}
	p.want = want
	if p.streamCancel != nil {
		p.streamCancel()
	}
}

// run keeps a stream open until ctx ends.
func (p *oobProducer) run(ctx context.Context) {
	defer oobRunning.Done()
	backoff := oobBackoffBase
	for {
		producersMu.Lock()
		interval := p.want
		sctx, cancel := context.WithCancel(ctx)
		p.streamCancel = cancel
		producersMu.Unlock()

		delivered, err := p.stream(sctx, interval)

		producersMu.Lock()
		retuned := p.want != interval
		p.streamCancel = nil
		producersMu.Unlock()
		cancel()

		switch {
		case ctx.Err() != nil:
			return
		case retuned:
			continue // a listener wants another interval: reopen now
		case status.Code(err) == codes.Unimplemented:
			oobLogger.Warn("orca: the server does not serve out-of-band load reports", "addresses", p.sc.Addresses(), "error", err)
			return
		}
		if delivered {
			backoff = oobBackoffBase
		}
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(time.Duration(float64(backoff)*1.6), oobBackoffMax)
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// stream runs one StreamCoreMetrics stream until it fails or ctx ends,
// delivering every report; delivered says whether any arrived.
func (p *oobProducer) stream(ctx context.Context, interval time.Duration) (delivered bool, err error) {
	desc := &orcaservicev3.OpenRcaService_ServiceDesc.Streams[0]
	cs, err := newSubConnStream(ctx, p.sc, desc, orcaservicev3.OpenRcaService_StreamCoreMetrics_FullMethodName)
	if err != nil {
		return false, err
	}
	req := &orcaservicev3.OrcaLoadReportRequest{}
	if interval > 0 {
		req.ReportInterval = durationpb.New(interval)
	}
	// io.EOF: the stream ended already; RecvMsg says how.
	if err := cs.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if err := cs.CloseSend(); err != nil {
		return false, err
	}
	for {
		r := new(orcav3.OrcaLoadReport)
		if err := cs.RecvMsg(r); err != nil {
			return delivered, err
		}
		delivered = true
		producersMu.Lock()
		ls := make([]OOBListener, 0, len(p.regs))
		for reg := range p.regs {
			ls = append(ls, reg.l)
		}
		producersMu.Unlock()
		for i, l := range ls {
			m := r
			if i < len(ls)-1 {
				m = proto.Clone(r).(*orcav3.OrcaLoadReport)
			}
			l.OnLoadReport(m)
		}
	}
}
