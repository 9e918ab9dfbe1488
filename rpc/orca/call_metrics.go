package orca

import (
	"context"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// CallMetricsRecorder records the metrics of one RPC: the server-wide
// ones of ServerMetricsRecorder, as this RPC saw them, and the RPC's own
// request costs and named metrics. It is safe for concurrent use.
type CallMetricsRecorder interface {
	ServerMetricsRecorder

	// SetRequestCost records a named cost of the RPC.
	SetRequestCost(name string, val float64)
	// DeleteRequestCost stops reporting the named cost.
	DeleteRequestCost(name string)
	// SetNamedMetric records a named opaque metric.
	SetNamedMetric(name string, val float64)
	// DeleteNamedMetric stops reporting the named metric.
	DeleteNamedMetric(name string)
}

// callRecorder is the CallMetricsRecorder of this package.
type callRecorder struct {
	serverRecorder
}

func anyValue(v float64) bool { return v == v } // not NaN

func (r *callRecorder) SetRequestCost(name string, v float64) {
	r.setIn(&r.m.RequestCost, name, v, anyValue)
}
func (r *callRecorder) DeleteRequestCost(name string) { r.deleteIn(&r.m.RequestCost, name) }
func (r *callRecorder) SetNamedMetric(name string, v float64) {
	r.setIn(&r.m.NamedMetrics, name, v, anyValue)
}
func (r *callRecorder) DeleteNamedMetric(name string) { r.deleteIn(&r.m.NamedMetrics, name) }

// callContext is a handler's context under the call-metrics interceptors:
// the RPC's context with the RPC's recorder as a value, made on first use.
// It is one allocation per RPC, like a context.WithValue layer; Done, Err
// and Deadline are the embedded context's.
type callContext struct {
	context.Context
	smp ServerMetricsProvider
	rec atomic.Pointer[callRecorder]
}

// callContextKey keys the callContext in a handler's context.
type callContextKey struct{}

func (c *callContext) Value(key any) any {
	if _, ok := key.(callContextKey); ok {
		return c
	}
	return c.Context.Value(key)
}

func (c *callContext) String() string { return "orca.callContext" }

// recorder returns the RPC's recorder, making it on the first call.
func (c *callContext) recorder() *callRecorder {
	if r := c.rec.Load(); r != nil {
		return r
	}
	r := &callRecorder{serverRecorder{m: newServerMetrics()}}
	if c.rec.CompareAndSwap(nil, r) {
		return r
	}
	return c.rec.Load()
}

// report returns the RPC's load report, or nil when there is nothing to
// send: the handler never asked for its recorder and no provider is set.
func (c *callContext) report() *ServerMetrics {
	r := c.rec.Load()
	if c.smp == nil {
		if r == nil {
			return nil
		}
		return r.ServerMetrics()
	}
	sm := c.smp.ServerMetrics()
	if r != nil {
		sm.overlay(r.ServerMetrics())
	}
	return sm
}

// setTrailer adds the RPC's report, if any, to its trailer. It runs
// once the handler has returned, before the status goes out.
func (c *callContext) setTrailer(set func(metadata.MD) error) {
	sm := c.report()
	if sm == nil {
		return
	}
	b, err := proto.Marshal(sm.LoadReport())
	if err != nil {
		// An OrcaLoadReport of floats and maps always marshals.
		return
	}
	_ = set(metadata.MD{TrailerKey: {string(b)}})
}

// CallMetricsRecorderFromContext returns the recorder of the RPC whose
// handler got ctx, or nil when the server does not report per-RPC
// metrics (CallMetricsServerOptions). What it records is sent to the
// client in the RPC's trailer when the handler returns.
func CallMetricsRecorderFromContext(ctx context.Context) CallMetricsRecorder {
	c, ok := ctx.Value(callContextKey{}).(*callContext)
	if !ok {
		return nil
	}
	return c.recorder()
}

// UnaryServerInterceptor reports per-RPC metrics of unary RPCs (see
// CallMetricsServerOptions, which installs it with its stream
// counterpart).
func UnaryServerInterceptor(smp ServerMetricsProvider) rpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (any, error) {
		c := &callContext{Context: ctx, smp: smp}
		resp, err := handler(c, req)
		c.setTrailer(func(md metadata.MD) error { return rpc.SetTrailer(ctx, md) })
		return resp, err
	}
}

// StreamServerInterceptor reports per-RPC metrics of streaming RPCs (see
// CallMetricsServerOptions, which installs it with its unary
// counterpart).
func StreamServerInterceptor(smp ServerMetricsProvider) rpc.StreamServerInterceptor {
	return func(srv any, ss rpc.ServerStream, _ *rpc.StreamServerInfo, handler rpc.StreamHandler) error {
		c := &callContext{Context: ss.Context(), smp: smp}
		err := handler(srv, &callStream{ServerStream: ss, ctx: c})
		c.setTrailer(func(md metadata.MD) error { ss.SetTrailer(md); return nil })
		return err
	}
}

// callStream is a ServerStream whose Context is a callContext.
type callStream struct {
	rpc.ServerStream
	ctx *callContext
}

func (s *callStream) Context() context.Context { return s.ctx }

// CallMetricsServerOptions are the server options that turn per-RPC
// backend metrics on: a unary and a stream interceptor. Pass them to
// rpc.NewServer first, so that the other interceptors and the handlers
// run inside them:
//
//	srv := rpc.NewServer(append(orca.CallMetricsServerOptions(nil), opts...)...)
//
// A handler then records its RPC's metrics on
// CallMetricsRecorderFromContext(ctx); when it returns, they go in the
// RPC's trailer "endpoint-load-metrics-bin" as an OrcaLoadReport,
// whatever the RPC's status. With smp nil, only RPCs whose handler asked
// for the recorder carry a report. With smp set (a ServerMetricsRecorder
// usually), every RPC carries smp's metrics, overridden by what its
// handler recorded.
func CallMetricsServerOptions(smp ServerMetricsProvider) []rpc.ServerOption {
	return []rpc.ServerOption{
		rpc.ChainUnaryInterceptor(UnaryServerInterceptor(smp)),
		rpc.ChainStreamInterceptor(StreamServerInterceptor(smp)),
	}
}
