package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
)

// h2rpcSystem is h2rpc with its defaults: rpc.NewServer() and
// rpc.NewClient(addr) with insecure (plaintext) credentials, the
// generated stubs.
type h2rpcSystem struct{}

func (h2rpcSystem) name() string { return sysH2RPC }

func (h2rpcSystem) startServer() (server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := rpc.NewServer()
	echov1.RegisterEchoServer(s, echov1.Service{})
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
	cc, err := rpc.NewClient(s.addr, rpc.WithTransportCredentials(insecure.NewCredentials()))
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

// checkCollect reports a Collect summary that does not match what was sent.
func checkCollect(sum *echov1.CollectResponse, payload []byte, count int) error {
	if sum.Count != uint64(count) || sum.PayloadBytes != uint64(count*len(payload)) {
		return fmt.Errorf("upload: server got %d messages and %d bytes, sent %d and %d",
			sum.Count, sum.PayloadBytes, count, count*len(payload))
	}
	return nil
}
