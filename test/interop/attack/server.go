//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildServer builds the h2rpc interop server (without -race: the
// figures are those of a production build) into dir and returns the
// binary's path. It runs the go command in the nested module, so it works
// from any working directory inside it.
func buildServer(ctx context.Context, dir string) (string, error) {
	modDir, err := moduleDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "interop-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	cmd.Dir = modDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the interop server: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleDir finds the test/interop module's directory with the go command.
func moduleDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/h2rpc/h2rpc/test/interop").Output()
	if err != nil {
		return "", fmt.Errorf("locating the test/interop module (run from inside it, e.g. go -C test/interop run ./attack): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// serverProc is a running interop server.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed when the process ended
	err    error         // why it ended, once exited is closed
	stderr *tailBuffer
}

// startServer starts bin on a free loopback port and waits until it
// accepts connections.
func startServer(ctx context.Context, bin string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sp := &serverProc{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		exited: make(chan struct{}),
		stderr: &tailBuffer{max: 16 << 10},
	}
	sp.cmd = exec.Command(bin, "--port="+strconv.Itoa(port), "--listen_host=127.0.0.1")
	sp.cmd.Stdout = sp.stderr
	sp.cmd.Stderr = sp.stderr
	// Its own process group, killed by the kernel if we die first.
	sp.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := sp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the interop server: %w", err)
	}
	go func() {
		sp.err = sp.cmd.Wait()
		close(sp.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", sp.addr, time.Second)
		if err == nil {
			c.Close()
			return sp, nil
		}
		if sp.dead() || time.Now().After(deadline) || ctx.Err() != nil {
			sp.stop()
			return nil, fmt.Errorf("the interop server never served on %s: %w\n%s", sp.addr, err, sp.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dead reports whether the process has ended.
func (sp *serverProc) dead() bool {
	select {
	case <-sp.exited:
		return true
	default:
		return false
	}
}

// stop kills the server and waits for it.
func (sp *serverProc) stop() {
	if !sp.dead() {
		sp.cmd.Process.Kill()
	}
	<-sp.exited
}

// rssKiB reads the server's resident set size from /proc.
func (sp *serverProc) rssKiB() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", sp.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// freePort finds a free loopback port (free when we looked: the server
// binds it moments later).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rssSampler samples a server's RSS every interval and keeps the peak.
type rssSampler struct {
	sp   *serverProc
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	peak int64
	last int64
	n    int
}

const sampleEvery = 50 * time.Millisecond

func sampleRSS(sp *serverProc) *rssSampler {
	s := &rssSampler{sp: sp, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	kib, err := s.sp.rssKiB()
	if err != nil {
		return // the process is gone; dead() says so
	}
	s.mu.Lock()
	s.last = kib
	s.peak = max(s.peak, kib)
	s.n++
	s.mu.Unlock()
}

// finish stops sampling and returns the peak and last RSS in KiB.
func (s *rssSampler) finish() (peak, last int64, samples int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.last, s.n
}

// settledRSS waits until the server's RSS stops moving (three samples in a
// row within 1 MiB, at most two seconds) and returns it in KiB.
func settledRSS(sp *serverProc) (int64, error) {
	var prev []int64
	for i := 0; i < 40; i++ {
		kib, err := sp.rssKiB()
		if err != nil {
			return 0, err
		}
		prev = append(prev, kib)
		if n := len(prev); n >= 3 {
			lo, hi := min(prev[n-1], prev[n-2], prev[n-3]), max(prev[n-1], prev[n-2], prev[n-3])
			if hi-lo <= 1024 {
				return kib, nil
			}
		}
		time.Sleep(sampleEvery)
	}
	return prev[len(prev)-1], nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
