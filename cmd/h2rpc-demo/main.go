// Command h2rpc-demo runs h2rpc end to end.
//
// With no arguments it starts an echo.v1.Echo server on a free loopback
// port and makes one call of each kind against it (unary, server
// streaming, client streaming, bidirectional), printing what went over the
// wire in human terms: method, metadata, message sizes, status, timings.
// The server also serves grpc.health.v1.Health (echo.v1.Echo SERVING, so
// grpc_health_probe -addr=... -service=echo.v1.Echo answers 0); the demo
// checks it, then shows the way down: Shutdown makes it NOT_SERVING
// before GracefulStop.
//
//	h2rpc-demo                     # server and client in one process
//	h2rpc-demo -serve 127.0.0.1:50051
//	h2rpc-demo -call 127.0.0.1:50051
//
// The server also serves reflection, so that grpcurl and other tools can
// explore it without the .proto file:
//
//	grpcurl -plaintext 127.0.0.1:50051 list
//	grpcurl -plaintext -d '{"message": "hi"}' 127.0.0.1:50051 echo.v1.Echo/Unary
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/health"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/reflection"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func main() {
	serve := flag.String("serve", "", "only serve echo.v1.Echo on this address")
	call := flag.String("call", "", "only call the echo.v1.Echo server at this address")
	flag.Parse()
	var err error
	switch {
	case *serve != "":
		err = runServer(*serve)
	case *call != "":
		err = runCalls(os.Stdout, *call)
	default:
		err = runDemo(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2rpc-demo:", err)
		os.Exit(1)
	}
}

// runDemo serves on a free loopback port and calls each method once.
func runDemo(w io.Writer) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv, hs := newServer(w)
	go srv.Serve(lis)
	defer srv.GracefulStop()
	fmt.Fprintf(w, "echo.v1.Echo server listening on %s (HTTP/2 cleartext)\n\n", lis.Addr())
	if err := runCalls(w, lis.Addr().String()); err != nil {
		return err
	}
	// The way down: NOT_SERVING first, so that load balancers and probes
	// stop sending work, then GracefulStop lets the RPCs in flight end.
	hs.Shutdown()
	fmt.Fprintln(w, "\nhealth server shut down (before GracefulStop):")
	return showHealth(w, lis.Addr().String())
}

// newServer returns the demo's server: echo.v1.Echo and the health
// service, which reports echo.v1.Echo SERVING.
func newServer(w io.Writer) (*rpc.Server, *health.Server) {
	srv := rpc.NewServer(rpc.UnaryInterceptor(func(ctx context.Context, req any, info *rpc.UnaryServerInfo, h rpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		fmt.Fprintf(w, "  server  %s received %d B, metadata %s\n", info.FullMethod, size(req), showMD(md))
		return h(ctx, req)
	}))
	echov1.RegisterEchoServer(srv, echoServer{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus(echov1.Echo_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	// Reflection lets grpcurl and other tools list, describe and call
	// the server's services without the .proto files.
	reflection.Register(srv)
	return srv, hs
}

func runServer(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv, hs := newServer(os.Stdout)
	fmt.Printf("echo.v1.Echo server listening on %s (HTTP/2 cleartext); Ctrl-C stops it\n", lis.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	go func() {
		<-stop
		hs.Shutdown() // probes see NOT_SERVING while the RPCs in flight end
		srv.GracefulStop()
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, rpc.ErrServerStopped) {
		return err
	}
	return nil
}

// runCalls makes one call of each kind against addr.
func runCalls(w io.Writer, addr string) error {
	cc, err := rpc.NewClient(addr, rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := echov1.NewEchoClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-demo", "hello", "x-trace-bin", "\x01\x02\x03")

	// Unary.
	req := &echov1.EchoRequest{Message: "hello, h2rpc", Payload: make([]byte, 1024)}
	var hdr, trl metadata.MD
	start := time.Now()
	resp, err := c.Unary(ctx, req, rpc.Header(&hdr), rpc.Trailer(&trl))
	report(w, echov1.Echo_Unary_FullMethodName, start, err,
		fmt.Sprintf("sent 1 message (%d B), received 1 message (%d B)", size(req), size(resp)),
		fmt.Sprintf("header %s, trailer %s", showMD(hdr), showMD(trl)))

	// Server streaming.
	start = time.Now()
	n, bytes := 0, 0
	down, err := c.Expand(ctx, &echov1.ExpandRequest{Message: "tick", Payload: make([]byte, 64<<10), Count: 5})
	for err == nil {
		var m *echov1.EchoResponse
		if m, err = down.Recv(); err == nil {
			n++
			bytes += size(m)
		}
	}
	if err == io.EOF {
		err = nil
	}
	report(w, echov1.Echo_Expand_FullMethodName, start, err, fmt.Sprintf("sent 1 message, received %d messages (%d B)", n, bytes), "")

	// Client streaming.
	start = time.Now()
	var sum *echov1.CollectResponse
	up, err := c.Collect(ctx)
	for i := 0; err == nil && i < 5; i++ {
		err = up.Send(&echov1.EchoRequest{Message: "part " + strconv.Itoa(i), Payload: make([]byte, 16<<10)})
	}
	if err == nil {
		sum, err = up.CloseAndRecv()
	}
	report(w, echov1.Echo_Collect_FullMethodName, start, err,
		fmt.Sprintf("sent 5 messages, server counted %d messages and %d payload bytes", sum.GetCount(), sum.GetPayloadBytes()), "")

	// Bidirectional streaming.
	start = time.Now()
	chat, err := c.Chat(ctx)
	rounds := 0
	for ; err == nil && rounds < 10; rounds++ {
		if err = chat.Send(&echov1.EchoRequest{Message: "ping"}); err == nil {
			_, err = chat.Recv()
		}
	}
	if err == nil {
		chat.CloseSend()
		if _, err = chat.Recv(); err == io.EOF {
			err = nil
		}
	}
	report(w, echov1.Echo_Chat_FullMethodName, start, err, fmt.Sprintf("%d ping-pong rounds on one stream", rounds), "")
	return showHealth(w, addr)
}

// showHealth asks the server at addr for its health and echo.v1.Echo's
// (grpc.health.v1.Health/Check).
func showHealth(w io.Writer, addr string) error {
	cc, err := rpc.NewClient(addr, rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, service := range []string{"", echov1.Echo_ServiceDesc.ServiceName} {
		start := time.Now()
		r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		name := service
		if name == "" {
			name = `"" (the whole server)`
		}
		report(w, healthpb.Health_Check_FullMethodName, start, err, fmt.Sprintf("%s is %v", name, r.GetStatus()), "")
	}
	return nil
}

func report(w io.Writer, method string, start time.Time, err error, what, md string) {
	st := status.Convert(err)
	fmt.Fprintf(w, "%-26s %-3s in %-10v %s\n", method, st.Code(), time.Since(start).Round(time.Microsecond), what)
	if err != nil {
		fmt.Fprintf(w, "%26s error: %s\n", "", st.Message())
	}
	if md != "" {
		fmt.Fprintf(w, "%26s %s\n", "", md)
	}
}

func size(m any) int {
	if pm, ok := m.(proto.Message); ok {
		return proto.Size(pm)
	}
	return 0
}

// showMD prints metadata compactly, binary values in hex, without
// transport-level keys.
func showMD(md metadata.MD) string {
	var parts []string
	for k, vs := range md {
		if k == "user-agent" {
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = fmt.Sprintf("%x", v)
			}
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "{}"
	}
	return "{" + strings.Join(parts, " ") + "}"
}
