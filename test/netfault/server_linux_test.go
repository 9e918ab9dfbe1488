package netfault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
)

// The server process is this test binary run again with envChild set:
// TestMain then serves instead of testing (runChild). Its settings come
// in the environment too; it reports on stdout, one event a line:
//
//	ready
//	closed <unix nanos> remote=<addr> readerr=<first read error or none>
//	tally started=<n> completed=<n> unique=<n>
const (
	envChild      = "H2RPC_NETFAULT_SERVER"
	envNS         = "H2RPC_NETFAULT_NS"
	envAddr       = "H2RPC_NETFAULT_ADDR"
	envKATime     = "H2RPC_NETFAULT_KA_TIME"
	envKATimeout  = "H2RPC_NETFAULT_KA_TIMEOUT"
	envUnaryDelay = "H2RPC_NETFAULT_UNARY_DELAY"
)

// serverConfig configures a server process.
type serverConfig struct {
	kaTime, kaTimeout time.Duration // server keepalive; 0 keeps the defaults
	unaryDelay        time.Duration // how long each unary handler runs
}

// serverProc is a running server process, seen from the test.
type serverProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr bytes.Buffer // written by exec until exited

	mu      sync.Mutex
	lines   []string
	newLine chan struct{} // closed and replaced at each line

	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startServer starts a server process in the server namespace and waits
// until it listens.
func (e *env) startServer(cfg serverConfig) *serverProc {
	e.t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		envChild+"=1",
		envNS+"="+e.serverNS,
		envAddr+"="+e.serverAddrPort,
		envKATime+"="+cfg.kaTime.String(),
		envKATimeout+"="+cfg.kaTimeout.String(),
		envUnaryDelay+"="+cfg.unaryDelay.String(),
	)
	p := &serverProc{t: e.t, cmd: cmd, newLine: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.newLine)
			p.newLine = make(chan struct{})
			p.mu.Unlock()
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	e.t.Cleanup(func() {
		p.kill()
		if t, ok := e.t.(*testing.T); ok && t.Failed() {
			t.Logf("server process stderr:\n%s", p.stderr.String())
		}
	})
	if _, ok := p.waitLine("ready", processTimeout); !ok {
		p.kill()
		e.t.Fatalf("the server process did not start: %s", p.stderr.String())
	}
	return p
}

// processTimeout bounds waiting for a server process to start or stop.
const processTimeout = 30 * time.Second

// waitLine waits up to d for a line starting with prefix and returns it.
func (p *serverProc) waitLine(prefix string, d time.Duration) (string, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if strings.HasPrefix(p.lines[seen], prefix) {
				l := p.lines[seen]
				p.mu.Unlock()
				return l, true
			}
		}
		ch := p.newLine
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.exited:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if seen == n {
				return "", false
			}
		case <-deadline.C:
			return "", false
		}
	}
}

// kill kills the process with SIGKILL (kill -9) and waits for it.
func (p *serverProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// term sends SIGTERM (the process stops gracefully) and waits up to
// processTimeout for it to exit.
func (p *serverProc) term() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(processTimeout):
		p.kill()
		return fmt.Errorf("the server process did not exit within %v of SIGTERM", processTimeout)
	}
}

// runChild is the server process: it listens on envAddr inside envNS,
// serves echo.v1.Echo, and stops gracefully on SIGTERM. It returns the
// exit code.
func runChild() int {
	dur := func(k string) time.Duration {
		d, _ := time.ParseDuration(os.Getenv(k))
		return d
	}
	lis, err := inNetns(os.Getenv(envNS), func() (net.Listener, error) {
		return net.Listen("tcp", os.Getenv(envAddr))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 2
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		outMu.Unlock()
	}
	svc := &tallyService{delay: dur(envUnaryDelay), ids: make(map[string]int)}
	srv := rpc.NewServer(
		rpc.KeepaliveParams(keepalive.ServerParameters{Time: dur(envKATime), Timeout: dur(envKATimeout)}),
		rpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 100 * time.Millisecond, PermitWithoutStream: true}),
	)
	echov1.RegisterEchoServer(srv, svc)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
		<-sigs
		srv.GracefulStop()
		close(stopped)
	}()
	say("ready")
	err = srv.Serve(&reportingListener{Listener: lis, say: say})
	if err != nil && !errors.Is(err, rpc.ErrServerStopped) {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	// Serve returns as soon as the stop begins; GracefulStop returns once
	// the calls in flight are done.
	<-stopped
	started, completed, unique := svc.tally()
	say("tally started=%d completed=%d unique=%d", started, completed, unique)
	return 0
}

// tallyService is echo.v1.Echo whose unary handler takes delay and
// counts the calls it started and completed, and their distinct
// messages (each call of a test sends a unique one).
type tallyService struct {
	echov1.Service
	delay              time.Duration
	started, completed atomic.Int64
	mu                 sync.Mutex
	ids                map[string]int
}

func (s *tallyService) Unary(ctx context.Context, in *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	s.started.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	s.ids[in.GetMessage()]++
	s.mu.Unlock()
	s.completed.Add(1)
	return s.Service.Unary(ctx, in)
}

func (s *tallyService) tally() (started, completed int64, unique int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started.Load(), s.completed.Load(), len(s.ids)
}

// reportingListener reports every accepted connection's close, with the
// first error its reads saw (none when our side closed it first).
type reportingListener struct {
	net.Listener
	say func(string, ...any)
}

func (l *reportingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &reportingConn{Conn: c, say: l.say}, nil
}

type reportingConn struct {
	net.Conn
	say     func(string, ...any)
	readErr atomic.Pointer[error]
	once    sync.Once
}

// NetConn exposes the TCP connection, so h2rpc sets its socket options.
func (c *reportingConn) NetConn() net.Conn { return c.Conn }

func (c *reportingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (c *reportingConn) Close() error {
	c.once.Do(func() {
		reason := "none"
		if e := c.readErr.Load(); e != nil {
			reason = (*e).Error()
		}
		c.say("closed %d remote=%s readerr=%q", time.Now().UnixNano(), c.RemoteAddr(), reason)
	})
	return c.Conn.Close()
}
