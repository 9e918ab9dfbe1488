package balancer

import (
	"sync/atomic"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// serverLoadParser is the parser SetServerLoadParser installed; nil when
// none is.
var serverLoadParser atomic.Pointer[func(metadata.MD) any]

// SetServerLoadParser installs p as the parser of servers' load reports:
// the channel calls it (through ParseServerLoad) on the trailer of every
// RPC whose PickResult has a Done, and puts what it returns in
// DoneInfo.ServerLoad. p must return a nil interface (not a typed nil)
// when the trailer carries no report, must not keep md, and must be safe
// for concurrent use. Package orca installs its parser of the
// "endpoint-load-metrics-bin" trailer when it is linked in; a later call
// replaces an earlier one, and nil removes it.
func SetServerLoadParser(p func(md metadata.MD) any) {
	if p == nil {
		serverLoadParser.Store(nil)
		return
	}
	serverLoadParser.Store(&p)
}

// ParseServerLoad is what the channel calls to fill DoneInfo.ServerLoad
// from an RPC's trailer: the installed parser's result, or nil when no
// parser is installed. It costs one atomic load when none is.
func ParseServerLoad(md metadata.MD) any {
	p := serverLoadParser.Load()
	if p == nil {
		return nil
	}
	return (*p)(md)
}
