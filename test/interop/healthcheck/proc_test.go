package healthcheck

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// longWait bounds every wait of these tests; they never assert timings.
const longWait = 60 * time.Second

// binaries are the programs these tests run as processes of their own,
// built once per test binary into one temporary directory.
var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string // package → binary
}

// cleanupBinaries removes the built programs; TestMain calls it.
func cleanupBinaries() {
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
}

// build builds pkg (a package path) once and returns its binary.
func build(t *testing.T, pkg string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if bin, ok := binaries.built[pkg]; ok {
		return bin
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "h2rpc-healthcheck-test-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir = dir
		binaries.built = map[string]string{}
	}
	bin := filepath.Join(binaries.dir, fmt.Sprintf("bin%d", len(binaries.built)))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	binaries.built[pkg] = bin
	return bin
}

// process is a server running as a process of its own, which takes
// health commands on its standard input and answers each with a
// "health: done ..." line on standard error.
type process struct {
	addr  string
	stdin io.WriteCloser
	acks  chan string // "health: ..." lines
}

// start runs bin with args and waits until it says, on standard error, the
// address it listens on (the first match of listening's group 1). The
// process is killed when the test ends.
func start(t *testing.T, listening *regexp.Regexp, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{stdin: stdin, acks: make(chan string, 16)}
	addr := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			switch m := listening.FindStringSubmatch(line); {
			case m != nil:
				select {
				case addr <- m[1]:
				default:
				}
			case strings.HasPrefix(line, "health: "):
				select {
				case p.acks <- line:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-exited
	})
	select {
	case p.addr = <-addr:
		return p
	case <-exited:
		t.Fatalf("%s exited before listening", bin)
	case <-time.After(longWait):
		t.Fatalf("%s did not say it listens", bin)
	}
	return nil
}

// health sends a health command ("NOT_SERVING grpc.testing.TestService",
// "SERVING", "shutdown", ...) and waits until the server applied it.
func (p *process) health(t *testing.T, command string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, command); err != nil {
		t.Fatal(err)
	}
	select {
	case ack := <-p.acks:
		if ack != "health: done "+command {
			t.Fatalf("health command %q: the server says %q", command, ack)
		}
	case <-time.After(longWait):
		t.Fatalf("health command %q: no answer", command)
	}
}

// ourServerListening is the line our interop server writes once it
// listens.
var ourServerListening = regexp.MustCompile(`h2rpc interop server listening on (\S+) `)

// startOurServer runs our interop server (test/interop/server), which
// serves grpc.health.v1, on a loopback port.
func startOurServer(t *testing.T) *process {
	t.Helper()
	bin := build(t, "github.com/h2rpc/h2rpc/test/interop/server")
	return start(t, ourServerListening, bin, "--port=0", "--listen_host=127.0.0.1", "--health_control_stdin")
}
