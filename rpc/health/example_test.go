package health_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/health"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
)

// A server registers the health service, reports a service's status, and
// on the way down calls Shutdown before GracefulStop, so that load
// balancers and probes see NOT_SERVING while the RPCs in flight finish.
func Example() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	// Register the server's own services here, then say they serve.
	hs.SetServingStatus("echo.v1.Echo", healthpb.HealthCheckResponse_SERVING)
	go srv.Serve(lis)

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := healthpb.NewHealthClient(cc)
	r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "echo.v1.Echo"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before shutdown:", r.Status)

	// Stopping: NOT_SERVING first, then GOAWAY and wait for the RPCs in
	// flight.
	hs.Shutdown()
	r, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "echo.v1.Echo"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Shutdown:", r.Status)
	srv.GracefulStop()
	// Output:
	// before shutdown: SERVING
	// after Shutdown: NOT_SERVING
}
