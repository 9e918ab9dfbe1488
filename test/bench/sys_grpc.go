package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
)

// grpcSystem is grpc-go with its defaults: grpc.NewServer() and
// grpc.NewClient(addr) with insecure (plaintext) credentials, sharing
// the generated messages of proto/echo/v1 with h2rpc.
type grpcSystem struct{}

func (grpcSystem) name() string { return sysGRPC }

func (grpcSystem) startServer() (server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	s.RegisterService(&grpcEchoServiceDesc, grpcEcho{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(lis)
	}()
	return &grpcServer{s: s, addr: lis.Addr().String(), done: done}, nil
}

type grpcServer struct {
	s    *grpc.Server
	addr string
	done chan struct{}
}

func (s *grpcServer) dial(ctx context.Context) (client, error) {
	cc, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c := &grpcClient{cc: cc}
	// NewClient connects lazily: the first call brings the connection up.
	if err := c.unary(ctx, &echov1.EchoRequest{}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("first call: %w", err)
	}
	return c, nil
}

func (s *grpcServer) close() {
	s.s.Stop()
	<-s.done
}

type grpcClient struct {
	cc *grpc.ClientConn
}

// The client side is what protoc-gen-go-grpc generates, written out.

func (c *grpcClient) unary(ctx context.Context, req *echov1.EchoRequest) error {
	resp := new(echov1.EchoResponse)
	if err := c.cc.Invoke(ctx, echov1.Echo_Unary_FullMethodName, req, resp, grpc.StaticMethod()); err != nil {
		return err
	}
	return checkEcho(req, resp)
}

func (c *grpcClient) newStream(ctx context.Context, i int, method string) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &grpcEchoServiceDesc.Streams[i], method, grpc.StaticMethod())
}

func (c *grpcClient) chat(ctx context.Context) (pingPong, error) {
	st, err := c.newStream(ctx, 2, echov1.Echo_Chat_FullMethodName)
	if err != nil {
		return nil, err
	}
	return grpcChat{&grpc.GenericClientStream[echov1.EchoRequest, echov1.EchoResponse]{ClientStream: st}}, nil
}

type grpcChat struct {
	st grpc.BidiStreamingClient[echov1.EchoRequest, echov1.EchoResponse]
}

func (p grpcChat) roundTrip(req *echov1.EchoRequest) error {
	if err := p.st.Send(req); err != nil {
		return err
	}
	resp, err := p.st.Recv()
	if err != nil {
		return err
	}
	return checkEcho(req, resp)
}

func (p grpcChat) close() error {
	if err := p.st.CloseSend(); err != nil {
		return err
	}
	if _, err := p.st.Recv(); err != io.EOF {
		return fmt.Errorf("chat end: %v", err)
	}
	return nil
}

func (c *grpcClient) download(ctx context.Context, payload []byte, count int) (int64, error) {
	cs, err := c.newStream(ctx, 0, echov1.Echo_Expand_FullMethodName)
	if err != nil {
		return 0, err
	}
	st := &grpc.GenericClientStream[echov1.ExpandRequest, echov1.EchoResponse]{ClientStream: cs}
	if err := st.ClientStream.SendMsg(&echov1.ExpandRequest{Payload: payload, Count: uint32(count)}); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if err := st.ClientStream.CloseSend(); err != nil {
		return 0, err
	}
	var n int64
	for got := 0; ; got++ {
		resp, err := st.Recv()
		if err == io.EOF {
			if got != count {
				return n, fmt.Errorf("download: %d messages, want %d", got, count)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += int64(len(resp.Payload))
	}
}

func (c *grpcClient) upload(ctx context.Context, payload []byte, count int) error {
	cs, err := c.newStream(ctx, 1, echov1.Echo_Collect_FullMethodName)
	if err != nil {
		return err
	}
	st := &grpc.GenericClientStream[echov1.EchoRequest, echov1.CollectResponse]{ClientStream: cs}
	req := &echov1.EchoRequest{Payload: payload}
	for range count {
		if err := st.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				_, err = st.CloseAndRecv()
			}
			return err
		}
	}
	sum, err := st.CloseAndRecv()
	if err != nil {
		return err
	}
	return checkCollect(sum, payload, count)
}

