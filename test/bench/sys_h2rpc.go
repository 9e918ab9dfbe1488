package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
)

// h2rpcSystem is h2rpc with its defaults: rpc.NewServer() and
// rpc.NewClient(addr), plaintext HTTP/2, the generated stubs.
type h2rpcSystem struct{}

func (h2rpcSystem) name() string { return sysH2RPC }

func (h2rpcSystem) startServer() (server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := rpc.NewServer()
	echov1.RegisterEchoServer(s, h2rpcEcho{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(lis)
	}()
	return &h2rpcServer{s: s, addr: lis.Addr().String(), done: done}, nil
}

type h2rpcServer struct {
	s    *rpc.Server
	addr string
	done chan struct{}
}

func (s *h2rpcServer) dial(ctx context.Context) (client, error) {
	cc, err := rpc.NewClient(s.addr)
	if err != nil {
		return nil, err
	}
	c := &h2rpcClient{cc: cc, c: echov1.NewEchoClient(cc)}
	// NewClient connects lazily: the first call brings the connection up.
	if err := c.unary(ctx, &echov1.EchoRequest{}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("first call: %w", err)
	}
	return c, nil
}

func (s *h2rpcServer) close() {
	s.s.Stop()
	<-s.done
}

type h2rpcClient struct {
	cc *rpc.ClientConn
	c  echov1.EchoClient
}

func (c *h2rpcClient) unary(ctx context.Context, req *echov1.EchoRequest) error {
	resp, err := c.c.Unary(ctx, req)
	if err != nil {
		return err
	}
	return checkEcho(req, resp)
}

func (c *h2rpcClient) chat(ctx context.Context) (pingPong, error) {
	st, err := c.c.Chat(ctx)
	if err != nil {
		return nil, err
	}
	return h2rpcChat{st}, nil
}

type h2rpcChat struct {
	st rpc.BidiStreamingClient[echov1.EchoRequest, echov1.EchoResponse]
}

func (p h2rpcChat) roundTrip(req *echov1.EchoRequest) error {
	if err := p.st.Send(req); err != nil {
		return err
	}
	resp, err := p.st.Recv()
	if err != nil {
		return err
	}
	return checkEcho(req, resp)
}

func (p h2rpcChat) close() error {
	if err := p.st.CloseSend(); err != nil {
		return err
	}
	if _, err := p.st.Recv(); err != io.EOF {
		return fmt.Errorf("chat end: %v", err)
	}
	return nil
}

func (c *h2rpcClient) download(ctx context.Context, payload []byte, count int) (int64, error) {
	st, err := c.c.Expand(ctx, &echov1.ExpandRequest{Payload: payload, Count: uint32(count)})
	if err != nil {
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

func (c *h2rpcClient) upload(ctx context.Context, payload []byte, count int) error {
	st, err := c.c.Collect(ctx)
	if err != nil {
		return err
	}
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

func (c *h2rpcClient) close() error { return c.cc.Close() }

// h2rpcEcho implements echo.v1.Echo for h2rpc.
type h2rpcEcho struct {
	echov1.UnimplementedEchoServer
}

func (h2rpcEcho) Unary(_ context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: in.Message, Payload: in.Payload}, nil
}

func (h2rpcEcho) Expand(in *echov1.ExpandRequest, s rpc.ServerStreamingServer[echov1.EchoResponse]) error {
	for i := range in.Count {
		if err := s.Send(&echov1.EchoResponse{Message: in.Message, Payload: in.Payload, Sequence: uint64(i)}); err != nil {
			return err
		}
	}
	return nil
}

func (h2rpcEcho) Collect(s rpc.ClientStreamingServer[echov1.EchoRequest, echov1.CollectResponse]) error {
	sum := &echov1.CollectResponse{}
	for {
		in, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(sum)
		}
		if err != nil {
			return err
		}
		collect(sum, in)
	}
}

func (h2rpcEcho) Chat(s rpc.BidiStreamingServer[echov1.EchoRequest, echov1.EchoResponse]) error {
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

// collect adds one request of a Collect call to its summary, as
// echo.proto specifies.
func collect(sum *echov1.CollectResponse, in *echov1.EchoRequest) {
	sum.Count++
	sum.Messages = append(sum.Messages, in.Message)
	sum.PayloadBytes += uint64(len(in.Payload))
}

// checkCollect reports a Collect summary that does not match what was sent.
func checkCollect(sum *echov1.CollectResponse, payload []byte, count int) error {
	if sum.Count != uint64(count) || sum.PayloadBytes != uint64(count*len(payload)) {
		return fmt.Errorf("upload: server got %d messages and %d bytes, sent %d and %d",
			sum.Count, sum.PayloadBytes, count, count*len(payload))
	}
	return nil
}
