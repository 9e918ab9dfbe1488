package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// Client-side health checking (gRPC's "GRPC Health Checking Protocol"
// and grpc-go's client-side health checking): when the channel's service
// config has healthCheckConfig.serviceName, each subchannel whose
// balancer asked for it (balancer.NewSubConnOptions.HealthCheckEnabled:
// round_robin does, pick_first does not, as in grpc-go) opens a
// grpc.health.v1.Health/Watch stream on its transport once that is up,
// and reports READY to its balancer only while the backend says SERVING.
// Any other status makes the subchannel TRANSIENT_FAILURE, so calls go to
// other backends, while the connection stays up. A backend that does not
// serve the health service (UNIMPLEMENTED) is taken as healthy: the
// subchannel is READY and the error is logged. A stream that fails
// otherwise is opened again after a backoff, as long as the connection is
// up. WithDisableHealthCheck turns it all off.
//
// The service name is read when a connection becomes READY: a changed
// healthCheckConfig applies from the subchannel's next connection.

// healthWatchMethod is grpc.health.v1.Health's Watch.
const healthWatchMethod = "/grpc.health.v1.Health/Watch"

// healthWatchDesc describes the Watch stream: one request, many responses.
var healthWatchDesc = &StreamDesc{StreamName: "Watch", ServerStreams: true}

// The grpc.health.v1 messages are encoded with well-known wrapper types
// that are the same on the wire (rpc cannot import the generated
// package, which imports rpc): HealthCheckRequest is one string, field 1,
// as is StringValue; HealthCheckResponse is one enum, a varint in field
// 1, as is Int32Value's int32.

// newHealthCheckRequest returns grpc.health.v1.HealthCheckRequest{service}.
func newHealthCheckRequest(service string) *wrapperspb.StringValue {
	return &wrapperspb.StringValue{Value: service}
}

// healthCheckResponse receives a grpc.health.v1.HealthCheckResponse;
// Value is its status.
type healthCheckResponse = wrapperspb.Int32Value

// healthServing is HealthCheckResponse.ServingStatus SERVING.
const healthServing = 1

// healthStatusName names a grpc.health.v1 serving status, for errors.
func healthStatusName(s int32) string {
	switch s {
	case 0:
		return "UNKNOWN"
	case 1:
		return "SERVING"
	case 2:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return fmt.Sprintf("status %d", s)
}

// errUnhealthy is wrapped by the connection error a subchannel reports
// when its backend's health check says it does not serve.
var errUnhealthy = errors.New("rpc: the backend's health check reports it is not serving")

// healthCheck is the health checking of one READY transport of a
// subchannel: sc.health while it runs.
type healthCheck struct {
	t      transport.ClientTransport
	cancel context.CancelFunc
}

// transportReadyLocked is what attempt does when t, now sc.cur, is up:
// the subchannel is READY at once, or once t's health check says
// SERVING. Caller holds sc.mu.
func (sc *subConn) transportReadyLocked(t transport.ClientTransport) {
	service, ok := sc.healthCheckService()
	if !ok {
		sc.ready.Store(&readyTransport{t})
		sc.setStateLocked(connectivity.Ready, nil)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthCheck{t: t, cancel: cancel}
	sc.health = h
	sc.cc.wg.Add(1) // attempt holds the group: Close is not waiting on zero
	go sc.runHealthCheck(ctx, h, service)
}

// healthCheckService returns the service to health-check, and whether
// the subchannel health-checks at all.
func (sc *subConn) healthCheckService() (string, bool) {
	if !sc.healthCheckEnabled || sc.cc.dopts.channel.disableHealthCheck {
		return "", false
	}
	cfg := sc.cc.serviceConfig()
	if cfg == nil || cfg.HealthCheckServiceName == nil {
		return "", false
	}
	return *cfg.HealthCheckServiceName, true
}

// stopStaleHealthCheckLocked ends the health check of a transport that is
// no longer the subchannel's (it went away, the subchannel was shut down
// or moved to other addresses): its Watch stream must not keep the old
// connection open. unlock calls it, so every change of sc.cur is seen.
// Caller holds sc.mu.
func (sc *subConn) stopStaleHealthCheckLocked() {
	if h := sc.health; h != nil && (h.t != sc.cur || sc.shutdown) {
		h.cancel()
		sc.health = nil
	}
}

// setHealthState reports what h's health check found, unless h is no
// longer the subchannel's health check: the subchannel takes calls only
// while READY.
func (sc *subConn) setHealthState(h *healthCheck, s connectivity.State, err error) {
	sc.mu.Lock()
	defer sc.unlock()
	if sc.health != h {
		return
	}
	if s == connectivity.Ready {
		sc.ready.Store(&readyTransport{h.t})
	} else {
		sc.ready.Store(nil)
	}
	sc.setStateLocked(s, err)
}

// runHealthCheck watches service's health on h's transport until ctx
// ends, reopening the stream after a backoff when it fails without the
// server having answered.
func (sc *subConn) runHealthCheck(ctx context.Context, h *healthCheck, service string) {
	defer sc.cc.wg.Done()
	logger := sc.cc.dopts.logger
	tries := 0
	for {
		if tries > 0 {
			timer := time.NewTimer(sc.cc.dopts.backoff.delay(tries - 1))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		tries++
		sc.setHealthState(h, connectivity.Connecting, nil)
		err := sc.watchHealth(ctx, h, service, func() { tries = 0 })
		if ctx.Err() != nil || transportGone(h.t) {
			// The subchannel is leaving READY for another reason,
			// which it reports itself.
			return
		}
		if status.Code(err) == codes.Unimplemented {
			logger.Error("rpc: the server does not implement grpc.health.v1.Health; health checking is off for this subchannel",
				"target", sc.cc.target, "subchannel", sc.String(), "err", err)
			sc.setHealthState(h, connectivity.Ready, nil)
			return
		}
		logger.Debug("rpc: health check stream failed", "target", sc.cc.target, "subchannel", sc.String(), "err", err)
		sc.setHealthState(h, connectivity.TransientFailure,
			fmt.Errorf("rpc: connection up but its health check of service %q failed: %w", service, err))
	}
}

// transportGone reports whether t stopped taking streams.
func transportGone(t transport.ClientTransport) bool {
	select {
	case <-t.GoAway():
		return true
	case <-t.Done():
		return true
	default:
		return false
	}
}

// watchHealth runs one Watch stream, reporting each status the server
// sends, until the stream fails or ctx ends; answered is called at each
// response.
func (sc *subConn) watchHealth(ctx context.Context, h *healthCheck, service string, answered func()) error {
	// The channel's own stream, as in grpc-go: none of the default call
	// options (meant for the application's calls, and whose Header,
	// Trailer or Peer targets this goroutine must not write) apply; the
	// proto codec, no compression. The channel's per-RPC credentials do.
	cs, err := newClientStream(ctx, healthWatchDesc, sc.cc, h.t, healthWatchMethod, nil)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(newHealthCheckRequest(service)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	resp := new(healthCheckResponse)
	for {
		if err := cs.RecvMsg(resp); err != nil {
			return err
		}
		answered()
		if resp.Value == healthServing {
			sc.setHealthState(h, connectivity.Ready, nil)
			continue
		}
		sc.setHealthState(h, connectivity.TransientFailure,
			fmt.Errorf("%w: service %q is %s", errUnhealthy, service, healthStatusName(resp.Value)))
	}
}
