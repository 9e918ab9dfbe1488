package main

// protoc-gen-go-grpc's parameters, which the plugin accepts so that
// existing protoc invocations and buf.gen.yaml files keep working.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// echoRPC generates echo/v1/echo_rpc.pb.go with the extra --rpc_opt
// parameters opts (comma-separated, as protoc passes them).
func echoRPC(t *testing.T, opts string) []byte {
	t.Helper()
	args := []string{"--rpc_out=OUT", "--rpc_opt=paths=source_relative"}
	if opts != "" {
		args = append(args, "--rpc_opt="+opts)
	}
	res := mustRunProtoc(t, protoRoot, args, "echo/v1/echo.proto")
	got, ok := res.files["echo/v1/echo_rpc.pb.go"]
	if !ok {
		t.Fatalf("protoc-gen-rpc wrote %v, not echo/v1/echo_rpc.pb.go", keys(res.files))
	}
	return got
}

// TestGrpcGoParametersAccepted: require_unimplemented_servers=true and
// use_generic_streams_experimental=true or false generate the default
// code; require_unimplemented_servers=false leaves mustEmbed out of the
// server interface only; a value that is not a boolean is an error
// naming the parameter.
func TestGrpcGoParametersAccepted(t *testing.T) {
	def := echoRPC(t, "")
	for _, opts := range []string{
		"require_unimplemented_servers=true",
		"use_generic_streams_experimental=true",
		"use_generic_streams_experimental=false",
		"require_unimplemented_servers=true,use_generic_streams_experimental=false",
	} {
		if got := echoRPC(t, opts); !bytes.Equal(got, def) {
			t.Errorf("%s generates other code than the defaults:\n%s", opts, lineDiff(string(def), string(got)))
		}
	}

	got := string(echoRPC(t, "require_unimplemented_servers=false"))
	iface := got[strings.Index(got, "type EchoServer interface {"):]
	iface = iface[:strings.Index(iface, "\n}\n")]
	if strings.Contains(iface, "mustEmbedUnimplementedEchoServer") {
		t.Errorf("with require_unimplemented_servers=false, EchoServer still has mustEmbed:\n%s", iface)
	}
	for _, want := range []string{
		"type UnimplementedEchoServer struct{}",
		"func (UnimplementedEchoServer) mustEmbedUnimplementedEchoServer() {}",
		"type UnsafeEchoServer interface {",
		"type Echo_ExpandServer = rpc.ServerStreamingServer[EchoResponse]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("with require_unimplemented_servers=false, echo_rpc.pb.go lacks %q", want)
		}
	}
	if strings.Count(got, "mustEmbedUnimplementedEchoServer") != strings.Count(string(def), "mustEmbedUnimplementedEchoServer")-1 {
		t.Error("require_unimplemented_servers=false changed more than the server interface's mustEmbed line")
	}

	for _, bad := range []string{"require_unimplemented_servers=maybe", "use_generic_streams_experimental=2"} {
		res, err := runProtoc(t, protoRoot, []string{"--rpc_out=OUT", "--rpc_opt=" + bad}, "echo/v1/echo.proto")
		if err == nil {
			t.Errorf("protoc-gen-rpc accepted %s", bad)
			continue
		}
		if name, _, _ := strings.Cut(bad, "="); !strings.Contains(res.stderr, name) {
			t.Errorf("the error for %s does not name the parameter:\n%s", bad, res.stderr)
		}
	}
}

// implWithoutEmbed is a program that implements EchoServer without
// embedding UnimplementedEchoServer, its streaming methods written
// against the per-method stream names as code for protoc-gen-go-grpc's
// use_generic_streams_experimental=false is, and registers it.
const implWithoutEmbed = `package main

import (
	"context"
	"fmt"

	"github.com/h2rpc/h2rpc/rpc"

	echov1 "example.com/gen/echo/v1"
)

type impl struct{}

func (impl) Unary(context.Context, *echov1.EchoRequest) (*echov1.EchoResponse, error) { return nil, nil }
func (impl) Expand(*echov1.ExpandRequest, echov1.Echo_ExpandServer) error          { return nil }
func (impl) Collect(echov1.Echo_CollectServer) error                               { return nil }
func (impl) Chat(echov1.Echo_ChatServer) error                                     { return nil }

var _ echov1.EchoServer = impl{}

func main() {
	srv := rpc.NewServer()
	echov1.RegisterEchoServer(srv, impl{})
	fmt.Println("registered", len(srv.GetServiceInfo()["echo.v1.Echo"].Methods), "methods")
}
`

// TestRequireUnimplementedServersFalseCompiles: code generated with
// require_unimplemented_servers=false (and
// use_generic_streams_experimental=false) compiles in a module of its
// own, and a type that does not embed UnimplementedEchoServer implements
// EchoServer and registers; with the default, the same program does not
// compile, for want of mustEmbedUnimplementedEchoServer.
func TestRequireUnimplementedServersFalseCompiles(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts     string
		compiles bool
	}{
		{"require_unimplemented_servers=false,use_generic_streams_experimental=false", true},
		{"", false},
	} {
		t.Run("opts="+tc.opts, func(t *testing.T) {
			args := append([]string(nil), sourceRelative...)
			if tc.opts != "" {
				args = append(args, "--rpc_opt="+tc.opts)
			}
			args = append(args, "--go_opt=Mecho/v1/echo.proto=example.com/gen/echo/v1;echov1",
				"--rpc_opt=Mecho/v1/echo.proto=example.com/gen/echo/v1;echov1")
			res := mustRunProtoc(t, protoRoot, args, "echo/v1/echo.proto")
			mod := res.dir
			goMod := "module example.com/gen\n\ngo 1.24\n\n" +
				"require github.com/h2rpc/h2rpc v0.0.0\n\n" +
				"replace github.com/h2rpc/h2rpc => " + repo + "\n"
			for name, content := range map[string][]byte{
				"go.mod":               []byte(goMod),
				"go.sum":               goSum,
				"cmd/register/main.go": []byte(implWithoutEmbed),
			} {
				path := filepath.Join(mod, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			run := func(args ...string) (string, error) {
				cmd := exec.Command(goTool, args...)
				cmd.Dir = mod
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			// go mod tidy fills in the indirect requirements from the
			// module cache (GOPROXY=off: nothing is downloaded).
			if out, err := run("mod", "tidy"); err != nil {
				t.Fatalf("go mod tidy: %v\n%s", err, out)
			}
			out, err := run("vet", "./...")
			if !tc.compiles {
				if err == nil || !strings.Contains(out, "mustEmbedUnimplementedEchoServer") {
					t.Fatalf("with the default, a server without the embed compiled (or failed otherwise): %v\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("go vet: %v\n%s", err, out)
			}
			out, err = run("run", "./cmd/register")
			if err != nil || out != "registered 4 methods\n" {
				t.Fatalf("go run: %v\n%s", err, out)
			}
		})
	}
}