func (c *grpcClient) close() error { return c.cc.Close() }

// grpcEchoServer is the server API of echo.v1.Echo for grpc-go, as
// protoc-gen-go-grpc would generate it.
type grpcEchoServer interface {
	Unary(context.Context, *echov1.EchoRequest) (*echov1.EchoResponse, error)
	Expand(*echov1.ExpandRequest, grpc.ServerStreamingServer[echov1.EchoResponse]) error
	Collect(grpc.ClientStreamingServer[echov1.EchoRequest, echov1.CollectResponse]) error
	Chat(grpc.BidiStreamingServer[echov1.EchoRequest, echov1.EchoResponse]) error
}

func grpcEchoUnaryHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(echov1.EchoRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(grpcEchoServer).Unary(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: echov1.Echo_Unary_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(grpcEchoServer).Unary(ctx, req.(*echov1.EchoRequest))
	}
	return interceptor(ctx, in, info, handler)
}

func grpcEchoExpandHandler(srv any, stream grpc.ServerStream) error {
	m := new(echov1.ExpandRequest)
	if err := stream.RecvMsg(m); err != nil {
		return err
	}
	return srv.(grpcEchoServer).Expand(m, &grpc.GenericServerStream[echov1.ExpandRequest, echov1.EchoResponse]{ServerStream: stream})
}

func grpcEchoCollectHandler(srv any, stream grpc.ServerStream) error {
	return srv.(grpcEchoServer).Collect(&grpc.GenericServerStream[echov1.EchoRequest, echov1.CollectResponse]{ServerStream: stream})
}

func grpcEchoChatHandler(srv any, stream grpc.ServerStream) error {
	return srv.(grpcEchoServer).Chat(&grpc.GenericServerStream[echov1.EchoRequest, echov1.EchoResponse]{ServerStream: stream})
}

// grpcEchoServiceDesc is echo.v1.Echo for grpc-go, as protoc-gen-go-grpc
// would generate it (Echo_ServiceDesc).
var grpcEchoServiceDesc = grpc.ServiceDesc{
	ServiceName: "echo.v1.Echo",
	HandlerType: (*grpcEchoServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Unary", Handler: grpcEchoUnaryHandler},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Expand", Handler: grpcEchoExpandHandler, ServerStreams: true},
		{StreamName: "Collect", Handler: grpcEchoCollectHandler, ClientStreams: true},
		{StreamName: "Chat", Handler: grpcEchoChatHandler, ServerStreams: true, ClientStreams: true},
	},
	Metadata: "echo/v1/echo.proto",
}

// grpcEcho implements echo.v1.Echo for grpc-go, the same as echov1.Service
// (grpc-go's stream interfaces are other types, so it cannot reuse it).
type grpcEcho struct{}

func (grpcEcho) Unary(_ context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: in.Message, Payload: in.Payload}, nil
}

func (grpcEcho) Expand(in *echov1.ExpandRequest, s grpc.ServerStreamingServer[echov1.EchoResponse]) error {
	for i := range in.Count {
		if err := s.Send(&echov1.EchoResponse{Message: in.Message, Payload: in.Payload, Sequence: uint64(i)}); err != nil {
			return err
		}
	}
	return nil
}

func (grpcEcho) Collect(s grpc.ClientStreamingServer[echov1.EchoRequest, echov1.CollectResponse]) error {
	sum := &echov1.CollectResponse{}
	for {
		in, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(sum)
		}
		if err != nil {
			return err
		}
		echov1.Summarize(sum, in)
	}
}

func (grpcEcho) Chat(s grpc.BidiStreamingServer[echov1.EchoRequest, echov1.EchoResponse]) error {
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
