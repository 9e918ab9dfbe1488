// Package connectivity defines the connectivity states of a channel and
// of its subchannels ("gRPC Connectivity Semantics and API"). It is a
// leaf: package rpc, the balancers and their users share its State.
package connectivity

import "fmt"

// State is the connectivity state of a channel or of one subchannel.
type State int

// The connectivity states.
const (
	// Idle: no connection and no attempt; the next RPC (or Connect)
	// starts one.
	Idle State = iota
	// Connecting: a connection attempt is under way.
	Connecting
	// Ready: a connection is up and carries RPCs.
	Ready
	// TransientFailure: the last attempt failed; the next one waits for
	// the backoff. Calls that do not wait for ready fail at once.
	TransientFailure
	// Shutdown: the channel or subchannel was closed; it never changes
	// state again.
	Shutdown
)

// String returns the state's name as gRPC's documents spell it, for
// example "TRANSIENT_FAILURE".
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
