// Package tap defines the hook a server runs for each new RPC before its
// handler starts (rpc.InTapHandle): admission control such as per-client
// rate limits, cheap enough to run on the connection's reader.
package tap

import (
	"context"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// Info describes an RPC to a ServerInHandle.
type Info struct {
	// FullMethodName is the RPC's method, "/package.Service/Method".
	FullMethodName string
	// Header is the request's metadata, as the handler would see it in
	// metadata.FromIncomingContext (":authority", "content-type" and
	// "user-agent" included). It is a copy the hook may keep or modify.
	Header metadata.MD
}

// ServerInHandle admits or refuses a new RPC before the server starts its
// handler. It runs on the connection's reader goroutine, so while it runs
// nothing else of that connection is read: it must be quick and must not
// block (no network calls). ctx carries the RPC's incoming metadata,
// deadline and peer (peer.FromContext: the client's address and
// AuthInfo, what a per-client limit keys on). The context it returns,
// which must be derived from ctx, is the handler's context.
//
// A non-nil error refuses the RPC: the client gets a trailers-only
// response with the error's gRPC status (for example
// status.Error(codes.ResourceExhausted, ...) from a rate limiter), or
// PERMISSION_DENIED with the error's text if it carries none, as in
// grpc-go. The handler never runs; the connection and its other RPCs carry
// on. A hook that panics refuses its RPC with INTERNAL (grpc-go would
// crash the process), as a handler's panic fails only its own RPC.
type ServerInHandle func(ctx context.Context, info *Info) (context.Context, error)
