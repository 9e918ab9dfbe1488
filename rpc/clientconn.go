package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// ErrClientConnClosing is the error of calls on a closed ClientConn; its
// status code is CANCELED, as in gRPC.
var ErrClientConnClosing = status.Error(codes.Canceled, "rpc: the client connection is closing")

// State is the connectivity state of a ClientConn (gRPC "Connectivity
// semantics").
type State int

// The connectivity states.
const (
	// Idle: no connection and no attempt; the next RPC starts one.
	Idle State = iota
	// Connecting: a connection attempt is under way.
	Connecting
	// Ready: a connection is up and carries RPCs.
	Ready
	// TransientFailure: the last attempt failed; the next one waits for
	// the backoff. Calls that do not wait for ready fail at once. The
	// state stays TransientFailure through further attempts until one
	// succeeds.
	TransientFailure
	// Shutdown: Close was called.
	Shutdown
)

func (s State) String() string {
	switch s {
	case Idle:
		return "IDLE"
	case Connecting:
		return "CONNECTING"
	case Ready:
		return "READY"
	case TransientFailure:
		return "TRANSIENT_FAILURE"
	case Shutdown:
		return "SHUTDOWN"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ClientConn is a client's channel to one target: it connects lazily
// (on the first RPC), reconnects with the gRPC connection backoff after a
// failure, and carries any number of concurrent RPCs over one HTTP/2
// connection. It is safe for concurrent use.
type ClientConn struct {
	target    string
	network   string
	addr      string
	dopts     dialOptions
	unaryInt  UnaryClientInterceptor
	streamInt StreamClientInterceptor

	wg sync.WaitGroup // the connect loop

	mu         sync.Mutex
	state      State
	cur        transport.ClientTransport   // while Ready
	transports []transport.ClientTransport // not closed yet; usually one
	cancelDial context.CancelFunc          // while a dial is in progress
	lastErr    error
	changed    chan struct{} // made by a waiter, closed and cleared at each state change
	keepalive  keepalive.ClientParameters

	svcCfg svcConfigState // methodconfig.go
}

// NewClient returns a ClientConn for target without connecting: the first
// RPC (or Connect) does. target is "host:port", optionally with the
// "dns:///" or "passthrough:///" scheme, or "unix:path" /
// "unix:///absolute/path" for a Unix socket.
func NewClient(target string, opts ...DialOption) (*ClientConn, error) {
	cc := &ClientConn{
		target: target,
		dopts:  defaultDialOptions(),
	}
	for _, o := range opts {
		o.apply(&cc.dopts)
	}
	var err error
	cc.network, cc.addr, err = parseTarget(target)
	if err != nil {
		return nil, err
	}
	if err := cc.initServiceConfig(); err != nil {
		return nil, err
	}
	cc.keepalive = cc.dopts.keepalive
	cc.unaryInt = chainUnaryClient(cc.dopts.unaryInts)
	cc.streamInt = chainStreamClient(cc.dopts.streamInts)
	return cc, nil
}

// parseTarget splits a target into a network and an address.
func parseTarget(target string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(target, "unix:///"):
		return "unix", target[len("unix://"):], nil
	case strings.HasPrefix(target, "unix:"):
		return "unix", target[len("unix:"):], nil
	case strings.HasPrefix(target, "dns:///"):
		target = target[len("dns:///"):]
	case strings.HasPrefix(target, "passthrough:///"):
		target = target[len("passthrough:///"):]
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return "", "", fmt.Errorf("rpc: target %q is not host:port: %w", target, err)
	}
	return "tcp", target, nil
}

// Target is the target NewClient was given.
func (cc *ClientConn) Target() string { return cc.target }

// State reports the connectivity state.
func (cc *ClientConn) State() State {
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

// Connect starts connecting if the channel is idle.
func (cc *ClientConn) Connect() {
	cc.mu.Lock()
	if cc.state == Idle {
		cc.connectLocked()
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

// connectLocked starts the connect loop. Caller holds cc.mu.
func (cc *ClientConn) connectLocked() {
	cc.setStateLocked(Connecting)
	cc.wg.Add(1)
	go cc.connectLoop()
}

// transport returns a ready transport, connecting if needed. Unless
// waitForReady, it fails at once with UNAVAILABLE in TRANSIENT_FAILURE.
func (cc *ClientConn) transport(ctx context.Context, waitForReady bool) (transport.ClientTransport, error) {
	for {
		cc.mu.Lock()
		switch cc.state {
		case Ready:
			t := cc.cur
			cc.mu.Unlock()
			return t, nil
		case Shutdown:
			cc.mu.Unlock()
			return nil, ErrClientConnClosing
		case Idle:
			cc.connectLocked()
		case TransientFailure:
			if !waitForReady {
				err := cc.lastErr
				cc.mu.Unlock()
				return nil, status.Errorf(codes.Unavailable, "rpc: connection to %s failed: %v", cc.target, err)
			}
		}
		ch := cc.changedLocked()
		cc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// connectLoop dials until a connection is up or the ClientConn closes,
// waiting out the backoff between attempts ("gRPC connection backoff").
// An attempt succeeds only once the server's SETTINGS arrived (the
// transport waits for them), so a server that accepts and hangs up is a
// failed attempt and is retried after the backoff; the backoff starts
// over only after a connection was READY. A READY connection that dies
// leaves the channel IDLE (goneAway): it reconnects when the next RPC
// asks, as in grpc-go, never on its own in a loop.
func (cc *ClientConn) connectLoop() {
	defer cc.wg.Done()
	for retries := 0; ; retries++ {
		start := time.Now()
		wait := cc.dopts.backoff.delay(retries)
		t, err := cc.dial(max(cc.dopts.minConnectTimeout, wait))
		cc.mu.Lock()
		if cc.state == Shutdown {
			cc.mu.Unlock()
			if t != nil {
				t.Close(ErrClientConnClosing)
			}
			return
		}
		if err == nil {
			cc.cur = t
			cc.transports = append(cc.transports, t)
			cc.setStateLocked(Ready)
			cc.mu.Unlock()
			// Callbacks, not a goroutine per connection waiting on
			// GoAway and Done: an idle channel stays cheap.
			t.Watch(func() { cc.goneAway(t) }, func() { cc.transportClosed(t) })
			return
		}
		cc.lastErr = err
		cc.setStateLocked(TransientFailure)
		// While we wait, only Close changes the state (to Shutdown).
		changed := cc.changedLocked()
		cc.mu.Unlock()
		cc.dopts.logger.Debug("rpc: connection attempt failed", "target", cc.target, "err", err, "retry_in", wait-time.Since(start))

		timer := time.NewTimer(wait - time.Since(start))
		select {
		case <-timer.C:
		case <-changed:
			timer.Stop()
		}
		cc.mu.Lock()
		if cc.state == Shutdown {
			cc.mu.Unlock()
			return
		}
		// The state stays TransientFailure through the next attempt
		// (as grpc-go's pick_first keeps it, "sticky" until READY), so
		// calls that do not wait for ready keep failing at once rather
		// than waiting out each attempt.
		cc.mu.Unlock()
	}
}

func (cc *ClientConn) dial(timeout time.Duration) (transport.ClientTransport, error) {
	// Not derived from a context of the channel: a context derived from
	// another leaves a map behind in its parent for good, which every
	// idle channel would carry. Close cancels the dial through
	// cc.cancelDial instead.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc.mu.Lock()
	if cc.state == Shutdown {
		cancel()
	} else {
		cc.cancelDial = cancel
	}
	kp := cc.keepalive
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		cc.cancelDial = nil
		cc.mu.Unlock()
	}()
	dialer := cc.dopts.dialer
	if dialer == nil && cc.network != "tcp" {
		network := cc.network
		dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	authority := cc.dopts.authority
	if authority == "" {
		authority = cc.addr
		if cc.network == "unix" {
			authority = "localhost"
		}
	}
	return transport.NewClientTransport(ctx, cc.addr, transport.ConnectOptions{
		UserAgent:             cc.dopts.userAgent,
		Authority:             authority,
		TLSConfig:             cc.dopts.tlsConfig,
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

// goneAway runs once when a ready transport stops taking new streams (it
// got GOAWAY or it failed): the channel goes idle (the next RPC
// reconnects) while the old connection finishes its streams.
func (cc *ClientConn) goneAway(t transport.ClientTransport) {
	reason, debug := t.GoAwayReason()
	cc.mu.Lock()
	if reason == transport.GoAwayTooManyPings {
		// The server asked us to ping less often (gRPC A8).
		cc.keepalive = cc.keepalive.Backoff()
		cc.dopts.logger.Warn("rpc: server sent GOAWAY too_many_pings; doubling keepalive time",
			"target", cc.target, "time", cc.keepalive.Time, "debug", debug)
	}
	if cc.cur == t {
		cc.cur = nil
		if cc.state != Shutdown {
			cc.setStateLocked(Idle)
		}
	}
	cc.mu.Unlock()
	t.GracefulClose()
}

// transportClosed runs once when a transport has closed.
func (cc *ClientConn) transportClosed(t transport.ClientTransport) {
	cc.mu.Lock()
	if i := slices.Index(cc.transports, t); i >= 0 {
		cc.transports = slices.Delete(cc.transports, i, i+1)
	}
	cc.mu.Unlock()
}

// dropTransport stops using t for new RPCs (it refused a stream): the
// channel goes idle, and the next RPC connects anew.
func (cc *ClientConn) dropTransport(t transport.ClientTransport) {
	cc.mu.Lock()
	if cc.cur == t {
		cc.cur = nil
		if cc.state != Shutdown {
			cc.setStateLocked(Idle)
		}
	}
	cc.mu.Unlock()
}

// Close closes the channel: open RPCs fail with CANCELED, new ones are
// refused. It waits for the channel's goroutines to end.
func (cc *ClientConn) Close() error {
	cc.mu.Lock()
	if cc.state == Shutdown {
		cc.mu.Unlock()
		return errors.New("rpc: ClientConn already closed")
	}
	cc.setStateLocked(Shutdown)
	if cc.cancelDial != nil {
		cc.cancelDial()
	}
	ts := slices.Clone(cc.transports)
	cc.cur = nil
	cc.mu.Unlock()
	for _, t := range ts {
		t.Close(ErrClientConnClosing)
	}
	cc.wg.Wait()
	return nil
}
