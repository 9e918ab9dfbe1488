// Command client is the h2rpc interop client: it runs one gRPC interop
// test case (package test/interop/cases) against a server, with the
// command-line flags of grpc-go's interop client, so either can stand in
// for the other.
//
//	client --server_host=localhost --server_port=10000 --test_case=large_unary \
//	    [--use_tls [--use_test_ca --ca_file=ca.pem] [--server_host_override=foo.test.google.fr]]
//
// It exits 0 when the case passed, and 1 with the case and what failed on
// stderr otherwise. --use_test_ca without --ca_file trusts grpc-go's test
// CA (testdata/ca.pem), as grpc-go's client does. Flags for credentials
// that need Google Cloud (ALTS, OAuth, service accounts) and for service
// configs are accepted and ignored.
//
// --strict_compression_checks=false (our own flag) runs the compression
// cases against a server that does not implement the CompressedRequest and
// CompressedResponse features, such as grpc-go's interop server; see
// cases.Env.LenientCompression for what is then checked.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc/testdata"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/test/interop/cases"
)

var (
	serverHost         = flag.String("server_host", "localhost", "The server host name")
	serverPort         = flag.Int("server_port", 10000, "The server port number")
	testCase           = flag.String("test_case", "large_unary", "The test case to run")
	useTLS             = flag.Bool("use_tls", false, "Connection uses TLS if true")
	testCA             = flag.Bool("use_test_ca", false, "Whether to replace platform root CAs with the test CA as the CA root")
	caFile             = flag.String("ca_file", "", "The file containing the CA root cert file (default with --use_test_ca: grpc-go's testdata/ca.pem)")
	tlsServerName      = flag.String("server_host_override", "", "The server name used to verify the hostname returned by the TLS handshake, and the :authority, if not empty")
	additionalMetadata = flag.String("additional_metadata", "", "Additional metadata to send in each request, as a semicolon-separated list of key:value pairs")
	strictCompression  = flag.Bool("strict_compression_checks", true, "h2rpc only: false for servers without the CompressedRequest and CompressedResponse features "+
		"(grpc-go's interop server): the compression cases then log instead of failing on the feature probe being accepted and on the compressed flag of responses")

	soakIterations  = flag.Int("soak_iterations", 10, "The number of iterations of rpc_soak and channel_soak")
	soakMaxFailures = flag.Int("soak_max_failures", 0, "The number of soak iterations that may fail")
	soakMaxLatency  = flag.Int("soak_per_iteration_max_acceptable_latency_ms", 1000, "The most milliseconds one soak iteration may take")
	soakOverall     = flag.Int("soak_overall_timeout_seconds", 10, "The seconds after which a soak test stops and fails if not all iterations ran")
	soakMinBetween  = flag.Int("soak_min_time_ms_between_rpcs", 0, "The least milliseconds between two calls of a soak worker")
	soakReqSize     = flag.Int("soak_request_size", 271828, "The request size of a soak call")
	soakRespSize    = flag.Int("soak_response_size", 314159, "The response size of a soak call")
	soakThreads     = flag.Int("soak_num_threads", 1, "The number of concurrent soak workers")

	// The ORCA cases need cases.ORCAServiceConfig here.
	serviceConfigJSON = flag.String("service_config_json", "", "The channel's default service config (JSON)")
)

// Flags of grpc-go's interop client for what needs Google Cloud or a
// service config: accepted so that scripts written for grpc-go run as
// they are, and ignored.
func init() {
	for _, name := range []string{
		"custom_credentials_type", "alts_handshaker_service_address",
		"service_account_key_file", "oauth_scope", "default_service_account",
		"google_c2p_universe_domain",
	} {
		flag.String(name, "", "Ignored (accepted for compatibility with grpc-go's interop client)")
	}
	flag.Bool("use_alts", false, "Ignored (ALTS is not supported)")
}

func main() {
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("h2rpc interop client: ")
	if err := run(); err != nil {
		log.Printf("test case %s FAILED: %v", *testCase, err)
		os.Exit(1)
	}
	log.Printf("test case %s passed", *testCase)
}

func run() error {
	addr := *serverHost
	if *serverPort != 0 {
		addr = net.JoinHostPort(*serverHost, strconv.Itoa(*serverPort))
	}
	var opts []rpc.DialOption
	if !*useTLS {
		opts = append(opts, rpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		cfg := &tls.Config{ServerName: *tlsServerName}
		if *testCA {
			if *caFile == "" {
				*caFile = testdata.Path("ca.pem")
			}
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("reading the CA file: %v", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("no certificate in the CA file %s", *caFile)
			}
		}
		opts = append(opts, rpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if *tlsServerName != "" {
			opts = append(opts, rpc.WithAuthority(*tlsServerName))
		}
	}
	md, err := cases.ParseAdditionalMetadata(*additionalMetadata)
	if err != nil {
		return err
	}
	opts = append(opts, cases.WithAdditionalMetadata(md)...)
	if *serviceConfigJSON != "" {
		opts = append(opts, rpc.WithDefaultServiceConfig(*serviceConfigJSON))
	}

	dial := func() (*rpc.ClientConn, error) { return rpc.NewClient(addr, opts...) }
	cc, err := dial()
	if err != nil {
		return fmt.Errorf("rpc.NewClient(%q): %v", addr, err)
	}
	defer cc.Close()
	env := &cases.Env{
		Conn: cc,
		Dial: dial,
		Soak: cases.SoakConfig{
			Iterations:                       *soakIterations,
			MaxFailures:                      *soakMaxFailures,
			PerIterationMaxAcceptableLatency: time.Duration(*soakMaxLatency) * time.Millisecond,
			OverallTimeout:                   time.Duration(*soakOverall) * time.Second,
			MinTimeBetweenRPCs:               time.Duration(*soakMinBetween) * time.Millisecond,
			RequestSize:                      *soakReqSize,
			ResponseSize:                     *soakRespSize,
			NumWorkers:                       *soakThreads,
			ServerAddr:                       addr,
		},
		Logf:               log.Printf,
		LenientCompression: !*strictCompression,
	}
	log.Printf("running test case %s against %s (tls=%v)", *testCase, addr, *useTLS)
	return cases.Run(context.Background(), *testCase, env)
}
