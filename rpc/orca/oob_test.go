package orca

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// fakeSubConn is a subchannel nobody connects.
type fakeSubConn struct{ addr string }

func (*fakeSubConn) Connect()                         {}
func (*fakeSubConn) Shutdown()                        {}
func (sc *fakeSubConn) Addresses() []resolver.Address { return []resolver.Address{{Addr: sc.addr}} }

// chanListener passes reports to a channel.
type chanListener chan *orcav3.OrcaLoadReport

func (l chanListener) OnLoadReport(r *orcav3.OrcaLoadReport) { l <- r }

// useStreams makes RegisterOOBListener open its streams with f until the
// test ends, and then waits for the producers' goroutines to end.
func useStreams(t *testing.T, f subConnStreamFunc) {
	old := newSubConnStream
	newSubConnStream = f
	t.Cleanup(func() {
		oobRunning.Wait()
		newSubConnStream = old
	})
}

// register is RegisterOOBListener whose stop also runs when the test
// ends (before useStreams' cleanup waits for the goroutines).
func register(t *testing.T, sc balancer.SubConn, l OOBListener, opts OOBListenerOptions) (stop func()) {
	stop = RegisterOOBListener(sc, l, opts)
	t.Cleanup(stop)
	return stop
}

func recvReport(t *testing.T, l chanListener) *orcav3.OrcaLoadReport {
	t.Helper()
	select {
	case r := <-l:
		return r
	case <-time.After(longWait):
		t.Fatal("no report arrived")
		return nil
	}
}

