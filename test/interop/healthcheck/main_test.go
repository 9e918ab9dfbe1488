// Package healthcheck checks grpc.health.v1 between h2rpc and grpc-go:
// grpc-go's health client and grpc_health_probe against our interop
// server, and our client's health checking against grpc-go's health
// server. Every server runs as a process of its own: grpc-go's
// grpc_health_v1 and ours register the same proto file and names, and the
// protobuf runtime panics when one binary links both. So this package
// imports grpc-go's health package and never ours
// (TestNoBinaryLinksBothHealthProtoPackages in the parent directory checks
// it).
package healthcheck

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { cleanupBinaries() }))
}
