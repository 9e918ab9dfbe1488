// Package health is the server side of gRPC's health checking protocol,
// grpc.health.v1.Health: load balancers, Kubernetes probes,
// grpc_health_probe and clients with client-side health checking ask it
// whether the server, or one of its services, takes requests.
//
// It has the shape of google.golang.org/grpc/health: NewServer, then
// grpc_health_v1.RegisterHealthServer(srv, hs), then SetServingStatus as
// services come and go. The messages and the serving status constants
// (grpc_health_v1.HealthCheckResponse_SERVING, ...) are in package
// grpc_health_v1, under the same names as in grpc-go.
//
// # Stopping a server
//
// Shutdown turns every service NOT_SERVING at once, so load balancers,
// probes and health-checking clients (which Watch) stop sending new work
// while the RPCs in flight finish. The rpc.Server the health service is
// registered on calls it by itself when Stop or GracefulStop begins (the
// Server implements rpc.StopNotifier). Call it yourself earlier, as with
// grpc-go, to give probes time to notice before GOAWAY:
//
//	hs.Shutdown()      // probes and balancers see NOT_SERVING
//	time.Sleep(grace)  // optional: let them notice
//	srv.GracefulStop() // in-flight RPCs finish
package health

import (
	"context"
	"log/slog"
	"sync"

	"github.com/h2rpc/h2rpc/rpc/codes"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// MaxListedServices is the most services List reports: a server that
// knows more fails List with RESOURCE_EXHAUSTED (as grpc-go's does; the
// client should then Check the services it cares about one by one).
const MaxListedServices = 100

// ServingStatus is a service's health, grpc_health_v1's enum.
type ServingStatus = healthpb.HealthCheckResponse_ServingStatus

// Server is the grpc.health.v1.Health service. It keeps a status per
// service name, "" standing for the whole server (SERVING from the
// start). It is safe for concurrent use.
type Server struct {
	healthpb.UnimplementedHealthServer

	mu       sync.Mutex
	shutdown bool
	statuses map[string]ServingStatus
	watchers map[string]map[*watcher]struct{}
}

var _ healthpb.HealthServer = (*Server)(nil)

// watcher is one Watch call: it needs only the latest status, so changes
// it has not sent yet replace each other in a one-slot channel, and a
// client that does not read costs no more memory however often the
// status changes.
type watcher struct {
	latest chan ServingStatus // capacity 1
}

// offer makes s the status w sends next, dropping one it has not sent.
// Caller holds the server's mu, so offers do not race each other.
func (w *watcher) offer(s ServingStatus) {
	select {
	case <-w.latest:
	default:
	}
	w.latest <- s
}

// NewServer returns a health server in which the whole server ("") is
// SERVING and no service is known yet.
func NewServer() *Server {
	return &Server{
		statuses: map[string]ServingStatus{"": healthpb.HealthCheckResponse_SERVING},
		watchers: map[string]map[*watcher]struct{}{},
	}
}

// Check returns the status of the requested service; a service that was
// never given a status fails with NOT_FOUND.
func (s *Server) Check(_ context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	s.mu.Lock()
	st, ok := s.statuses[in.GetService()]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "health: unknown service %q", in.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List returns the status of every known service, "" included. With more
// than MaxListedServices it fails with RESOURCE_EXHAUSTED.
func (s *Server) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.statuses) > MaxListedServices {
		return nil, status.Errorf(codes.ResourceExhausted, "health: %d services, more than List reports (%d)", len(s.statuses), MaxListedServices)
	}
	out := make(map[string]*healthpb.HealthCheckResponse, len(s.statuses))
	for name, st := range s.statuses {
		out[name] = &healthpb.HealthCheckResponse{Status: st}
	}
	return &healthpb.HealthListResponse{Statuses: out}, nil
}

// Watch sends the requested service's status at once, then each time it
// changes, until the client ends the call or the server stops. A service
// never given a status is SERVICE_UNKNOWN, and Watch keeps watching: it
// sends the service's status once SetServingStatus gives it one. A
// watcher that reads slowly skips statuses but always gets the latest.
func (s *Server) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	name := in.GetService()
	w := &watcher{latest: make(chan ServingStatus, 1)}
	s.mu.Lock()
	st, ok := s.statuses[name]
	if !ok {
		st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	}
	w.offer(st)
	ws := s.watchers[name]
	if ws == nil {
		ws = map[*watcher]struct{}{}
		s.watchers[name] = ws
	}
	ws[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(ws, w)
		if len(ws) == 0 {
			delete(s.watchers, name)
		}
		s.mu.Unlock()
	}()

	ctx := stream.Context()
	last := ServingStatus(-1)
	for {
		select {
		case st := <-w.latest:
			if st == last {
				continue
			}
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// SetServingStatus sets the status of service ("" for the whole server)
// and tells its watchers. After Shutdown it is ignored until Resume.
func (s *Server) SetServingStatus(service string, st ServingStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		slog.Debug("health: SetServingStatus ignored after Shutdown", "service", service, "status", st)
		return
	}
	s.setLocked(service, st)
}

// setLocked sets service's status and offers it to its watchers. Caller
// holds mu.
func (s *Server) setLocked(service string, st ServingStatus) {
	s.statuses[service] = st
	for w := range s.watchers[service] {
		w.offer(st)
	}
}

// Shutdown makes every known service NOT_SERVING and ignores
// SetServingStatus until Resume. Call it before rpc.Server.GracefulStop,
// so that load balancers and probes see NOT_SERVING while the RPCs in
// flight finish.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	for name := range s.statuses {
		s.setLocked(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// ServerStopping implements rpc.StopNotifier: when the rpc.Server the
// health service is registered on begins Stop or GracefulStop, it calls
// Shutdown, so health watchers see NOT_SERVING while the RPCs in flight
// finish even if the application did not call Shutdown itself.
func (s *Server) ServerStopping() { s.Shutdown() }

// Resume makes every known service SERVING and takes SetServingStatus
// calls again.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = false
	for name := range s.statuses {
		s.setLocked(name, healthpb.HealthCheckResponse_SERVING)
	}
}
