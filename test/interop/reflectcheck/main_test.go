package reflectcheck

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// longWait bounds every wait of these tests; they never assert timings.
const longWait = 60 * time.Second

// bins holds the binaries the tests build, once per test binary.
var bins struct {
	once sync.Once
	dir  string
	err  error

	serverOnce sync.Once
	server     string
	serverErr  error

	grpcurlOnce sync.Once
	grpcurl     string
	grpcurlSkip string // why grpcurl cannot be had, when it cannot
	grpcurlErr  error
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if bins.dir != "" {
			os.RemoveAll(bins.dir)
		}
	}))
}

// binDir returns the directory the tests build binaries into.
func binDir(t *testing.T) string {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "h2rpc-reflectcheck-")
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

// serverBin builds our interop server once and returns its path.
func serverBin(t *testing.T) string {
	t.Helper()
	dir := binDir(t)
	bins.serverOnce.Do(func() {
		path := filepath.Join(dir, "h2rpc-interop-server")
		out, err := exec.Command("go", "build", "-o", path, "github.com/h2rpc/h2rpc/test/interop/server").CombinedOutput()
		if err != nil {
			bins.serverErr = fmt.Errorf("go build test/interop/server: %v\n%s", err, out)
			return
		}
		bins.server = path
	})
	if bins.serverErr != nil {
		t.Fatal(bins.serverErr)
	}
	return bins.server
}

// listeningLine is the line our interop server writes once it listens.
var listeningLine = regexp.MustCompile(`h2rpc interop server listening on (\S+)`)

// startServer runs our interop server on a free loopback port and returns
// its address. The process is killed when the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(serverBin(t), "--port=0", "--listen_host=127.0.0.1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	var logs strings.Builder // read after exited is closed
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			fmt.Fprintln(&logs, sc.Text())
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case a := <-addr:
		if host, _, err := net.SplitHostPort(a); err != nil || host != "127.0.0.1" {
			t.Fatalf("the server listens on %q, want 127.0.0.1", a)
		}
		return a
	case <-exited:
		t.Fatalf("our interop server exited before listening:\n%s", logs.String())
	case <-time.After(longWait):
		t.Fatal("our interop server did not say it listens")
	}
	return ""
}

// grpcurlBin builds grpcurl, at the version test/interop/go.mod pins with
// its tool directive, and returns its path. When the module proxy cannot
// be reached (and the module is not in the module cache) the test is
// skipped with the reason; CI has the proxy, so there it runs.
func grpcurlBin(t *testing.T) string {
	t.Helper()
	const pkg = "github.com/fullstorydev/grpcurl/cmd/grpcurl"
	dir := binDir(t)
	bins.grpcurlOnce.Do(func() {
		if out, err := exec.Command("go", "mod", "download", "github.com/fullstorydev/grpcurl").CombinedOutput(); err != nil {
			bins.grpcurlSkip = fmt.Sprintf("grpcurl cannot be downloaded (is the Go module proxy reachable?): %v\n%s", err, out)
			return
		}
		path := filepath.Join(dir, "grpcurl")
		if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
			bins.grpcurlErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			return
		}
		bins.grpcurl = path
	})
	if bins.grpcurlSkip != "" {
		t.Skip(bins.grpcurlSkip)
	}
	if bins.grpcurlErr != nil {
		t.Fatal(bins.grpcurlErr)
	}
	return bins.grpcurl
}
