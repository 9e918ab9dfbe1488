package main

// Building the plugins and running protoc, for every test of the package
// that needs them.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// protoRoot is the proto directory of the module, the include path of
// every .proto file of the project.
var protoRoot = filepath.Join("..", "..", "proto")

var plugins struct {
	once sync.Once
	dir  string // holds protoc-gen-go and protoc-gen-rpc
	err  error
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if plugins.dir != "" {
			os.RemoveAll(plugins.dir)
		}
	}))
}

// buildPlugins builds protoc-gen-go, at the version go.mod requires, and
// protoc-gen-rpc from this directory, once per test binary, and returns
// the directory that holds them.
func buildPlugins(t *testing.T) string {
	t.Helper()
	plugins.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			plugins.err = fmt.Errorf("the go command is not in PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "protoc-gen-rpc-test-")
		if err != nil {
			plugins.err = err
			return
		}
		plugins.dir = dir
		for _, b := range []struct{ out, pkg string }{
			{"protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go"},
			{"protoc-gen-rpc", "."},
		} {
			cmd := exec.Command(goTool, "build", "-o", filepath.Join(dir, b.out), b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				plugins.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if plugins.err != nil {
		t.Fatal(plugins.err)
	}
	return plugins.dir
}

// protocPath finds protoc: $PROTOC, else protoc in PATH. Without protoc
// the generated code cannot be checked, and that is a failure, not a
// reason to skip.
func protocPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROTOC"); p != "" {
		return p
	}
	p, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc is not installed (%v): install protobuf-compiler "+
			"(apt-get install protobuf-compiler, brew install protobuf) or set $PROTOC to protoc's path", err)
	}
	return p
}

// protocResult is what a protoc run produced.
type protocResult struct {
	dir    string            // output directory
	files  map[string][]byte // generated files by slash path relative to dir
	stderr string
}

// runProtoc runs protoc with both plugins on files, paths relative to
// include, with args (the --go_out, --rpc_out, ... flags) in which "OUT"
// stands for a new temporary output directory. It returns protoc's error
// together with its output, for tests that expect it to fail.
func runProtoc(t *testing.T, include string, args []string, files ...string) (protocResult, error) {
	t.Helper()
	pluginDir := buildPlugins(t)
	out := t.TempDir()
	argv := []string{
		"-I", include,
		"--plugin=protoc-gen-go=" + filepath.Join(pluginDir, "protoc-gen-go"),
		"--plugin=protoc-gen-rpc=" + filepath.Join(pluginDir, "protoc-gen-rpc"),
	}
	for _, a := range args {
		argv = append(argv, strings.ReplaceAll(a, "OUT", out))
	}
	argv = append(argv, files...)
	cmd := exec.Command(protocPath(t), argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	res := protocResult{dir: out, files: make(map[string][]byte)}
	err := cmd.Run()
	res.stderr = stderr.String()
	if err != nil {
		return res, fmt.Errorf("protoc %v: %w\n%s", argv, err, res.stderr)
	}
	err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		res.files[filepath.ToSlash(rel)] = b
		return nil
	})
	return res, err
}

// mustRunProtoc is runProtoc for protoc runs that must succeed.
func mustRunProtoc(t *testing.T, include string, args []string, files ...string) protocResult {
	t.Helper()
	res, err := runProtoc(t, include, args, files...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sourceRelative are the arguments that generate messages and services
// next to their .proto files, as the project does.
var sourceRelative = []string{
	"--go_out=OUT", "--go_opt=paths=source_relative",
	"--rpc_out=OUT", "--rpc_opt=paths=source_relative",
}

// protoFiles lists the .proto files under root, as slash paths relative
// to it, sorted.
func protoFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(path) != ".proto" {
			return nil
		}
		// protoc reads the file, but go test caches results by the files
		// the test itself opens: read it here too, so that editing it
		// invalidates the cached result.
		if _, err := os.ReadFile(path); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal(errors.New("no .proto files under " + root))
	}
	return files
}
