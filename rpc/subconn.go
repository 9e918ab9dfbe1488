package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/transport"
)

// errSubConnShutdown ends a connection attempt of a subchannel that was
// shut down.
var errSubConnShutdown = errors.New("rpc: subchannel shut down")

// errAddressesChanged ends a connection attempt of a subchannel whose
// new address list no longer has the address it was dialling.
var errAddressesChanged = errors.New("rpc: subchannel addresses changed")

// errNoAddresses fails the connection attempt of a subchannel whose
// balancer left it no address (UpdateAddresses with an empty list).
var errNoAddresses = errors.New("rpc: subchannel has no addresses to connect to")

// subConn is a subchannel (balancer.SubConn): at most one transport at a
// time to the first of its addresses that answers, its own connectivity
// state and its own backoff ("gRPC connection backoff").
//
// IDLE → Connect → CONNECTING → READY, or TRANSIENT_FAILURE and, once the
// backoff passed, IDLE again (the balancer then calls Connect). A READY
// subchannel whose connection gets GOAWAY or dies goes IDLE. A
// connection is READY only once the server's SETTINGS arrived (the
// transport waits for them), and the backoff starts over only after a
// connection was READY. Nothing runs while it is IDLE or READY: a
// goroutine lives only through an attempt, the backoff is a timer, and
// the transport reports its end through callbacks.
type subConn struct {
	cc       *ClientConn
	owner    *balancerCC
	listener func(balancer.SubConnState)

	ready atomic.Pointer[readyTransport] // read by every pick

	mu         sync.Mutex
	addrs      []resolver.Address // tried in order by each attempt
	state      connectivity.State
	shutdown   bool
	cur        transport.ClientTransport // while READY
	curAddr    resolver.Address          // cur's address
	retries    int                       // failed attempts since the last READY
	cancelDial context.CancelCauseFunc   // while an attempt is under way
	attemptGen uint64                    // counts attempts: only the latest one may change the state
	dialing    resolver.Address          // the address the attempt under way dials
	backoff    *time.Timer               // while in TRANSIENT_FAILURE
	mustDrain  bool                      // a listener call was queued: unlock drains

	healthCheckEnabled bool         // the balancer asked for health checking (healthcheck.go)
	health             *healthCheck // cur's health check, while it runs
}

// readyTransport boxes a READY transport for an atomic pointer.
type readyTransport struct{ t transport.ClientTransport }

var _ balancer.SubConn = (*subConn)(nil)

func newSubConn(cc *ClientConn, owner *balancerCC, addrs []resolver.Address, listener func(balancer.SubConnState)) *subConn {
	return &subConn{
		cc:       cc,
		owner:    owner,
		addrs:    append([]resolver.Address(nil), addrs...),
		listener: listener,
		state:    connectivity.Idle,
	}
}

// Addresses returns the subchannel's addresses.
func (sc *subConn) Addresses() []resolver.Address {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]resolver.Address(nil), sc.addrs...)
}

// String names the subchannel by its addresses, for logs.
func (sc *subConn) String() string { return fmt.Sprint(sc.Addresses()) }

// UpdateAddresses replaces the subchannel's addresses (pick_first uses
// it when its resolver's list changes; it is not part of
// balancer.SubConn). A connection to an address still in the list is
// kept; one to an address no longer in it is closed once its RPCs are
// done, and the subchannel goes IDLE. An attempt under way that dials an
// address no longer in the list starts over on the new list (the
// subchannel stays CONNECTING); one that dials an address still in it
// goes on.
func (sc *subConn) UpdateAddresses(addrs []resolver.Address) {
	sc.mu.Lock()
	if sc.shutdown {
		sc.unlock()
		return
	}
	sc.addrs = append([]resolver.Address(nil), addrs...)
	if sc.cancelDial != nil && !slices.ContainsFunc(addrs, sc.dialing.Equal) {
		sc.cancelDial(errAddressesChanged)
		sc.startAttemptLocked()
		sc.unlock()
		return
	}
	t := sc.cur
	if t == nil || slices.ContainsFunc(addrs, sc.curAddr.Equal) {
		sc.unlock()
		return
	}
	sc.cur = nil
	sc.ready.Store(nil)
	sc.setStateLocked(connectivity.Idle, nil)
	sc.unlock()
	t.GracefulClose()
}

