// Command h2rpc-demo runs h2rpc end to end.
//
// With no arguments it starts an echo.v1.Echo server on a free loopback
// port and makes one call of each kind against it (unary, server
// streaming, client streaming, bidirectional), printing what went over the
// wire in human terms: method, metadata, message sizes, status, timings.
//
//	h2rpc-demo                     # server and client in one process
//	h2rpc-demo -serve 127.0.0.1:50051
//	h2rpc-demo -call 127.0.0.1:50051
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
	"github.com/h2rpc/h2rpc/rpc/metadata"
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
	srv := newServer(w)
	go srv.Serve(lis)
	defer srv.GracefulStop()
	fmt.Fprintf(w, "echo.v1.Echo server listening on %s (HTTP/2 cleartext)\n\n", lis.Addr())
	return runCalls(w, lis.Addr().String())
}

func newServer(w io.Writer) *rpc.Server {
	srv := rpc.NewServer(rpc.UnaryInterceptor(func(ctx context.Context, req any, info *rpc.UnaryServerInfo, h rpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		fmt.Fprintf(w, "  server  %s received %d B, metadata %s\n", info.FullMethod, size(req), showMD(md))
		return h(ctx, req)
	}))
	echov1.RegisterEchoServer(srv, echoServer{})
	return srv
}

func runServer(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer(os.Stdout)
	fmt.Printf("echo.v1.Echo server listening on %s (HTTP/2 cleartext); Ctrl-C stops it\n", lis.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	go func() {
		<-stop
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
