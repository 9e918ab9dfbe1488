package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/h2rpc/h2rpc/rpc/health"
	healthpb "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"
)

// controlHealth applies the health commands of --health_control_stdin,
// one a line, until r ends: "<STATUS> [service]" sets service's status
// (the whole server's without a service), "shutdown" and "resume" call
// Shutdown and Resume. Each line is answered on standard error.
func controlHealth(r io.Reader, hs *health.Server) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 0:
			continue
		case len(fields) == 1 && fields[0] == "shutdown":
			hs.Shutdown()
		case len(fields) == 1 && fields[0] == "resume":
			hs.Resume()
		case len(fields) <= 2:
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
		default:
			fmt.Fprintf(os.Stderr, "health: cannot parse %q\n", sc.Text())
			continue
		}
		fmt.Fprintf(os.Stderr, "health: done %s\n", strings.Join(fields, " "))
	}
}