// setStateLocked changes the state and queues the listener's call (in
// the channel's serializer, so that it never runs concurrently with the
// balancer's methods; it is dropped once the balancer is closed). Caller
// holds sc.mu, which keeps the calls in order, and releases it with
// unlock, which runs the queue if nobody does (the listener may call
// back into the subchannel, so it must not run under sc.mu).
func (sc *subConn) setStateLocked(s connectivity.State, err error) {
	if sc.state == s && s != connectivity.TransientFailure {
		return
	}
	sc.state = s
	st := balancer.SubConnState{ConnectivityState: s, ConnectionError: err}
	if _, drain := sc.cc.ser.add(func() {
		if !sc.owner.closed {
			sc.listener(st)
		}
	}); drain {
		sc.mustDrain = true
	}
}

// unlock releases sc.mu, then runs the serializer's queue if a state
// change made this goroutine its runner. It first ends the health check
// of a transport that is no longer sc.cur.
func (sc *subConn) unlock() {
	sc.stopStaleHealthCheckLocked()
	drain := sc.mustDrain
	sc.mustDrain = false
	sc.mu.Unlock()
	if drain {
		sc.cc.ser.drain()
	}
}

// Connect starts a connection attempt if the subchannel is IDLE. It may be
// called from anywhere, pickers included.
func (sc *subConn) Connect() {
	sc.mu.Lock()
	defer sc.unlock()
	if sc.shutdown || sc.state != connectivity.Idle {
		return
	}
	sc.setStateLocked(connectivity.Connecting, nil)
	sc.startAttemptLocked()
}

// startAttemptLocked starts a connection attempt over the subchannel's
// addresses, superseding any attempt under way. Caller holds sc.mu.
func (sc *subConn) startAttemptLocked() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sc.cancelDial = cancel
	sc.attemptGen++
	sc.dialing = resolver.Address{}
	if len(sc.addrs) > 0 {
		sc.dialing = sc.addrs[0]
	}
	sc.cc.wg.Add(1)
	go sc.attempt(ctx, sc.attemptGen, sc.addrs, sc.retries)
}

// attempt tries the addresses in order, each within its own connect
// timeout (so an address that swallows connections does not starve the
// ones after it), and makes the subchannel READY or TRANSIENT_FAILURE,
// unless a newer attempt (gen is this one's) superseded it meanwhile.
func (sc *subConn) attempt(ctx context.Context, gen uint64, addrs []resolver.Address, retries int) {
	defer sc.cc.wg.Done()
	start := time.Now()
	wait := sc.cc.dopts.backoff.delay(retries)
	// The attempt's context is not derived from a context of the
	// channel: a derived context leaves a map behind in its parent for
	// good, which every idle channel would carry. Shutdown cancels it.
	timeout := max(sc.cc.dopts.minConnectTimeout, wait)
	var (
		t    transport.ClientTransport
		addr resolver.Address
		err  error = errNoAddresses
	)
	for _, addr = range addrs {
		sc.mu.Lock()
		if sc.attemptGen == gen {
			sc.dialing = addr
		}
		sc.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, timeout)
		t, err = sc.dial(actx, addr)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		sc.cc.dopts.logger.Debug("rpc: connection attempt failed", "target", sc.cc.target, "addr", addr.Addr, "err", err)
	}

	sc.mu.Lock()
	if sc.shutdown || sc.attemptGen != gen {
		// Shut down, or superseded by an attempt over a new address
		// list.
		reason := ErrClientConnClosing
		if !sc.shutdown {
			reason = errAddressesChanged
		}
		sc.unlock()
		if t != nil {
			t.Close(reason)
		}
		return
	}
	sc.cancelDial = nil
	if err == nil && !sc.cc.addTransport(t) {
		// The channel closed meanwhile.
		sc.unlock()
		t.Close(ErrClientConnClosing)
		return
	}
	if err == nil {
		sc.cur, sc.curAddr = t, addr
		sc.retries = 0
		sc.transportReadyLocked(t) // READY, or once its health check says so
		sc.unlock()
		// Callbacks, not a goroutine per connection waiting on GoAway
		// and Done: an idle channel stays cheap.
		t.Watch(func() { sc.goneAway(t) }, func() { sc.cc.removeTransport(t) })
		return
	}
	sc.retries++
	sc.setStateLocked(connectivity.TransientFailure, err)
	sc.backoff = time.AfterFunc(wait-time.Since(start), sc.backoffDone)
	sc.unlock()
}

