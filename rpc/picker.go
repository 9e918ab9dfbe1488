package rpc

import (
	"context"
	"errors"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// pickerGen is one generation of the channel's picker. Calls read the
// current one without a lock; those that wait for a better one wait on
// ch, closed when the next generation replaces it.
type pickerGen struct {
	picker balancer.Picker // nil before the balancer published one
	idle   bool            // the channel is idle: the next call wakes it
	closed bool            // the channel is closed
	ch     chan struct{}
}

// publish makes s the channel's state and picker. It runs in the
// serializer.
func (cc *ClientConn) publish(s balancer.State) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.setStateLocked(s.ConnectivityState)
	cc.mu.Unlock()
	cc.publishPicker(&pickerGen{picker: s.Picker, ch: make(chan struct{})})
}

// publishPicker replaces the picker and wakes the calls waiting on the
// previous one.
func (cc *ClientConn) publishPicker(g *pickerGen) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old := cc.picker.Load(); old.closed {
		return
	}
	close(cc.picker.Swap(g).ch)
}

// pickResult is what a call gets from pick: the transport to open its
// stream on, metadata the balancer adds to the call's, and what to tell
// when the call ends.
type pickResult struct {
	t  transport.ClientTransport
	sc *subConn // the subchannel of t
	md metadata.MD
	callEnd
}

// callEnd is what a call keeps of its pick until it ends: the balancer's
// Done (nil when the balancer does not listen) and the channel counting
// the call for idleness (nil when idleness is off).
type callEnd struct {
	done    func(balancer.DoneInfo)
	counted *ClientConn
}

// finish reports the end of a call, or of an attempt that failed before
// its stream opened (s nil), to the balancer and the idleness count. The
// DoneInfo is built only for a balancer that listens: reading the
// trailer costs an allocation.
func (e *callEnd) finish(err error, s *transport.ClientStream, received bool) {
	if e.done != nil {
		di := balancer.DoneInfo{Err: err, BytesReceived: received}
		if s != nil {
			di.Trailer = s.Trailer()
			di.BytesSent = !s.Unprocessed()
			di.ServerLoad = balancer.ParseServerLoad(di.Trailer)
		}
		e.done(di)
		e.done = nil
	}
	if e.counted != nil {
		e.counted.onCallEnd()
		e.counted = nil
	}
}

// pick chooses the transport of a call with the channel's picker, waking
// an idle channel. A picker's error decides what the call does, as the
// balancer.Picker contract says: ErrNoSubConnAvailable makes it wait for
// the next picker; a status error fails it with that status at once,
// even when it waits for ready (pickerStatusErr); any other error (what
// a balancer in TRANSIENT_FAILURE returns, carrying the last connection
// error) fails a fail-fast call with UNAVAILABLE and makes a
// wait-for-ready call wait for the next picker. A subchannel picked but
// no longer READY is picked again with the next picker.
func (cc *ClientConn) pick(ctx context.Context, waitForReady bool, method string) (pickResult, error) {
	counted := cc.onCallBegin()
	pr, err := cc.pickLoop(ctx, waitForReady, method)
	if counted {
		if err != nil {
			cc.onCallEnd()
		} else {
			pr.counted = cc
		}
	}
	return pr, err
}

func (cc *ClientConn) pickLoop(ctx context.Context, waitForReady bool, method string) (pickResult, error) {
	var last chan struct{} // the generation already tried
	var lastErr error
	for {
		g := cc.picker.Load()
		switch {
		case g.closed:
			return pickResult{}, ErrClientConnClosing
		case g.idle:
			if err := cc.exitIdle(); err != nil {
				return pickResult{}, err
			}
			continue
		case g.picker == nil || g.ch == last:
			select {
			case <-g.ch:
				continue
			case <-ctx.Done():
				if lastErr != nil {
					return pickResult{}, status.Errorf(status.FromContextError(ctx.Err()).Code(), "%v while waiting for a connection: %v", ctx.Err(), lastErr)
				}
				return pickResult{}, status.FromContextError(ctx.Err()).Err()
			}
		}
		last = g.ch
		res, err := g.picker.Pick(balancer.PickInfo{FullMethodName: method, Ctx: ctx})
		if err != nil {
			if errors.Is(err, balancer.ErrNoSubConnAvailable) {
				continue
			}
			if st, isStatus := status.FromError(err); isStatus {
				// The balancer chose the call's status: it fails
				// now, waiting for ready or not (gRFC A54).
				return pickResult{}, pickerStatusErr(st)
			}
			if waitForReady {
				lastErr = err
				continue
			}
			return pickResult{}, status.Error(codes.Unavailable, err.Error())
		}
		sc, ok := res.SubConn.(*subConn)
		if !ok || sc.cc != cc {
			if res.Done != nil {
				res.Done(balancer.DoneInfo{Err: errForeignSubConn})
			}
			return pickResult{}, status.Error(codes.Internal, errForeignSubConn.Error())
		}
		t := sc.readyTransport()
		if t == nil {
			if res.Done != nil {
				res.Done(balancer.DoneInfo{})
			}
			continue
		}
		return pickResult{t: t, sc: sc, md: res.Metadata, callEnd: callEnd{done: res.Done}}, nil
	}
}

// pickerStatusErr is the error of a call whose picker failed it with st
// (controlPlaneErr).
func pickerStatusErr(st *status.Status) error {
	return controlPlaneErr(st, "the picker")
}

// controlPlaneErr is the error of a call that something of the channel,
// not a server, failed with st: a picker or per-RPC credentials. The
// codes gRFC A54 keeps for servers (the request never reached one)
// become INTERNAL, as does OK (an error that says the call succeeded,
// though it cannot go on).
func controlPlaneErr(st *status.Status, who string) error {
	switch st.Code() {
	case codes.OK:
		return status.Errorf(codes.Internal, "rpc: %s failed the call with status OK: %s", who, st.Message())
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.Aborted, codes.OutOfRange, codes.DataLoss:
		return status.Errorf(codes.Internal, "rpc: %s failed the call with a code reserved to servers: %v", who, st.Err())
	}
	return st.Err()
}

// errForeignSubConn is the error of a pick that returned a SubConn this
// channel did not make.
var errForeignSubConn = errors.New("rpc: the picker returned a SubConn of another channel")
