package main

import (
	"context"
	"strconv"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// echoServer is echov1.Service with metadata on Unary, so the demo has
// something to show in both directions.
type echoServer struct {
	echov1.Service
}

func (s echoServer) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	rpc.SetHeader(ctx, metadata.Pairs("x-served-by", "h2rpc-demo"))
	rpc.SetTrailer(ctx, metadata.Pairs("x-request-bytes", strconv.Itoa(len(in.Payload))))
	return s.Service.Unary(ctx, in)
}