// dial connects to one address.
func (sc *subConn) dial(ctx context.Context, a resolver.Address) (transport.ClientTransport, error) {
	cc := sc.cc
	dialer := cc.dopts.dialer
	if network := a.Network; dialer == nil && network != "" && network != "tcp" {
		dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	// The authority is also the server name the handshake checks
	// (unless the credentials fix one). As in grpc-go, WithAuthority
	// wins over the address's ServerName: a resolver does not change
	// the name the user set.
	authority := cc.authority
	if a.ServerName != "" && cc.dopts.authority == "" {
		authority = a.ServerName
	}
	cc.mu.Lock()
	kp := cc.keepalive
	cc.mu.Unlock()
	return transport.NewClientTransport(ctx, a.Addr, transport.ConnectOptions{
		UserAgent:             cc.dopts.userAgent,
		Authority:             authority,
		TransportCredentials:  cc.dopts.creds,
		Dialer:                dialer,
		Keepalive:             kp,
		InitialWindowSize:     cc.dopts.windowSize,
		InitialConnWindowSize: cc.dopts.connWindowSize,
		ReadBufferSize:        cc.dopts.readBufferSize,
		WriteBufferSize:       cc.dopts.writeBufferSize,
		WriteQuota:            cc.dopts.writeQuota,
		TCPKeepalive:          cc.dopts.tcpKeepalive,
		ConnWriteBudget:       cc.dopts.connWriteBudget,
		MaxHeaderListSize:     cc.dopts.maxHeaderListSize,
		HeaderBlockTimeout:    cc.dopts.headerBlockTimeout,
		Logger:                cc.dopts.logger,
	})
}

// backoffDone ends the backoff after a failed attempt: the subchannel
// goes IDLE, and its balancer decides whether to connect again.
func (sc *subConn) backoffDone() {
	sc.mu.Lock()
	defer sc.unlock()
	sc.backoff = nil
	if !sc.shutdown && sc.state == connectivity.TransientFailure {
		sc.setStateLocked(connectivity.Idle, nil)
	}
}

// resetBackoff ends a backoff wait now.
func (sc *subConn) resetBackoff() {
	sc.mu.Lock()
	defer sc.unlock()
	sc.retries = 0
	if sc.backoff != nil && sc.backoff.Stop() {
		sc.backoff = nil
		if !sc.shutdown && sc.state == connectivity.TransientFailure {
			sc.setStateLocked(connectivity.Idle, nil)
		}
	}
}

// goneAway runs once when a READY transport stops taking new streams (it
// got GOAWAY or it failed): the subchannel goes IDLE while the old
// connection finishes its streams.
func (sc *subConn) goneAway(t transport.ClientTransport) {
	reason, debug := t.GoAwayReason()
	if reason == transport.GoAwayTooManyPings {
		// The server asked us to ping less often (gRPC A8).
		cc := sc.cc
		cc.mu.Lock()
		cc.keepalive = cc.keepalive.Backoff()
		kt := cc.keepalive.Time
		cc.mu.Unlock()
		cc.dopts.logger.Warn("rpc: server sent GOAWAY too_many_pings; doubling keepalive time",
			"target", cc.target, "time", kt, "debug", debug)
	}
	sc.mu.Lock()
	if sc.cur == t {
		sc.cur = nil
		sc.ready.Store(nil)
		if !sc.shutdown {
			sc.setStateLocked(connectivity.Idle, nil)
		}
	}
	sc.unlock()
	t.GracefulClose()
}

// dropReady stops picks from choosing t, which refused a stream because
// it is draining or closing: its GoAway or Done, which make the
// subchannel leave READY, may not have fired yet, and a call's
// transparent retries must not all go to it meanwhile. (The transport
// marks itself draining before it signals GoAway and Done: a GOAWAY
// frame or a dead connection refuses streams a moment before picks can
// see it.)
func (sc *subConn) dropReady(t transport.ClientTransport) {
	if rt := sc.ready.Load(); rt != nil && rt.t == t {
		sc.ready.CompareAndSwap(rt, nil)
	}
}

// readyTransport returns the subchannel's transport if it is READY and
// still takes streams, or nil. It takes no lock: every pick calls it.
func (sc *subConn) readyTransport() transport.ClientTransport {
	rt := sc.ready.Load()
	if rt == nil {
		return nil
	}
	select {
	case <-rt.t.GoAway():
		return nil
	default:
	}
	select {
	case <-rt.t.Done():
		return nil
	default:
	}
	return rt.t
}

// Shutdown shuts the subchannel down: an attempt under way is cancelled,
// and its connection closes once its RPCs are done.
func (sc *subConn) Shutdown() {
	sc.mu.Lock()
	if sc.shutdown {
		sc.unlock()
		return
	}
	sc.shutdown = true
	if sc.cancelDial != nil {
		sc.cancelDial(errSubConnShutdown)
	}
	if sc.backoff != nil {
		sc.backoff.Stop()
		sc.backoff = nil
	}
	t := sc.cur
	sc.cur = nil
	sc.ready.Store(nil)
	sc.setStateLocked(connectivity.Shutdown, nil)
	sc.unlock()
	owner := sc.owner
	sc.cc.ser.schedule(func() { delete(owner.subs, sc) })
	if t != nil {
		t.GracefulClose()
	}
}
