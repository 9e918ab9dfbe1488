package main

import (
	"context"
	"fmt"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
)

// A system is one RPC stack under test. Every workload is written once
// against these interfaces; a system is a small adapter (sys_*.go).
type system interface {
	// name is the system's name in flags, tables and JSON.
	name() string
	// startServer serves echo.v1.Echo (or the system's equivalent) on a
	// fresh loopback TCP listener with the system's default settings.
	startServer() (server, error)
}

// server is a running echo server.
type server interface {
	// dial opens a client with one connection to the server and waits
	// until the connection is up.
	dial(ctx context.Context) (client, error)
	// close stops the server and waits for it.
	close()
}

// client is one connection to a server. Its methods are safe for
// concurrent use; each checks that the answer echoes the request.
type client interface {
	// unary makes one unary call (echo.v1.Echo/Unary).
	unary(ctx context.Context, req *echov1.EchoRequest) error
	// chat opens one bidirectional stream (echo.v1.Echo/Chat).
	chat(ctx context.Context) (pingPong, error)
	// download makes one server-streaming call (echo.v1.Echo/Expand) that
	// returns count messages carrying payload, and returns the payload
	// bytes received.
	download(ctx context.Context, payload []byte, count int) (int64, error)
	// upload makes one client-streaming call (echo.v1.Echo/Collect) that
	// sends count messages carrying payload.
	upload(ctx context.Context, payload []byte, count int) error
	// close closes the connection.
	close() error
}

// pingPong is one open bidirectional stream.
type pingPong interface {
	// roundTrip sends req and waits for its echo.
	roundTrip(req *echov1.EchoRequest) error
	// close half-closes the stream and waits for its end.
	close() error
}

// allSystems are the systems in their default order.
var allSystems = []system{h2rpcSystem{}, grpcSystem{}, rawSystem{}}

// Names of the systems, as ratios refer to them.
const (
	sysH2RPC = "h2rpc"
	sysGRPC  = "grpc-go"
	sysRaw   = "raw-tcp"
)

// checkEcho reports a response that does not echo its request.
func checkEcho(req *echov1.EchoRequest, resp *echov1.EchoResponse) error {
	if len(resp.GetPayload()) != len(req.GetPayload()) || resp.GetMessage() != req.GetMessage() {
		return fmt.Errorf("echo mismatch: sent %d payload bytes, got %d", len(req.GetPayload()), len(resp.GetPayload()))
	}
	return nil
}
