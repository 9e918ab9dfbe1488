// Package serviceconfig holds a channel's service config: the JSON
// document a service owner publishes (through the name resolver, for
// example DNS TXT records) or a client sets as its default
// (rpc.WithDefaultServiceConfig), in the shape of gRPC's "Service Config"
// document (service_config.proto): the load-balancing policy, and per
// method the timeout, wait-for-ready, message size limits and retry
// policy, and the channel's retry throttling.
package serviceconfig

import (
	"encoding/json"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
)

// Config is a parsed, validated service config. It is immutable once
// parsed: channels share it between calls.
type Config struct {
	// LoadBalancing lists the load-balancing policies in order of
	// preference ("loadBalancingConfig"); the channel uses the first
	// one registered. A legacy "loadBalancingPolicy" appears here as a
	// one-entry list with no config. Empty means the channel's default
	// (pick_first).
	LoadBalancing []LBConfig
	// Methods are the "methodConfig" entries, in the order given.
	Methods []MethodConfig
	// RetryThrottling is "retryThrottling"; nil when absent.
	RetryThrottling *RetryThrottling
	// HealthCheckServiceName is "healthCheckConfig.serviceName"; nil when
	// absent (client-side health checking off).
	HealthCheckServiceName *string
	// Raw is the JSON the config was parsed from.
	Raw string
}

// LBConfig is one entry of "loadBalancingConfig": a policy name and its
// own JSON config, which the policy's balancer parses.
type LBConfig struct {
	Name   string
	Config json.RawMessage
}

// Name is one "name" of a method config: Service "" matches every
// method of every service (the default config), Method "" every method
// of Service.
type Name struct {
	Service string // "package.Service"
	Method  string // "Method"
}

// MethodConfig is one "methodConfig" entry. A nil pointer field was not
// set, and leaves the call's own option (or the default) alone.
type MethodConfig struct {
	Names []Name
	// Timeout bounds each call ("timeout"); 0 means none. A call's own
	// deadline wins when it is earlier.
	Timeout time.Duration
	// WaitForReady is "waitForReady".
	WaitForReady *bool
	// MaxRequestMessageBytes is "maxRequestMessageBytes"; the smaller of
	// it and the call's own limit applies.
	MaxRequestMessageBytes *int
	// MaxResponseMessageBytes is "maxResponseMessageBytes"; the smaller of
	// it and the call's own limit applies.
	MaxResponseMessageBytes *int
	// RetryPolicy is "retryPolicy" (gRFC A6); nil means no retries
	// beyond transparent ones.
	RetryPolicy *RetryPolicy
}

// RetryPolicy is a method's "retryPolicy" (gRFC A6).
type RetryPolicy struct {
	// MaxAttempts counts the original attempt; at least 2 in the JSON,
	// capped at 5.
	MaxAttempts int
	// InitialBackoff, MaxBackoff and BackoffMultiplier give the delay
	// before attempt n (n ≥ 1): a random duration in
	// [0, min(InitialBackoff·BackoffMultiplier^(n-1), MaxBackoff)).
	InitialBackoff    time.Duration
	MaxBackoff        time.Duration
	BackoffMultiplier float64
	// RetryableStatusCodes are the codes a failed attempt is retried on;
	// never empty.
	RetryableStatusCodes []codes.Code
}

// RetryThrottling is the channel's "retryThrottling" (gRFC A6): a token
// bucket of MaxTokens tokens that every failed attempt drains by 1 and
// every success refills by TokenRatio; retries stop while it holds no
// more than half its tokens.
type RetryThrottling struct {
	MaxTokens  float64
	TokenRatio float64
}

// ParseResult is a resolver's service config: a parsed Config, or the
// error that parsing it gave (the channel then keeps its previous config,
// or goes to TRANSIENT_FAILURE if it has none).
type ParseResult struct {
	Config *Config
	Err    error
}
