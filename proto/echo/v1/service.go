package echov1

import (
	"context"
	"errors"
	"io"

	"github.com/h2rpc/h2rpc/rpc"
)

// Service implements echo.v1.Echo as echo.proto documents it. The demo,
// the tests and the benchmark serve it; embed it to change one method.
type Service struct {
	UnimplementedEchoServer
}

// Unary answers with the request's message and payload.
func (Service) Unary(_ context.Context, in *EchoRequest) (*EchoResponse, error) {
	return &EchoResponse{Message: in.GetMessage(), Payload: in.GetPayload()}, nil
}

// Expand answers with in.Count responses numbered from 0.
func (Service) Expand(in *ExpandRequest, s rpc.ServerStreamingServer[EchoResponse]) error {
	for i := range in.GetCount() {
		if err := s.Send(&EchoResponse{Message: in.GetMessage(), Payload: in.GetPayload(), Sequence: uint64(i)}); err != nil {
			return err
		}
	}
	return nil
}

// Collect summarises the requests once the client closes its side.
func (Service) Collect(s rpc.ClientStreamingServer[EchoRequest, CollectResponse]) error {
	sum := &CollectResponse{}
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(sum)
		}
		if err != nil {
			return err
		}
		Summarize(sum, in)
	}
}

// Chat answers each request in order, numbering the responses from 0.
func (Service) Chat(s rpc.BidiStreamingServer[EchoRequest, EchoResponse]) error {
	for seq := uint64(0); ; seq++ {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&EchoResponse{Message: in.GetMessage(), Payload: in.GetPayload(), Sequence: seq}); err != nil {
			return err
		}
	}
}

// Summarize adds one request of a Collect call to its summary, as
// echo.proto specifies.
func Summarize(sum *CollectResponse, in *EchoRequest) {
	sum.Count++
	sum.Messages = append(sum.Messages, in.GetMessage())
	sum.PayloadBytes += uint64(len(in.GetPayload()))
}
