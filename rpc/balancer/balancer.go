// Package balancer is the load-balancing API of h2rpc ("gRPC Load
// Balancing"): a channel hands its balancer the addresses its resolver
// found; the balancer keeps subchannels (SubConn, one connection each,
// with its own connectivity state and backoff) to those it wants, and
// publishes a Picker that chooses a READY subchannel for each RPC.
//
// h2rpc registers pick_first (the default) and round_robin; Register adds
// more, selected by name through the service config's
// "loadBalancingConfig".
package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// SubConn is one subchannel: a connection to one address, kept by the
// channel for a balancer. It starts IDLE; Connect starts connecting, and
// after a failure the subchannel waits out its backoff, goes IDLE and
// waits for Connect again. A READY subchannel whose connection is lost
// goes IDLE.
type SubConn interface {
	// Connect starts connecting if the subchannel is IDLE; otherwise it
	// does nothing.
	Connect()
	// Shutdown closes the subchannel: its connection is closed once its
	// RPCs are done, and its state listener hears SHUTDOWN.
	Shutdown()
	// Addresses returns the addresses the subchannel connects to (it
	// tries them in order).
	Addresses() []resolver.Address
}

// SubConnState is a subchannel's state as its listener hears it.
type SubConnState struct {
	ConnectivityState connectivity.State
	// ConnectionError is why the last attempt failed, when the state is
	// TRANSIENT_FAILURE.
	ConnectionError error
}

// NewSubConnOptions are the options of ClientConn.NewSubConn.
type NewSubConnOptions struct {
	// StateListener hears every state change of the subchannel, in
	// order, never concurrently with the balancer's other calls. It is
	// required.
	StateListener func(SubConnState)
	// HealthCheckEnabled turns client-side health checking on for the
	// subchannel, when the channel's service config has a
	// healthCheckConfig (and rpc.WithDisableHealthCheck is not set): the
	// subchannel reports READY only while its backend's
	// grpc.health.v1.Health/Watch says SERVING. round_robin sets it;
	// pick_first does not, as in grpc-go.
	HealthCheckEnabled bool
}

// State is what a balancer publishes to the channel.
type State struct {
	// ConnectivityState is the channel's state (what
	// rpc.ClientConn.GetState reports).
	ConnectivityState connectivity.State
	// Picker picks the subchannel of each RPC until the next State.
	Picker Picker
}

// ClientConn is the channel as its balancer sees it. Its methods must be
// called only from the balancer's own methods or its subchannels' state
// listeners (the channel serialises those), never after Close.
type ClientConn interface {
	// NewSubConn creates a subchannel for addrs, IDLE.
	NewSubConn(addrs []resolver.Address, opts NewSubConnOptions) (SubConn, error)
	// UpdateState publishes the balancer's state and picker. RPCs
	// waiting for a pick try the new picker.
	UpdateState(State)
	// ResolveNow asks the resolver to resolve the target again.
	ResolveNow(resolver.ResolveNowOptions)
	// Target is the channel's target, as NewClient got it.
	Target() string
}

// BuildOptions is what a Builder gets beside the channel.
type BuildOptions struct {
	// Authority is the :authority of the channel's RPCs.
	Authority string
}

// Builder builds the balancers of one policy.
type Builder interface {
	Build(cc ClientConn, opts BuildOptions) Balancer
	// Name is the policy's name in the service config, for example
	// "round_robin".
	Name() string
}

// LBConfig is a policy's parsed config, its ConfigParser's product.
type LBConfig any

// ConfigParser is implemented by builders whose policy takes a config in
// "loadBalancingConfig": the channel parses it when the service config
// arrives, and a config that fails to parse makes the service config
// invalid.
type ConfigParser interface {
	ParseConfig(config json.RawMessage) (LBConfig, error)
}

// ClientConnState is what the channel hands its balancer: the resolver's
// latest state and the policy's config.
type ClientConnState struct {
	ResolverState resolver.State
	// BalancerConfig is the policy's parsed config; nil when it has
	// none.
	BalancerConfig LBConfig
}

// ErrBadResolverState is what UpdateClientConnState returns when the
// state gives the balancer nothing it can use (no address at all): the
// channel asks the resolver to try again.
var ErrBadResolverState = errors.New("balancer: bad resolver state")

// Balancer keeps the subchannels of one channel. The channel calls its
// methods one at a time, never concurrently with each other or with
// subchannel state listeners.
type Balancer interface {
	// UpdateClientConnState hands the balancer new addresses and config.
	UpdateClientConnState(ClientConnState) error
	// ResolverError tells the balancer the resolver failed. It keeps its
	// subchannels if it has any, and otherwise should publish
	// TRANSIENT_FAILURE with a picker that fails RPCs with err.
	ResolverError(err error)
	// ExitIdle asks the balancer to connect, for example because an RPC
	// came to an IDLE channel.
	ExitIdle()
	// Close shuts the balancer's subchannels down.
	Close()
}

// PickInfo is what a Picker knows of an RPC.
type PickInfo struct {
	// FullMethodName is "/package.Service/Method".
	FullMethodName string
	// Ctx is the RPC's context, with its outgoing metadata.
	Ctx context.Context
}

// DoneInfo is how an RPC ended, for PickResult.Done.
type DoneInfo struct {
	// Err is the RPC's error; nil when it ended with OK.
	Err error
	// Trailer is the trailer metadata the server sent.
	Trailer metadata.MD
	// BytesSent reports whether any request bytes left for the server.
	BytesSent bool
	// BytesReceived reports whether any response bytes arrived.
	BytesReceived bool
	// ServerLoad is the server's load report parsed from the trailer,
	// when a parser is registered (package orca registers one for
	// "endpoint-load-metrics-bin"); nil otherwise.
	ServerLoad any
}

// PickResult is a Picker's choice.
type PickResult struct {
	// SubConn carries the RPC; it must be READY, or the pick is made
	// again.
	SubConn SubConn
	// Done, when set, is called once when the RPC ends (or fails before
	// it started on SubConn).
	Done func(DoneInfo)
	// Metadata is added to the RPC's outgoing metadata.
	Metadata metadata.MD
}

// ErrNoSubConnAvailable is what Pick returns when it has nothing to pick
// yet: the RPC waits for the balancer's next picker.
var ErrNoSubConnAvailable = errors.New("balancer: no SubConn is available")

// Picker chooses a subchannel for each RPC. Pick is called concurrently
// and must not block.
//
// Pick's errors, as in grpc-go and gRFC A54: ErrNoSubConnAvailable makes
// the RPC wait for the next picker. A status error (package status) fails
// the RPC with that status at once, even when it waits for ready; the
// codes A54 reserves to servers (INVALID_ARGUMENT, NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, DATA_LOSS)
// become INTERNAL. Any other error fails a fail-fast RPC with UNAVAILABLE
// and makes a wait-for-ready RPC wait for the next picker: it is what a
// balancer in TRANSIENT_FAILURE should return.
type Picker interface {
	Pick(info PickInfo) (PickResult, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Builder{}
)

// Register makes b the builder of its policy (names are case-insensitive),
// replacing any registered before. Call it from an init function.
func Register(b Builder) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[strings.ToLower(b.Name())] = b
}

// Get returns the builder of the named policy, or nil.
func Get(name string) Builder {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return registry[strings.ToLower(name)]
}
