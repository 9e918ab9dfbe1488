package rpc

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// svcConfigOptions are the dial options about the service config and
// retries (gRFC A6).
type svcConfigOptions struct {
	defaultJSON   string
	hasDefault    bool
	disableRetry  bool
	perRPCBuffer  int   // 0: DefaultPerRPCBufferLimit
	channelBuffer int64 // 0: DefaultRetryBufferSize
}

// svcConfigState is the state of a channel's retries shared by all its
// calls. (The service config itself is ClientConn.sc.)
type svcConfigState struct {
	// throttle is the retry throttling of the current service config;
	// nil without retryThrottling.
	throttle atomic.Pointer[retryThrottler]
	bufUsed  atomic.Int64 // bytes held by the replay buffers of all calls
}

// WithDefaultServiceConfig sets the service config (JSON, in the shape of
// gRPC's service_config.proto) the channel uses; by default there is
// none. It gives per method (exact method, else the service, else the
// default entry) the timeout, wait-for-ready, message size limits and
// retry policy, and the channel's retry throttling. NewClient fails with
// an error wrapping serviceconfig.ErrInvalid when js is not valid.
func WithDefaultServiceConfig(js string) DialOption {
	return dialOptionFunc(func(o *dialOptions) {
		o.svcCfg.defaultJSON = js
		o.svcCfg.hasDefault = true
	})
}

// initServiceConfig parses the default service config at NewClient. It
// is the channel's config until the resolver gives one (and, with
// WithDisableServiceConfig, for good).
func (cc *ClientConn) initServiceConfig() error {
	o := &cc.dopts.svcCfg
	if !o.hasDefault {
		return nil
	}
	c, err := serviceconfig.Parse(o.defaultJSON)
	if err != nil {
		return fmt.Errorf("rpc: WithDefaultServiceConfig: %w", err)
	}
	cc.dopts.channel.defaultServiceConfig = c
	cc.setServiceConfig(c)
	return nil
}

// setServiceConfig makes c the config the channel's calls follow. The
// retry throttling starts afresh (full) only when c's differs from the
// one in use: a resolver repeating the same config keeps the tokens.
func (cc *ClientConn) setServiceConfig(c *serviceconfig.Config) {
	cc.sc.Store(c)
	var rt *serviceconfig.RetryThrottling
	if c != nil {
		rt = c.RetryThrottling
	}
	cur := cc.svcCfg.throttle.Load()
	switch {
	case rt == nil:
		cc.svcCfg.throttle.Store(nil)
	case cur == nil || cur.max != rt.MaxTokens || cur.ratio != rt.TokenRatio:
		cc.svcCfg.throttle.Store(newRetryThrottler(rt))
	}
}

// retryThrottler is the channel's retry throttling, nil when its service
// config has none.
func (cc *ClientConn) retryThrottler() *retryThrottler {
	return cc.svcCfg.throttle.Load()
}

// applyMethodConfig applies the method config of sc matching method to
// the call's options: wait-for-ready unless a call option set it, and
// the message size limits (the config's, or the smaller of it and the
// one a call or dial option set). It returns the method's timeout (0:
// none) and retry policy (nil: none).
func (cs *clientStream) applyMethodConfig(sc *serviceconfig.Config, method string) (time.Duration, *serviceconfig.RetryPolicy) {
	mc, ok := sc.MethodConfig(method)
	if !ok {
		return 0, nil
	}
	ci := &cs.ci
	if mc.WaitForReady != nil && ci.set&setWaitForReady == 0 {
		ci.waitForReady = *mc.WaitForReady
	}
	if n := mc.MaxRequestMessageBytes; n != nil {
		if ci.set&setMaxSend == 0 {
			ci.maxSend = *n
		} else {
			ci.maxSend = min(ci.maxSend, *n)
		}
	}
	if n := mc.MaxResponseMessageBytes; n != nil {
		if ci.set&setMaxRecv == 0 {
			ci.maxRecv = *n
		} else {
			ci.maxRecv = min(ci.maxRecv, *n)
		}
	}
	return mc.Timeout, mc.RetryPolicy
}
