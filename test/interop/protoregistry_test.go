package interop_test

import (
	"os/exec"
	"strings"
	"testing"
)

// conflictingProtoPackages pairs each of our generated packages with
// grpc-go's (or its dependencies') package that registers the same .proto
// file and full names in the global protobuf registry. The protobuf
// runtime panics at init when one binary links both, so a test that
// needs the other side's package runs our server or client as a separate
// process (as reflectcheck does).
var conflictingProtoPackages = []struct{ ours, theirs string }{
	{"github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1", "google.golang.org/grpc/reflection/grpc_reflection_v1"},
	{"github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1alpha", "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"},
	{"github.com/h2rpc/h2rpc/test/interop/grpc_testing", "google.golang.org/grpc/interop/grpc_testing"},
	{"github.com/h2rpc/h2rpc/proto/xds/data/orca/v3", "github.com/cncf/xds/go/xds/data/orca/v3"},
	{"github.com/h2rpc/h2rpc/rpc/health/grpc_health_v1", "google.golang.org/grpc/health/grpc_health_v1"},
}

// TestNoBinaryLinksConflictingProtoPackages checks that no binary of
// this module, commands and test binaries alike, links both packages of
// a pair of conflictingProtoPackages: reflectcheck and healthcheck drive
// grpc-go's reflection and health clients against our server, which
// registers ours, so they must run it as a separate process.
func TestNoBinaryLinksConflictingProtoPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-test", "-f", "{{.ImportPath}}|{{.Name}}|{{join .Deps \",\"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -test ./...: %v\n%s", err, out)
	}
	binaries := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, rest, _ := strings.Cut(line, "|")
		name, deps, _ := strings.Cut(rest, "|")
		if name != "main" || strings.Contains(path, " [") {
			continue // not a binary, or a package built for a test binary
		}
		binaries++
		linked := make(map[string]bool)
		for _, dep := range strings.Split(deps, ",") {
			dep, _, _ = strings.Cut(dep, " [") // "pkg [x.test]" is pkg
			linked[dep] = true
		}
		for _, c := range conflictingProtoPackages {
			if linked[c.ours] && linked[c.theirs] {
				t.Errorf("%s links both %s and %s, which register the same .proto file: it panics at init", path, c.ours, c.theirs)
			}
		}
	}
	if binaries == 0 {
		t.Fatalf("go list found no binary in:\n%s", out)
	}
}
