package main

import (
	"bytes"
	"io"
	"regexp"
	"testing"

	"github.com/h2rpc/h2rpc/rpc"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDemoMakesEveryKindOfCall(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`/echo\.v1\.Echo/Unary +OK .*received 1 message \(1041 B\)`,
		`header \{x-served-by=h2rpc-demo\}, trailer \{x-request-bytes=1024\}`,
		`/echo\.v1\.Echo/Expand +OK .*received 5 messages`,
		`/echo\.v1\.Echo/Collect +OK .*counted 5 messages and 81920 payload bytes`,
		`/echo\.v1\.Echo/Chat +OK .*10 ping-pong rounds`,
		`server +/echo\.v1\.Echo/Unary received 1041 B, metadata \{.*x-trace-bin=010203`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDemoServerServesReflection checks that the demo's server registers
// reflection, both versions, beside echo.v1.Echo, so grpcurl can
// explore it.
func TestDemoServerServesReflection(t *testing.T) {
	infos := newServerInfos()
	for _, name := range []string{"echo.v1.Echo", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		if _, ok := infos[name]; !ok {
			t.Errorf("the demo server does not serve %s", name)
		}
	}
}

func TestDemoServerReportsItsHealthAndShutsItDownBeforeStopping(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`/grpc\.health\.v1\.Health/Check +OK .*"" \(the whole server\) is SERVING`,
		`/grpc\.health\.v1\.Health/Check +OK .*echo\.v1\.Echo is SERVING`,
		`(?s)shut down \(before GracefulStop\):\n.*Health/Check +OK .*the whole server\) is NOT_SERVING\n.*Health/Check +OK .*echo\.v1\.Echo is NOT_SERVING`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// newServerInfos is the service info of the demo's server.
func newServerInfos() map[string]rpc.ServiceInfo {
	srv, _ := newServer(io.Discard)
	return srv.GetServiceInfo()
}
