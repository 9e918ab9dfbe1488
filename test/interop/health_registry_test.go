package interop_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// conflictingProtoPackages are pairs of Go packages, one of grpc-go's
// world and one of ours, that register the same .proto file and names in
// the global protobuf registry: the protobuf runtime panics at init in a
// binary that links both.
var conflictingProtoPackages = []struct{ theirs, ours string }{
	{"google.golang.org/grpc/health/grpc_health_v1", "github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1"},
	{"github.com/cncf/xds/go/xds/data/orca/v3", "github.com/h2rpc/h2rpc/proto/xds/data/orca/v3"},
}

// TestNoBinaryLinksBothHealthProtoPackages checks that none of our
// interop binaries, nor the test binary of ./healthcheck (which drives
// grpc-go's health client against our server run as a process of its
// own) nor its grpc-go backend, links both grpc-go's grpc_health_v1 and
// ours (or both ORCA protos).
func TestNoBinaryLinksBothHealthProtoPackages(t *testing.T) {
	for _, args := range [][]string{
		{"./server"}, {"./client"}, {"./matrix"}, {"./attack"},
		{"-test", "./healthcheck"}, {"./healthcheck/grpcgobackend"},
	} {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %v: %v\n%s", args, err, out)
		}
		deps := strings.Fields(string(out))
		for _, c := range conflictingProtoPackages {
			if slices.Contains(deps, c.theirs) && slices.Contains(deps, c.ours) {
				t.Errorf("%v links both %s and %s, which register the same protos", args, c.theirs, c.ours)
			}
		}
	}
}
