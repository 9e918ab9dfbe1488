// Command grpcgobackend is a grpc-go server with grpc-go's health service
// (google.golang.org/grpc/health), for the tests of our client's health
// checking against grpc-go. Every unary method of every service answers
// with its listening address in a google.protobuf.StringValue, so a client
// can tell backends apart. Each line on standard input sets a health
// status, "<STATUS> [service]" (no service: the whole server); it answers
// with "health: done ..." on standard error.
//
//	grpcgobackend --listen=127.0.0.2:0
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var listen = flag.String("listen", "127.0.0.1:0", "The address to listen on")

func main() {
	flag.Parse()
	log.SetPrefix("grpcgobackend: ")
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	addr := lis.Addr().String()
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, s grpc.ServerStream) error {
		var in wrapperspb.StringValue
		if err := s.RecvMsg(&in); err != nil {
			return err
		}
		return s.SendMsg(wrapperspb.String(addr))
	}))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go control(hs)
	fmt.Fprintf(os.Stderr, "grpc-go backend listening on %s \n", addr)
	if err := srv.Serve(lis); err != nil {
		log.Fatal(err)
	}
}

// control applies the health commands read from standard input.
func control(hs *health.Server) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || len(fields) > 2 {
			fmt.Fprintf(os.Stderr, "health: cannot parse %q\n", sc.Text())
			continue
		}
		v, ok := healthpb.HealthCheckResponse_ServingStatus_value[fields[0]]
		if !ok {
			fmt.Fprintf(os.Stderr, "health: unknown status %q\n", fields[0])
			continue
		}
		service := ""
		if len(fields) == 2 {
			service = fields[1]
		}
		hs.SetServingStatus(service, healthpb.HealthCheckResponse_ServingStatus(v))
		fmt.Fprintf(os.Stderr, "health: done %s\n", strings.Join(fields, " "))
	}
	// The test ended: stdin closed.
	os.Exit(0)
}
