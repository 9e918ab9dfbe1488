package rpc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/h2rpc/h2rpc/keepalive"
	_ "github.com/h2rpc/h2rpc/rpc/balancer/pickfirst"  // registers pick_first
	_ "github.com/h2rpc/h2rpc/rpc/balancer/roundrobin" // registers round_robin
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	_ "github.com/h2rpc/h2rpc/rpc/internal/resolvers" // registers passthrough, unix, unix-abstract, ipv4, ipv6
	"github.com/h2rpc/h2rpc/rpc/resolver"
	_ "github.com/h2rpc/h2rpc/rpc/resolver/dns" // registers dns, the default scheme
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// ErrClientConnClosing is the error of calls on a closed ClientConn; its
// status code is CANCELED, as in gRPC.
var ErrClientConnClosing = status.Error(codes.Canceled, "rpc: the client connection is closing")

// State is the connectivity state of a ClientConn (gRPC "Connectivity
// semantics"); it is connectivity.State, named here too so that code
// written against rpc.State keeps compiling.
type State = connectivity.State

// The connectivity states, as in package connectivity.
const (
	// Idle: no connection and no attempt; the next RPC starts one.
	Idle = connectivity.Idle
	// Connecting: a connection attempt is under way.
	Connecting = connectivity.Connecting
	// Ready: a connection is up and carries RPCs.
	Ready = connectivity.Ready
	// TransientFailure: every address failed; calls that do not wait
	// for ready fail at once until a connection is READY again.
	TransientFailure = connectivity.TransientFailure
	// Shutdown: Close was called.
	Shutdown = connectivity.Shutdown
)

// ClientConn is a client's channel to one target ("gRPC Load Balancing"):
// a resolver, chosen by the target's scheme, turns the target into
// addresses and a service config; a balancer (pick_first unless the
// service config names another) keeps subchannels to those addresses,
// each with its own connection, connectivity state and backoff, and
// picks one for each RPC. The channel starts IDLE and builds its
// resolver and balancer on the first RPC (or Connect); after an idle
// timeout without RPCs it drops them and their connections and goes
// IDLE again. It is safe for concurrent use.
type ClientConn struct {
	target    string
	parsed    resolver.Target
	builder   resolver.Builder
	authority string // the default :authority of the channel's RPCs
	dopts     dialOptions
	unaryInt  UnaryClientInterceptor
	streamInt StreamClientInterceptor

	wg     sync.WaitGroup // subchannels' connection attempts
	ser    serializer     // the balancer's methods and state listeners
	picker atomic.Pointer[pickerGen]
	sc     atomic.Pointer[serviceconfig.Config]
	idle   idler

	// idleMu orders exiting idle, entering idle and Close; held while
	// building or closing the resolver and balancer.
	idleMu sync.Mutex
	rw     *resolverWrapper // nil while idle
	bw     *balancerWrapper // nil while idle

	mu         sync.Mutex
	state      State
	closed     bool
	changed    chan struct{}               // made by a waiter, closed and cleared at each state change
	transports []transport.ClientTransport // not closed yet, over all subchannels
	keepalive  keepalive.ClientParameters

	svcCfg svcConfigState // methodconfig.go
}

// NewClient returns a ClientConn for target without connecting: the first
// RPC (or Connect) does. target is a URI whose scheme names a registered
// resolver ("dns:///host:port", "unix:///path", "passthrough:///addr",
// "ipv4:10.0.0.1:80,10.0.0.2:80", or a scheme registered with
// resolver.Register or WithResolvers); a target without one, such as
// "host:port", uses resolver.GetDefaultScheme() ("dns"). A target that
// names an unregistered scheme with "scheme://" fails with an error
// wrapping ErrUnknownScheme.
//
// The transport credentials must be given: WithTransportCredentials with
// credentials.NewTLS (or its helpers) for TLS, or with
// insecure.NewCredentials() for plaintext; without them NewClient fails
// with ErrNoTransportSecurity.
func NewClient(target string, opts ...DialOption) (*ClientConn, error) {
	cc := &ClientConn{
		target: target,
		dopts:  defaultDialOptions(),
	}
	for _, o := range opts {
		o.apply(&cc.dopts)
	}
	if err := cc.dopts.checkCredentials(); err != nil {
		return nil, err
	}
	var err error
	cc.parsed, cc.builder, err = cc.parseTarget(target)
	if err != nil {
		return nil, err
	}
	cc.authority = cc.dopts.authority
	if cc.authority == "" {
		cc.authority = defaultAuthority(cc.parsed)
	}
	if err := cc.initServiceConfig(); err != nil {
		return nil, err
	}
	cc.keepalive = cc.dopts.keepalive
	cc.unaryInt = chainUnaryClient(cc.dopts.unaryInts)
	cc.streamInt = chainStreamClient(cc.dopts.streamInts)
	cc.idle.timeout = cc.dopts.channel.idleTimeout
	cc.picker.Store(&pickerGen{idle: true, ch: make(chan struct{})})
	return cc, nil
}

