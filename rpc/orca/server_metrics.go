package orca

import (
	"maps"
	"math"
	"sync"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
)

// Unset is the value of a ServerMetrics field that was not recorded (or
// was deleted); such a field is left out of the load report.
const Unset = -1

// ServerMetrics is a set of backend metrics: the whole server's (what a
// ServerMetricsRecorder holds) or one RPC's (a CallMetricsRecorder's).
// A scalar field is Unset when it was not recorded.
type ServerMetrics struct {
	CPUUtilization float64 // CPU in use as a fraction of the CPU available: [0, inf)
	MemUtilization float64 // memory in use as a fraction of the memory available: [0, 1]
	AppUtilization float64 // application-defined utilization: [0, inf)
	QPS            float64 // queries per second: [0, inf)
	EPS            float64 // errors per second: [0, inf)

	Utilization  map[string]float64 // named utilizations, each in [0, 1]
	RequestCost  map[string]float64 // named costs of one RPC (per-RPC reports only)
	NamedMetrics map[string]float64 // named opaque metrics (per-RPC reports only)
}

// newServerMetrics returns metrics with nothing recorded.
func newServerMetrics() ServerMetrics {
	return ServerMetrics{CPUUtilization: Unset, MemUtilization: Unset, AppUtilization: Unset, QPS: Unset, EPS: Unset}
}

// LoadReport returns sm as the OrcaLoadReport that carries it: Unset
// fields are left at zero (proto3 does not send them), empty maps are
// left nil.
func (sm *ServerMetrics) LoadReport() *orcav3.OrcaLoadReport {
	r := &orcav3.OrcaLoadReport{
		Utilization:  cloneMap(sm.Utilization),
		RequestCost:  cloneMap(sm.RequestCost),
		NamedMetrics: cloneMap(sm.NamedMetrics),
	}
	if sm.CPUUtilization != Unset {
		r.CpuUtilization = sm.CPUUtilization
	}
	if sm.MemUtilization != Unset {
		r.MemUtilization = sm.MemUtilization
	}
	if sm.AppUtilization != Unset {
		r.ApplicationUtilization = sm.AppUtilization
	}
	if sm.QPS != Unset {
		r.RpsFractional = sm.QPS
	}
	if sm.EPS != Unset {
		r.Eps = sm.EPS
	}
	return r
}

// overlay sets in sm every field o recorded, keeping sm's others.
func (sm *ServerMetrics) overlay(o *ServerMetrics) {
	for _, f := range [...]struct{ dst, src *float64 }{
		{&sm.CPUUtilization, &o.CPUUtilization},
		{&sm.MemUtilization, &o.MemUtilization},
		{&sm.AppUtilization, &o.AppUtilization},
		{&sm.QPS, &o.QPS},
		{&sm.EPS, &o.EPS},
	} {
		if *f.src != Unset {
			*f.dst = *f.src
		}
	}
	sm.Utilization = overlayMap(sm.Utilization, o.Utilization)
	sm.RequestCost = overlayMap(sm.RequestCost, o.RequestCost)
	sm.NamedMetrics = overlayMap(sm.NamedMetrics, o.NamedMetrics)
}

func overlayMap(dst, src map[string]float64) map[string]float64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]float64, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

