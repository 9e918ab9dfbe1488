package rpc

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/h2rpc/h2rpc/rpc/connectivity"
)

// DefaultIdleTimeout is how long a channel goes without RPCs before it
// drops its resolver, balancer and connections and goes IDLE, as in
// grpc-go.
const DefaultIdleTimeout = 30 * time.Minute

// idler counts a channel's calls for its idle timeout. The timer is a
// time.AfterFunc: no goroutine waits while the channel is in use or idle.
type idler struct {
	timeout time.Duration // 0: never idle
	calls   atomic.Int32  // calls between pick and their end
	active  atomic.Bool   // a call began or ended since the timer last fired
	timer   *time.Timer   // under cc.idleMu; nil while idle
}

// onCallBegin counts a call in, and reports whether it did (idleness
// is on). An atomic add, and an atomic store only when the flag is not
// set yet: no lock.
func (cc *ClientConn) onCallBegin() bool {
	if cc.idle.timeout <= 0 {
		return false
	}
	cc.idle.calls.Add(1)
	if !cc.idle.active.Load() {
		cc.idle.active.Store(true)
	}
	return true
}

// onCallEnd counts a call out.
func (cc *ClientConn) onCallEnd() {
	if !cc.idle.active.Load() {
		cc.idle.active.Store(true)
	}
	cc.idle.calls.Add(-1)
}

// exitIdle builds the resolver and the balancer of an idle channel (the
// first call, Connect, or a call after the idle timeout).
func (cc *ClientConn) exitIdle() error {
	cc.idleMu.Lock()
	defer cc.idleMu.Unlock()
	cc.mu.Lock()
	closed := cc.closed
	cc.mu.Unlock()
	if closed {
		return ErrClientConnClosing
	}
	if !cc.picker.Load().idle {
		return nil
	}
	bw := newBalancerWrapper(cc)
	cc.bw = bw
	cc.rw = &resolverWrapper{cc: cc, bw: bw}
	bw.rw = cc.rw
	cc.publishPicker(&pickerGen{ch: make(chan struct{})})
	if cc.idle.timeout > 0 {
		cc.idle.active.Store(true)
		cc.idle.timer = time.AfterFunc(cc.idle.timeout, cc.idleTimerFired)
	}
	if err := cc.rw.start(); err != nil {
		// The resolver could not be built: the channel fails calls
		// with the reason until it goes idle and tries again.
		cc.dopts.logger.Warn("rpc: building the resolver failed", "target", cc.target, "err", err)
		e := fmt.Errorf("rpc: resolver of %s: %v", cc.target, err)
		cc.ser.schedule(func() { bw.failLocked(e) })
	}
	return nil
}

// idleTimerFired enters idle if no call ran during the last timeout;
// otherwise it waits another timeout.
func (cc *ClientConn) idleTimerFired() {
	cc.idleMu.Lock()
	defer cc.idleMu.Unlock()
	if cc.idle.timer == nil {
		return // stopped: idle or closed
	}
	if cc.idle.calls.Load() > 0 || cc.idle.active.Swap(false) {
		cc.idle.timer.Reset(cc.idle.timeout)
		return
	}
	cc.idle.timer = nil
	cc.teardownLocked()
	cc.publishPicker(&pickerGen{idle: true, ch: make(chan struct{})})
	cc.setState(connectivity.Idle)
	cc.dopts.logger.Debug("rpc: channel idle", "target", cc.target, "after", cc.idle.timeout)
}

// stop stops the idle timer. Caller holds cc.idleMu.
func (i *idler) stop() {
	if i.timer != nil {
		i.timer.Stop()
		i.timer = nil
	}
}
