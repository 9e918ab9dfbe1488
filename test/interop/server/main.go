// Command server is the h2rpc interop server: it serves
// grpc.testing.TestService (package test/interop/service) with the
// command-line flags of grpc-go's interop server, so either can stand in
// for the other.
//
//	server --port=10000 [--use_tls --tls_cert_file=server.pem --tls_key_file=server.key]
//
// Without --tls_cert_file and --tls_key_file, --use_tls serves the test
// certificate of grpc-go (for *.test.google.fr, signed by its test CA), as
// grpc-go's server does. Like grpc-go's, it reports backend metrics
// (ORCA) per RPC and out of band, for the orca_per_rpc and orca_oob
// cases, and serves reflection (grpc.reflection.v1 and v1alpha) for
// grpcurl and other tools. The ALTS flags are accepted and ignored: ALTS
// needs Google Cloud.
//
// It also serves grpc.health.v1.Health (the whole server and
// grpc.testing.TestService SERVING), so grpc_health_probe and any gRPC
// health client can ask it. With --health_control_stdin, each line on its
// standard input sets a status, for tests that watch one change:
// "<STATUS> [service]" (no service: the whole server), "shutdown" or
// "resume"; it answers each line with "health: ..." on standard error.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc/testdata"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/health"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
	"github.com/h2rpc/h2rpc/rpc/orca"
	"github.com/h2rpc/h2rpc/rpc/reflection"
	"github.com/h2rpc/h2rpc/test/interop/service"
)

// oobMinReportInterval is the shortest interval of the out-of-band
// backend metrics (orca_oob), whose client asks for 1 s: grpc-go's interop
// server allows the same.
const oobMinReportInterval = time.Second

var (
	port     = flag.Int("port", 10000, "The server port")
	useTLS   = flag.Bool("use_tls", false, "Connection uses TLS if true, else plain TCP")
	certFile = flag.String("tls_cert_file", "", "The TLS cert file (default: grpc-go's testdata/server1.pem)")
	keyFile  = flag.String("tls_key_file", "", "The TLS key file (default: grpc-go's testdata/server1.key)")

	// listenHost is ours (grpc-go's server has no such flag): the abuse
	// harness (../attack) binds the server to loopback only.
	listenHost = flag.String("listen_host", "", "The address to listen on (default: every interface)")

	// Accepted for compatibility with grpc-go's interop server; ALTS is
	// not supported.
	useALTS    = flag.Bool("use_alts", false, "Not supported (ALTS needs Google Cloud); must be false")
	altsHSAddr = flag.String("alts_handshaker_service_address", "", "Ignored (ALTS is not supported)")

	// healthControlStdin is ours: tests flip health statuses through it.
	healthControlStdin = flag.Bool("health_control_stdin", false, `Read health status changes from standard input, one a line: "<STATUS> [service]", "shutdown" or "resume"`)
)

func main() {
	flag.Parse()
	log.SetPrefix("h2rpc interop server: ")
	_ = altsHSAddr
	if *useALTS {
		log.Fatal("--use_alts is not supported")
	}
	var opts []rpc.ServerOption
	if *useTLS {
		if *certFile == "" {
			*certFile = testdata.Path("server1.pem")
		}
		if *keyFile == "" {
			*keyFile = testdata.Path("server1.key")
		}
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("loading the TLS key pair (%s, %s): %v", *certFile, *keyFile, err)
		}
		opts = append(opts, rpc.Creds(creds))
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(*listenHost, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	// Per-RPC backend metrics for orca_per_rpc, as grpc-go's server
	// reports them: its interceptors outermost.
	srv := rpc.NewServer(append(orca.CallMetricsServerOptions(nil), opts...)...)
	if err := service.RegisterWithMetrics(srv, oobMinReportInterval); err != nil {
		log.Fatalf("registering the services: %v", err)
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus("grpc.testing.TestService", healthpb.HealthCheckResponse_SERVING)
	if *healthControlStdin {
		go controlHealth(os.Stdin, hs)
	}
	// Reflection (v1 and v1alpha), so grpcurl and grpc-go's reflection
	// client can explore the server with no .proto files.
	reflection.Register(srv)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		hs.Shutdown()
		srv.Stop()
	}()

	fmt.Fprintf(os.Stderr, "h2rpc interop server listening on %v (tls=%v)\n", lis.Addr(), *useTLS)
	if err := srv.Serve(lis); err != nil && err != rpc.ErrServerStopped {
		log.Fatalf("serve: %v", err)
	}
}