func cloneMap(m map[string]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// ServerMetricsProvider provides a server's current metrics.
type ServerMetricsProvider interface {
	// ServerMetrics returns the current metrics, as a copy the caller
	// may keep and change.
	ServerMetrics() *ServerMetrics
}

// ServerMetricsRecorder records a server's metrics and provides them
// (for the out-of-band service, Register, and as the base of per-RPC
// reports, CallMetricsServerOptions). It is safe for concurrent use. A
// value out of its range (see ServerMetrics), or NaN, is ignored: the
// metric keeps its previous value.
type ServerMetricsRecorder interface {
	ServerMetricsProvider

	// SetCPUUtilization records the CPU utilization, in [0, inf).
	SetCPUUtilization(float64)
	// DeleteCPUUtilization stops reporting the CPU utilization.
	DeleteCPUUtilization()
	// SetMemoryUtilization records the memory utilization, in [0, 1].
	SetMemoryUtilization(float64)
	// DeleteMemoryUtilization stops reporting the memory utilization.
	DeleteMemoryUtilization()
	// SetApplicationUtilization records the application utilization, in
	// [0, inf).
	SetApplicationUtilization(float64)
	// DeleteApplicationUtilization stops reporting the application
	// utilization.
	DeleteApplicationUtilization()
	// SetQPS records the queries per second, in [0, inf).
	SetQPS(float64)
	// DeleteQPS stops reporting the queries per second.
	DeleteQPS()
	// SetEPS records the errors per second, in [0, inf).
	SetEPS(float64)
	// DeleteEPS stops reporting the errors per second.
	DeleteEPS()
	// SetNamedUtilization records the utilization of a named resource,
	// in [0, 1].
	SetNamedUtilization(name string, val float64)
	// DeleteNamedUtilization stops reporting the named utilization.
	DeleteNamedUtilization(name string)
}

// NewServerMetricsRecorder returns a recorder with nothing recorded.
func NewServerMetricsRecorder() ServerMetricsRecorder {
	return newServerRecorder()
}

// serverRecorder is the ServerMetricsRecorder of this package, and the
// base of its CallMetricsRecorder.
type serverRecorder struct {
	mu sync.Mutex
	m  ServerMetrics
}

func newServerRecorder() *serverRecorder {
	return &serverRecorder{m: newServerMetrics()}
}

// nonNegative and fraction are the ranges of the metrics; NaN is in
// neither.
func nonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
func fraction(v float64) bool    { return v >= 0 && v <= 1 }

// set records v in *f when ok(v).
func (r *serverRecorder) set(f *float64, v float64, ok func(float64) bool) {
	if !ok(v) {
		return
	}
	r.mu.Lock()
	*f = v
	r.mu.Unlock()
}

// setIn records name=v in the map *m when ok(v).
func (r *serverRecorder) setIn(m *map[string]float64, name string, v float64, ok func(float64) bool) {
	if !ok(v) {
		return
	}
	r.mu.Lock()
	if *m == nil {
		*m = make(map[string]float64)
	}
	(*m)[name] = v
	r.mu.Unlock()
}

func (r *serverRecorder) deleteIn(m *map[string]float64, name string) {
	r.mu.Lock()
	delete(*m, name)
	r.mu.Unlock()
}

func (r *serverRecorder) SetCPUUtilization(v float64) { r.set(&r.m.CPUUtilization, v, nonNegative) }
func (r *serverRecorder) DeleteCPUUtilization()       { r.unset(&r.m.CPUUtilization) }
func (r *serverRecorder) SetMemoryUtilization(v float64) {
	r.set(&r.m.MemUtilization, v, fraction)
}
func (r *serverRecorder) DeleteMemoryUtilization() { r.unset(&r.m.MemUtilization) }
func (r *serverRecorder) SetApplicationUtilization(v float64) {
	r.set(&r.m.AppUtilization, v, nonNegative)
}
func (r *serverRecorder) DeleteApplicationUtilization() { r.unset(&r.m.AppUtilization) }
func (r *serverRecorder) SetQPS(v float64)              { r.set(&r.m.QPS, v, nonNegative) }
func (r *serverRecorder) DeleteQPS()                    { r.unset(&r.m.QPS) }
func (r *serverRecorder) SetEPS(v float64)              { r.set(&r.m.EPS, v, nonNegative) }
func (r *serverRecorder) DeleteEPS()                    { r.unset(&r.m.EPS) }
func (r *serverRecorder) SetNamedUtilization(name string, v float64) {
	r.setIn(&r.m.Utilization, name, v, fraction)
}
func (r *serverRecorder) DeleteNamedUtilization(name string) { r.deleteIn(&r.m.Utilization, name) }

func (r *serverRecorder) unset(f *float64) {
	r.mu.Lock()
	*f = Unset
	r.mu.Unlock()
}

// ServerMetrics returns a copy of what is recorded.
func (r *serverRecorder) ServerMetrics() *ServerMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	sm := r.m
	sm.Utilization = maps.Clone(r.m.Utilization)
	sm.RequestCost = maps.Clone(r.m.RequestCost)
	sm.NamedMetrics = maps.Clone(r.m.NamedMetrics)
	return &sm
}
