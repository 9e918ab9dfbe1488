package rpc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// ctlPolicy is a test policy driven by the test: it keeps one subchannel
// over all addresses connected, publishes a picker of it (whose Done
// reports to ctlDones) when it is READY, and publishes the pickers the
// test gives it (ctlBalancer.publish).
const ctlPolicy = "test_controlled_picker"

var (
	// ctlBuilt receives the ctlBalancers built (while there is room).
	ctlBuilt = make(chan *ctlBalancer, 4)
	// ctlDones receives the DoneInfo of every call picked by the READY
	// picker (while there is room).
	ctlDones = make(chan balancer.DoneInfo, 16)
)

type ctlBuilder struct{}

func init() { balancer.Register(ctlBuilder{}) }

func (ctlBuilder) Name() string { return ctlPolicy }
func (ctlBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	b := &ctlBalancer{cc: cc}
	select {
	case ctlBuilt <- b:
	default:
	}
	return b
}

type ctlBalancer struct {
	cc    balancer.ClientConn
	sc    balancer.SubConn
	ready atomic.Bool
}

func (b *ctlBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if b.sc != nil {
		return nil
	}
	var sc balancer.SubConn
	sc, err := b.cc.NewSubConn(s.ResolverState.Addresses, balancer.NewSubConnOptions{StateListener: func(st balancer.SubConnState) {
		switch st.ConnectivityState {
		case connectivity.Ready:
			b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: b.readyPicker()})
		case connectivity.Idle:
			sc.Connect()
		}
		b.ready.Store(st.ConnectivityState == connectivity.Ready)
	}})
	if err != nil {
		return err
	}
	b.sc = sc
	sc.Connect()
	return nil
}

func (b *ctlBalancer) ResolverError(error) {}
func (b *ctlBalancer) ExitIdle()           {}
func (b *ctlBalancer) Close()              {}

// publish makes p the channel's picker, from the channel's serializer
// as a balancer's own calls.
func (b *ctlBalancer) publish(cc *ClientConn, s connectivity.State, p balancer.Picker) {
	cc.ser.run(func() { b.cc.UpdateState(balancer.State{ConnectivityState: s, Picker: p}) })
}

// readyPicker picks the balancer's subchannel, with a Done reporting to
// ctlDones.
func (b *ctlBalancer) readyPicker() balancer.Picker {
	done := func(di balancer.DoneInfo) {
		select {
		case ctlDones <- di:
		default:
		}
	}
	return pickerFunc(func(balancer.PickInfo) (balancer.PickResult, error) {
		return balancer.PickResult{SubConn: b.sc, Done: done}, nil
	})
}

type pickerFunc func(balancer.PickInfo) (balancer.PickResult, error)

func (f pickerFunc) Pick(i balancer.PickInfo) (balancer.PickResult, error) { return f(i) }

// failingPicker fails every pick with err and signals each pick on
// picked.
func failingPicker(err error, picked chan<- struct{}) balancer.Picker {
	return pickerFunc(func(balancer.PickInfo) (balancer.PickResult, error) {
		select {
		case picked <- struct{}{}:
		default:
		}
		return balancer.PickResult{}, err
	})
}

// ctlClient returns a channel with ctlPolicy over one backend, and the
// policy's balancer once its subchannel is READY.
func ctlClient(t *testing.T) (*ClientConn, *testClient, *ctlBalancer) {
	t.Helper()
	bk := startBackend(t, "127.0.0.1")
	return ctlClientAt(t, bk.addr)
}

// ctlClientAt is ctlClient to the server at addr. It empties ctlBuilt and
// ctlDones first.
func ctlClientAt(t *testing.T, addr string, opts ...DialOption) (*ClientConn, *testClient, *ctlBalancer) {
	t.Helper()
	for drained := false; !drained; {
		select {
		case <-ctlBuilt:
		case <-ctlDones:
		default:
			drained = true
		}
	}
	sc := `{"loadBalancingConfig": [{"` + ctlPolicy + `": {}}]}`
	_, cc, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: addr}}, ServiceConfig: parseSC(t, sc)}, opts...)
	cc.Connect()
	var b *ctlBalancer
	select {
	case b = <-ctlBuilt:
	case <-time.After(longWait):
		t.Fatal("the test policy was never built")
	}
	waitFor(t, "the test policy's subchannel is READY", b.ready.Load)
	return cc, c, b
}

