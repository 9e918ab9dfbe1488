package main

import (
	"context"
	"io"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// echoServer implements echo.v1.Echo.
type echoServer struct {
	echov1.UnimplementedEchoServer
}

func (echoServer) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	rpc.SetHeader(ctx, metadata.Pairs("x-served-by", "h2rpc-demo"))
	rpc.SetTrailer(ctx, metadata.Pairs("x-request-bytes", itoa(len(in.Payload))))
	return &echov1.EchoResponse{Message: in.Message, Payload: in.Payload}, nil
}

func (echoServer) Expand(in *echov1.ExpandRequest, s rpc.ServerStreamingServer[echov1.EchoResponse]) error {
	for i := range in.Count {
		if err := s.Send(&echov1.EchoResponse{Message: in.Message, Payload: in.Payload, Sequence: uint64(i)}); err != nil {
			return err
		}
	}
	return nil
}

func (echoServer) Collect(s rpc.ClientStreamingServer[echov1.EchoRequest, echov1.CollectResponse]) error {
	sum := &echov1.CollectResponse{}
	for {
		in, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(sum)
		}
		if err != nil {
			return err
		}
		sum.Count++
		sum.Messages = append(sum.Messages, in.Message)
		sum.PayloadBytes += uint64(len(in.Payload))
	}
}

func (echoServer) Chat(s rpc.BidiStreamingServer[echov1.EchoRequest, echov1.EchoResponse]) error {
	for seq := uint64(0); ; seq++ {
		in, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&echov1.EchoResponse{Message: in.Message, Payload: in.Payload, Sequence: seq}); err != nil {
			return err
		}
	}
}