// Target is the target NewClient was given.
func (cc *ClientConn) Target() string { return cc.target }

// State reports the connectivity state; it is GetState.
func (cc *ClientConn) State() State { return cc.GetState() }

// GetState reports the channel's connectivity state: the aggregate its
// balancer publishes, IDLE before the first RPC and after an idle
// timeout, SHUTDOWN after Close.
func (cc *ClientConn) GetState() connectivity.State {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.state
}

// WaitForStateChange waits until the state differs from from, or ctx ends
// (then it returns false).
func (cc *ClientConn) WaitForStateChange(ctx context.Context, from State) bool {
	for {
		cc.mu.Lock()
		if cc.state != from {
			cc.mu.Unlock()
			return true
		}
		ch := cc.changedLocked()
		cc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Connect makes an IDLE channel connect: it builds the resolver and
// balancer if the channel is idle, and asks the balancer to connect.
func (cc *ClientConn) Connect() {
	if cc.exitIdle() != nil {
		return
	}
	cc.idleMu.Lock()
	bw := cc.bw
	cc.idleMu.Unlock()
	if bw != nil {
		cc.ser.schedule(bw.exitIdle)
	}
}

// ResetConnectBackoff makes every subchannel waiting out its reconnect
// backoff try again now.
func (cc *ClientConn) ResetConnectBackoff() {
	cc.idleMu.Lock()
	bw := cc.bw
	cc.idleMu.Unlock()
	if bw == nil {
		return
	}
	// The subchannels are the balancer's, so the list is read in its
	// serializer; resetting takes no lock of the serializer's.
	cc.ser.schedule(func() {
		for _, sc := range bw.subConns() {
			sc.resetBackoff()
		}
	})
}

// setState changes the channel's state and wakes waiters, unless it is
// closed.
func (cc *ClientConn) setState(s State) {
	cc.mu.Lock()
	if !cc.closed {
		cc.setStateLocked(s)
	}
	cc.mu.Unlock()
}

// setStateLocked changes the state and wakes waiters. Caller holds cc.mu.
func (cc *ClientConn) setStateLocked(s State) {
	if cc.state == s {
		return
	}
	cc.state = s
	if cc.changed != nil {
		close(cc.changed)
		cc.changed = nil
	}
}

// changedLocked returns a channel closed at the next state change. It is
// made on demand: most channels are never waited on while idle. Caller
// holds cc.mu.
func (cc *ClientConn) changedLocked() <-chan struct{} {
	if cc.changed == nil {
		cc.changed = make(chan struct{})
	}
	return cc.changed
}

// addTransport and removeTransport keep the channel's list of transports
// that have not closed, which Close closes at once.
func (cc *ClientConn) addTransport(t transport.ClientTransport) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed {
		return false
	}
	cc.transports = append(cc.transports, t)
	return true
}

func (cc *ClientConn) removeTransport(t transport.ClientTransport) {
	cc.mu.Lock()
	if i := slices.Index(cc.transports, t); i >= 0 {
		cc.transports = slices.Delete(cc.transports, i, i+1)
	}
	cc.mu.Unlock()
}

// serviceConfig returns the channel's current service config: the
// resolver's, or the default one; nil when there is none. It takes no
// lock: calls read it.
func (cc *ClientConn) serviceConfig() *serviceconfig.Config { return cc.sc.Load() }

// Close closes the channel: open RPCs fail with CANCELED, new ones are
// refused. It closes the resolver, then the balancer, then the
// connections, and waits for the channel's goroutines to end.
func (cc *ClientConn) Close() error {
	cc.idleMu.Lock()
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		cc.idleMu.Unlock()
		return errors.New("rpc: ClientConn already closed")
	}
	cc.setStateLocked(Shutdown)
	cc.closed = true
	cc.mu.Unlock()
	// Calls waiting for a pick, and new ones, fail from now on.
	cc.publishPicker(&pickerGen{closed: true, ch: make(chan struct{})})
	cc.idle.stop()
	cc.teardownLocked()
	cc.ser.close()
	cc.idleMu.Unlock()

	cc.mu.Lock()
	ts := slices.Clone(cc.transports)
	cc.mu.Unlock()
	for _, t := range ts {
		t.Close(ErrClientConnClosing)
	}
	cc.wg.Wait()
	return nil
}

// teardownLocked closes the resolver, then the balancer (which shuts its
// subchannels down). Caller holds cc.idleMu.
func (cc *ClientConn) teardownLocked() {
	if cc.rw != nil {
		cc.rw.close()
		cc.rw = nil
	}
	if bw := cc.bw; bw != nil {
		cc.bw = nil
		if !cc.ser.run(bw.close) {
			bw.close()
		}
	}
}
