// Package orca carries backend metrics (ORCA, "Open Request Cost
// Aggregation", gRFC A51) from servers to the load balancers of their
// clients, in two ways:
//
//   - Per RPC: a server built with CallMetricsServerOptions gives each
//     handler a CallMetricsRecorder (CallMetricsRecorderFromContext); what
//     the handler records goes back to the client in the RPC's trailer
//     "endpoint-load-metrics-bin", a serialized xds.data.orca.v3
//     OrcaLoadReport. On the client, importing this package installs
//     ParseLoadReport as the channel's load parser
//     (balancer.SetServerLoadParser), so a balancer finds the report in
//     balancer.DoneInfo.ServerLoad as an *orcav3.OrcaLoadReport.
//   - Out of band: Register serves xds.service.orca.v3.OpenRcaService,
//     which streams a ServerMetricsRecorder's server-wide metrics to each
//     client that asks, at the interval it asks for; a balancer calls
//     RegisterOOBListener on a READY subchannel to receive them.
//
// The messages are the ones of cncf/xds, under the same proto package
// names, so h2rpc and any other gRPC implementation understand each
// other's reports.
package orca

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	orcav3 "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"
	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// TrailerKey is the trailer metadata key of per-RPC load reports. Its
// value is a serialized OrcaLoadReport (binary metadata: base64 on the
// wire, raw bytes in metadata.MD).
const TrailerKey = "endpoint-load-metrics-bin"

// ErrMalformedLoadReport is what ParseLoadReport's errors wrap when the
// trailer holds something other than one OrcaLoadReport.
var ErrMalformedLoadReport = errors.New("orca: malformed load report")

func init() {
	balancer.SetServerLoadParser(parseServerLoad)
}

// ParseLoadReport returns the load report in an RPC's trailer md: nil and
// no error when md has none; an error wrapping ErrMalformedLoadReport
// when the key holds several values or bytes that are not an
// OrcaLoadReport.
func ParseLoadReport(md metadata.MD) (*orcav3.OrcaLoadReport, error) {
	vs := md[TrailerKey]
	switch len(vs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d values of %s, want one", ErrMalformedLoadReport, len(vs), TrailerKey)
	}
	r := new(orcav3.OrcaLoadReport)
	if err := proto.Unmarshal([]byte(vs[0]), r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedLoadReport, err)
	}
	return r, nil
}

// parseServerLoad is ParseLoadReport as balancer.SetServerLoadParser
// wants it: a nil interface, not a typed nil, when there is no report,
// and no report when it is malformed.
func parseServerLoad(md metadata.MD) any {
	if len(md[TrailerKey]) == 0 {
		return nil
	}
	r, err := ParseLoadReport(md)
	if err != nil {
		return nil
	}
	return r
}