func TestOOBListenerReceivesTheServersReports(t *testing.T) {
	smr := NewServerMetricsRecorder()
	smr.SetCPUUtilization(0.5)
	addr := startServer(t, func(s *rpc.Server) {
		if err := Register(s, ServiceOptions{ServerMetricsProvider: smr, MinReportInterval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	})
	cc := dial(t, addr)
	sc := &fakeSubConn{addr: addr}
	useStreams(t, func(ctx context.Context, got balancer.SubConn, desc *rpc.StreamDesc, method string, opts ...rpc.CallOption) (rpc.ClientStream, error) {
		if got != sc {
			t.Errorf("stream opened on %v, want the listener's subchannel %v", got, sc)
		}
		return cc.NewStream(ctx, desc, method, opts...)
	})

	l := make(chanListener, 1)
	stop := register(t, sc, l, OOBListenerOptions{ReportInterval: time.Millisecond})
	if r, want := recvReport(t, l), (&orcav3.OrcaLoadReport{CpuUtilization: 0.5}); !proto.Equal(r, want) {
		t.Fatalf("first report %v, want %v", r, want)
	}
	smr.SetCPUUtilization(0.75)
	want := &orcav3.OrcaLoadReport{CpuUtilization: 0.75}
	for r := recvReport(t, l); !proto.Equal(r, want); r = recvReport(t, l) {
	}
	stop()
	stop() // a second stop does nothing
}

// fakeStream is a StreamCoreMetrics stream whose reports the test sends.
type fakeStream struct {
	ctx      context.Context
	interval time.Duration // what the request asked; -1 before it arrived
	reports  chan *orcav3.OrcaLoadReport
	end      chan error // RecvMsg's error
}

func (s *fakeStream) Header() (metadata.MD, error) { return nil, nil }
func (s *fakeStream) Trailer() metadata.MD         { return nil }
func (s *fakeStream) CloseSend() error             { return nil }
func (s *fakeStream) Context() context.Context     { return s.ctx }
func (s *fakeStream) SendMsg(m any) error {
	s.interval = m.(*orcaservicev3.OrcaLoadReportRequest).GetReportInterval().AsDuration()
	return nil
}
func (s *fakeStream) RecvMsg(m any) error {
	select {
	case r := <-s.reports:
		proto.Merge(m.(*orcav3.OrcaLoadReport), r)
		return nil
	case err := <-s.end:
		return err
	case <-s.ctx.Done():
		return status.FromContextError(s.ctx.Err()).Err()
	}
}

// fakeStreams opens fakeStreams and hands each to the test once its
// request is sent.
type fakeStreams struct {
	opened chan *fakeStream
}

func newFakeStreams(t *testing.T) *fakeStreams {
	fs := &fakeStreams{opened: make(chan *fakeStream, 16)}
	useStreams(t, func(ctx context.Context, _ balancer.SubConn, _ *rpc.StreamDesc, method string, _ ...rpc.CallOption) (rpc.ClientStream, error) {
		if method != orcaservicev3.OpenRcaService_StreamCoreMetrics_FullMethodName {
			t.Errorf("stream opened for %s", method)
		}
		s := &fakeStream{ctx: ctx, reports: make(chan *orcav3.OrcaLoadReport), end: make(chan error, 1)}
		// The request is sent right after; hand the stream over once
		// RecvMsg could run, through a wrapper that signals on SendMsg.
		return &announcingStream{fakeStream: s, opened: fs.opened}, nil
	})
	return fs
}

// announcingStream hands its stream to the test once the request is
// sent.
type announcingStream struct {
	*fakeStream
	opened chan *fakeStream
}

func (s *announcingStream) SendMsg(m any) error {
	err := s.fakeStream.SendMsg(m)
	select {
	case s.opened <- s.fakeStream:
	case <-s.ctx.Done():
	}
	return err
}

func (fs *fakeStreams) next(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case s := <-fs.opened:
		return s
	case <-time.After(longWait):
		t.Fatal("no stream was opened")
		return nil
	}
}

// none checks that no stream is open now or opens soon.
func (fs *fakeStreams) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-fs.opened:
		t.Fatalf("a stream was opened (interval %v), want none", s.interval)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestOOBListenersOfOneSubConnShareOneStreamAtTheShortestInterval(t *testing.T) {
	fs := newFakeStreams(t)
	sc := &fakeSubConn{addr: "a"}
	slow, fast := make(chanListener, 1), make(chanListener, 1)

	stopSlow := register(t, sc, slow, OOBListenerOptions{ReportInterval: time.Hour})
	s1 := fs.next(t)
	if s1.interval != time.Hour {
		t.Fatalf("first stream asked for %v, want 1h", s1.interval)
	}
	stopFast := register(t, sc, fast, OOBListenerOptions{ReportInterval: time.Second})
	s2 := fs.next(t)
	if s2.interval != time.Second {
		t.Fatalf("stream after a faster listener came asked for %v, want 1s", s2.interval)
	}
	if s1.ctx.Err() == nil {
		t.Error("the 1h stream is still open beside the 1s one")
	}
	want := &orcav3.OrcaLoadReport{CpuUtilization: 0.25}
	s2.reports <- want
	for _, l := range []chanListener{slow, fast} {
		if r := recvReport(t, l); !proto.Equal(r, want) {
			t.Errorf("listener got %v, want %v", r, want)
		}
	}

	stopFast()
	s3 := fs.next(t)
	if s3.interval != time.Hour {
		t.Fatalf("stream after the fast listener left asked for %v, want 1h", s3.interval)
	}
	stopSlow()
	<-s3.ctx.Done()
	fs.none(t)
}

func TestOOBListenerStreamIsReopenedAfterItEnds(t *testing.T) {
	oobBackoffBase = time.Millisecond
	t.Cleanup(func() { oobBackoffBase = time.Second })
	fs := newFakeStreams(t)
	l := make(chanListener, 1)
	register(t, &fakeSubConn{addr: "a"}, l, OOBListenerOptions{ReportInterval: time.Second})
	s1 := fs.next(t)
	s1.end <- status.Error(codes.Unavailable, "connection lost")
	s2 := fs.next(t)
	want := &orcav3.OrcaLoadReport{MemUtilization: 0.5}
	s2.reports <- want
	if r := recvReport(t, l); !proto.Equal(r, want) {
		t.Errorf("report on the reopened stream %v, want %v", r, want)
	}
	s2.end <- io.EOF
	fs.next(t)
}

func TestOOBListenerGivesUpWhenTheServerHasNoOOBService(t *testing.T) {
	oobBackoffBase = time.Millisecond
	t.Cleanup(func() { oobBackoffBase = time.Second })
	old := oobLogger
	oobLogger = slog.New(slog.DiscardHandler)
	t.Cleanup(func() { oobLogger = old })
	fs := newFakeStreams(t)
	register(t, &fakeSubConn{addr: "a"}, make(chanListener, 1), OOBListenerOptions{})
	s := fs.next(t)
	if s.interval != 0 {
		t.Errorf("a listener without an interval asked for %v, want none (the server's minimum)", s.interval)
	}
	s.end <- status.Error(codes.Unimplemented, "unknown service")
	fs.none(t)
	// The producer's goroutine ended while the listener is registered.
	done := make(chan struct{})
	go func() { oobRunning.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(longWait):
		t.Fatal("the stream's goroutine is still running after UNIMPLEMENTED")
	}
}
