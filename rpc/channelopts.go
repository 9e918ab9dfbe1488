package rpc

import (
	"time"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// channelOptions are the dial options of the channel's resolver,
// balancer and idleness.
type channelOptions struct {
	idleTimeout          time.Duration
	disableServiceConfig bool
	disableHealthCheck   bool
	resolvers            []resolver.Builder
	// defaultServiceConfig is the config used when the resolver gives
	// none (WithDefaultServiceConfig sets it).
	defaultServiceConfig *serviceconfig.Config
}

func defaultChannelOptions() channelOptions {
	return channelOptions{idleTimeout: DefaultIdleTimeout}
}

// WithIdleTimeout sets how long the channel goes without RPCs before it
// closes its resolver, balancer and connections and goes IDLE (default
// 30 minutes, DefaultIdleTimeout); the next RPC, or Connect, wakes it. 0
// turns idleness off.
func WithIdleTimeout(d time.Duration) DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.channel.idleTimeout = max(d, 0) })
}

// WithDisableServiceConfig makes the channel ignore service configs from
// its resolver (and asks the resolver not to fetch any): it uses the
// default service config, if any. Service configs are on by default.
func WithDisableServiceConfig() DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.channel.disableServiceConfig = true })
}

// WithResolvers gives the channel resolver builders of its own, found by
// scheme before the registered ones (resolver.Register). None by default.
func WithResolvers(bs ...resolver.Builder) DialOption {
	return dialOptionFunc(func(o *dialOptions) {
		o.channel.resolvers = append(o.channel.resolvers, bs...)
	})
}

// WithDisableHealthCheck turns client-side health checking off: the
// channel ignores the service config's healthCheckConfig, and a
// subchannel is READY as soon as its connection is. Health checking is on
// by default, for balancers that ask for it (round_robin; not pick_first,
// as in grpc-go) and only when the service config names a
// healthCheckConfig.serviceName.
func WithDisableHealthCheck() DialOption {
	return dialOptionFunc(func(o *dialOptions) { o.channel.disableHealthCheck = true })
}