// TestPickerStatusErrorFailsEvenWaitForReadyCalls: a picker that fails
// with a status error fails the call with that status at once, fail-fast
// or wait-for-ready (gRFC A54, balancer.Picker's contract). Before, a
// wait-for-ready call waited on an UNAVAILABLE status until its deadline.
func TestPickerStatusErrorFailsEvenWaitForReadyCalls(t *testing.T) {
	cc, c, b := ctlClient(t)
	picked := make(chan struct{}, 1)
	b.publish(cc, connectivity.TransientFailure, failingPicker(status.Error(codes.Unavailable, "dropped by the balancer"), picked))
	// The deadline only bounds a failing test: the call must fail long
	// before it.
	ctx, cancel := context.WithTimeout(context.Background(), longWait/2)
	defer cancel()
	for _, wfr := range []bool{false, true} {
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(wfr))
		if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "dropped by the balancer" {
			t.Errorf("wait-for-ready %v: error %v, want the picker's UNAVAILABLE status", wfr, err)
		}
	}
}

// TestPickerReservedStatusCodesBecomeInternal: the codes gRFC A54
// reserves to servers, returned by a picker, fail the call with INTERNAL;
// other codes are kept.
func TestPickerReservedStatusCodesBecomeInternal(t *testing.T) {
	cc, c, b := ctlClient(t)
	ctx := ctxWait(t)
	for _, tc := range []struct{ code, want codes.Code }{
		{codes.InvalidArgument, codes.Internal},
		{codes.NotFound, codes.Internal},
		{codes.AlreadyExists, codes.Internal},
		{codes.FailedPrecondition, codes.Internal},
		{codes.Aborted, codes.Internal},
		{codes.OutOfRange, codes.Internal},
		{codes.DataLoss, codes.Internal},
		{codes.ResourceExhausted, codes.ResourceExhausted},
		{codes.PermissionDenied, codes.PermissionDenied},
		{codes.Unavailable, codes.Unavailable},
	} {
		b.publish(cc, connectivity.TransientFailure, failingPicker(status.Error(tc.code, "from the picker"), nil))
		_, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true))
		if got := status.Code(err); got != tc.want {
			t.Errorf("picker status %v: call failed with %v (%v), want %v", tc.code, got, err, tc.want)
		}
	}
}

// TestPickerNonStatusErrorsWaitForTheNextPicker: ErrNoSubConnAvailable
// makes every call wait for the next picker; another error that is not a
// status makes wait-for-ready calls wait and fails fail-fast ones with
// UNAVAILABLE.
func TestPickerNonStatusErrorsWaitForTheNextPicker(t *testing.T) {
	cc, c, b := ctlClient(t)
	ctx := ctxWait(t)
	for _, tc := range []struct {
		name string
		err  error
		wfr  bool
	}{
		{"ErrNoSubConnAvailable, fail-fast", balancer.ErrNoSubConnAvailable, false},
		{"ErrNoSubConnAvailable, wait-for-ready", balancer.ErrNoSubConnAvailable, true},
		{"plain error, wait-for-ready", errors.New("plain"), true},
	} {
		picked := make(chan struct{}, 1)
		b.publish(cc, connectivity.Connecting, failingPicker(tc.err, picked))
		done := make(chan error, 1)
		go func() {
			_, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(tc.wfr))
			done <- err
		}()
		select {
		case <-picked:
		case err := <-done:
			t.Fatalf("%s: call ended before a new picker: %v", tc.name, err)
		}
		b.publish(cc, connectivity.Ready, b.readyPicker())
		if err := <-done; err != nil {
			t.Errorf("%s: call failed after a READY picker came: %v", tc.name, err)
		}
	}
	picked := make(chan struct{}, 1)
	b.publish(cc, connectivity.TransientFailure, failingPicker(errors.New("plain"), picked))
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "plain" {
		t.Errorf("fail-fast call with a plain picker error: %v, want UNAVAILABLE with its text", err)
	}
}

// okStatusError is an error whose gRPC status is OK: a picker bug, but
// one that must fail the call, not crash the process.
type okStatusError struct{}

func (okStatusError) Error() string              { return "an error with status OK" }
func (okStatusError) GRPCStatus() *status.Status { return status.New(codes.OK, "") }

// TestPickerErrorWithStatusOKIsInternal: a picker error whose status is
// OK fails the call with INTERNAL (it cannot succeed: nothing was
// picked). Before, the pick returned no transport and no error, and
// opening the stream dereferenced the nil transport.
func TestPickerErrorWithStatusOKIsInternal(t *testing.T) {
	cc, c, b := ctlClient(t)
	b.publish(cc, connectivity.TransientFailure, failingPicker(okStatusError{}, nil))
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Internal)
	s, err := c.Bidi(ctxWait(t))
	if err == nil {
		_, err = s.Recv()
	}
	wantCode(t, err, codes.Internal)
}
