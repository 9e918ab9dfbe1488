package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	h2insecure "github.com/h2rpc/h2rpc/rpc/credentials/insecure"
)

// rrHosts are the loopback addresses of the three servers of unary-rr3,
// each with its own listener.
var rrHosts = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// roundRobinConfig is the service config both clients of unary-rr3 get.
const roundRobinConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// rrSystem is a system that can run unary-rr3: servers on a given host
// that count their unary calls, and one client channel balancing with
// round_robin over several addresses.
type rrSystem interface {
	// startCounting serves echo.v1.Echo on host:0, adding one to calls
	// per unary call, and returns the address and a stop function.
	startCounting(host string, calls *atomic.Int64) (addr string, stop func(), err error)
	// dialRR opens one client channel over addrs with round_robin and
	// waits until it has made a call.
	dialRR(ctx context.Context, addrs []string) (client, error)
}

// errSkipped is returned by a workload a system does not take part in.
type errSkipped struct{ why string }

func (e errSkipped) Error() string { return "skipped: " + e.why }

func runRR3(ctx context.Context, sys system, cfg *config, conc int) ([]float64, error) {
	rs, ok := sys.(rrSystem)
	if !ok {
		return nil, errSkipped{sys.name() + " has no balancer; unary-rr3 is h2rpc and grpc-go only"}
	}
	calls := make([]atomic.Int64, len(rrHosts))
	addrs := make([]string, 0, len(rrHosts))
	for i, h := range rrHosts {
		addr, stop, err := rs.startCounting(h, &calls[i])
		if err != nil {
			return nil, fmt.Errorf("server on %s: %w", h, err)
		}
		defer stop()
		addrs = append(addrs, addr)
	}
	cl, err := rs.dialRR(ctx, addrs)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	req := &echov1.EchoRequest{Payload: []byte{'x'}}
	if _, err := loadUnary(ctx, cl, conc, req, cfg.warmup, cfg.warmupOps, false); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	before := make([]int64, len(calls))
	for i := range calls {
		before[i] = calls[i].Load()
	}
	r, err := loadUnary(ctx, cl, conc, req, cfg.duration, cfg.maxOps, true)
	if err != nil {
		return nil, err
	}
	// Every server must have had a share of the measured calls.
	var shares []string
	for i := range calls {
		n := calls[i].Load() - before[i]
		if n == 0 {
			return nil, fmt.Errorf("server %s got none of %d calls: not balanced", addrs[i], r.calls)
		}
		shares = append(shares, fmt.Sprintf("%s %.1f%%", rrHosts[i], 100*float64(n)/float64(r.calls)))
	}
	if cfg.log != nil && !cfg.rrShown[sys.name()] {
		if cfg.rrShown == nil {
			cfg.rrShown = make(map[string]bool)
		}
		cfg.rrShown[sys.name()] = true
		fmt.Fprintf(cfg.log, "unary-rr3 %s: calls per server: %s\n", sys.name(), strings.Join(shares, ", "))
	}
	return []float64{perSecond(r.calls, r.elapsed), percentile(r.lat, 0.50), percentile(r.lat, 0.99)}, nil
}

// h2rpc

type h2rpcCountingEcho struct {
	echov1.Service
	calls *atomic.Int64
}

func (e h2rpcCountingEcho) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	e.calls.Add(1)
	return e.Service.Unary(ctx, in)
}

func (h2rpcSystem) startCounting(host string, calls *atomic.Int64) (string, func(), error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", nil, err
	}
	s := rpc.NewServer()
	echov1.RegisterEchoServer(s, h2rpcCountingEcho{calls: calls})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(lis)
	}()
	return lis.Addr().String(), func() { s.Stop(); <-done }, nil
}

func (h2rpcSystem) dialRR(ctx context.Context, addrs []string) (client, error) {
	cc, err := rpc.NewClient("ipv4:"+strings.Join(addrs, ","), rpc.WithTransportCredentials(h2insecure.NewCredentials()), rpc.WithDefaultServiceConfig(roundRobinConfig))
	if err != nil {
		return nil, err
	}
	c := &h2rpcClient{cc: cc, c: echov1.NewEchoClient(cc)}
	if err := c.unary(ctx, &echov1.EchoRequest{}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("first call: %w", err)
	}
	return c, nil
}

// grpc-go

type grpcCountingEcho struct {
	grpcEcho
	calls *atomic.Int64
}

func (e grpcCountingEcho) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	e.calls.Add(1)
	return e.grpcEcho.Unary(ctx, in)
}

func (grpcSystem) startCounting(host string, calls *atomic.Int64) (string, func(), error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	s.RegisterService(&grpcEchoServiceDesc, grpcCountingEcho{calls: calls})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(lis)
	}()
	return lis.Addr().String(), func() { s.Stop(); <-done }, nil
}

func (grpcSystem) dialRR(ctx context.Context, addrs []string) (client, error) {
	r := manual.NewBuilderWithScheme("rr3")
	var st resolver.State
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(st)
	cc, err := grpc.NewClient(r.Scheme()+":///echo",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(roundRobinConfig))
	if err != nil {
		return nil, err
	}
	c := &grpcClient{cc: cc}
	if err := c.unary(ctx, &echov1.EchoRequest{}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("first call: %w", err)
	}
	return c, nil
}
