package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// outBuffer collects a process's output, keeping the last max bytes, and
// counts every byte so that a caller can ask for what was written since a
// mark.
type outBuffer struct {
	mu    sync.Mutex
	buf   []byte
	total int64
	max   int
}

func newOutBuffer(max int) *outBuffer { return &outBuffer{max: max} }

func (b *outBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// mark returns the number of bytes written so far.
func (b *outBuffer) mark() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// since returns what was written after mark, as far as it is still kept.
func (b *outBuffer) since(mark int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.total - mark
	if n > int64(len(b.buf)) {
		n = int64(len(b.buf))
	}
	if n < 0 {
		n = 0
	}
	return string(b.buf[len(b.buf)-int(n):])
}

func (b *outBuffer) String() string { return b.since(0) }

// tail returns the last n lines of s (and at most 8 KiB), each prefixed
// with indent, or indent+"(no output)".
func tail(s, indent string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return indent + "(no output)\n"
	}
	const maxBytes = 8 << 10
	cut := false
	if len(s) > maxBytes {
		s, cut = s[len(s)-maxBytes:], true
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines, cut = lines[len(lines)-n:], true
	}
	var sb strings.Builder
	if cut {
		sb.WriteString(indent + "…\n")
	}
	for _, l := range lines {
		sb.WriteString(indent + l + "\n")
	}
	return sb.String()
}

// proc is a child process the harness started. On Linux it runs in its own
// process group (a Ctrl-C reaches the harness only, which stops it) and is
// killed by the kernel if the harness dies (see procattr_linux.go).
type proc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // set before done is closed
}

func startProc(bin string, args, env []string, out *outBuffer) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 2 * time.Second // do not hang on pipes a stray grandchild holds
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop asks the process (group) to terminate, kills it after grace, and
// waits for it. It returns how the process exited.
func (p *proc) stop(grace time.Duration) error {
	if ok, err := p.exited(); ok {
		return err
	}
	terminate(p.cmd)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		kill(p.cmd)
		<-p.done
	}
	return p.waitErr
}

// freePort returns a TCP port that was free on the loopback interface a
// moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitForTCP waits until addr accepts a TCP connection, the process exits,
// ctx ends or timeout passes.
func waitForTCP(ctx context.Context, addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s accepted no connection within %v: %v", addr, timeout, err)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("server exited before accepting connections: %v", exitText(p.waitErr))
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// runResult is how one client run went.
type runResult struct {
	dur      time.Duration
	err      error // nil: exited 0
	timedOut bool
	aborted  bool // ctx ended (interrupt or overall timeout)
}

// runClient runs a client to completion, killing it after timeout or when
// ctx ends.
func runClient(ctx context.Context, bin string, args, env []string, out *outBuffer, timeout time.Duration) runResult {
	start := time.Now()
	p, err := startProc(bin, args, env, out)
	if err != nil {
		return runResult{err: err}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var r runResult
	select {
	case <-p.done:
		r.err = p.waitErr
	case <-t.C:
		r.timedOut = true
		p.stop(2 * time.Second)
		r.err = fmt.Errorf("timed out after %v; killed", timeout)
	case <-ctx.Done():
		r.aborted = true
		p.stop(2 * time.Second)
		r.err = fmt.Errorf("aborted: %v", context.Cause(ctx))
	}
	r.dur = time.Since(start)
	return r
}

// terminate asks a process to exit (SIGTERM), falling back to killing it
// where that signal cannot be sent.
func terminate(cmd *exec.Cmd) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		cmd.Process.Kill()
	}
}

func kill(cmd *exec.Cmd) { cmd.Process.Kill() }
