// Command matrix runs the gRPC interop test matrix between grpc-go and
// h2rpc: it builds grpc-go's interop client and server (from the versions
// test/interop/go.mod pins) and ours (test/interop/client, test/interop/server),
// generates TLS certificates, and runs every test case in every direction,
// plaintext and over TLS, each client and server a separate process talking
// over a loopback socket. See table.go for the matrix and the combinations
// that are not applicable.
//
// Usage, from test/interop:
//
//	go run ./matrix
//
// or from the repository root:
//
//	go -C test/interop run ./matrix
//
// It prints one line per case and direction, then a final line
// "N passed, M failed", and exits 1 if any failed.
//
// Flags, mostly for development:
//
//	-dir DIR          the test/interop module (default: found from the working directory)
//	-pairs LIST       client→server pairs, e.g. grpc-go→grpc-go,h2rpc→h2rpc ("->" or ":" also work)
//	-security LIST    plaintext,tls
//	-cases LIST       a subset of the test cases
//	-case-timeout D   time limit for one client run (default 60s)
//	-timeout D        time limit for the whole run, builds included (default 20m)
//	-keep             keep the temporary directory (binaries, certificates)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const interopModule = "github.com/h2rpc/h2rpc/test/interop"

// Where each implementation's interop binaries are built from, relative to
// the test/interop module.
var buildPkgs = map[impl][2]string{ // client, server
	grpcGo: {"google.golang.org/grpc/interop/client", "google.golang.org/grpc/interop/server"},
	h2rpc:  {"./client", "./server"},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

type options struct {
	dir         string
	pairs       []pair
	secs        []security
	cases       []string
	caseTimeout time.Duration
	timeout     time.Duration
	keep        bool
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	var o options
	var pairs, secs, cases string
	var def []string
	for _, p := range defaultPairs {
		def = append(def, p.String())
	}
	fs.StringVar(&o.dir, "dir", "", "the test/interop module directory (default: found from the working directory)")
	fs.StringVar(&pairs, "pairs", strings.Join(def, ","), "comma-separated client→server pairs (grpc-go, h2rpc; \"->\" or \":\" for \"→\")")
	fs.StringVar(&secs, "security", "plaintext,tls", "comma-separated security modes")
	fs.StringVar(&cases, "cases", "", "comma-separated test cases (default: all)")
	fs.DurationVar(&o.caseTimeout, "case-timeout", 60*time.Second, "time limit for one client run")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "time limit for the whole run, builds included")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.pairs, err = parsePairs(pairs); err != nil {
		return o, err
	}
	if o.secs, err = parseSecurity(secs); err != nil {
		return o, err
	}
	if o.cases, err = parseCases(cases); err != nil {
		return o, err
	}
	return o, nil
}

// binaries are one implementation's built client and server.
type binaries struct {
	client, server string
	err            error // the build failed
}

// tally counts outcomes; xfail counts the expected failures (see
// table.go), which are neither passed nor failed.
type tally struct{ passed, failed, na, xfail int }

func run(args []string, stdout io.Writer) int {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "matrix:", err)
		return 2
	}
	out := func(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }

	dir := o.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err == nil {
			dir, err = findModuleDir(wd)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "matrix:", err, "(use -dir)")
			return 2
		}
	} else if !isInteropModule(dir) {
		fmt.Fprintf(os.Stderr, "matrix: %s is not the %s module\n", dir, interopModule)
		return 2
	}
	dir, _ = filepath.Abs(dir)

	// The first Ctrl-C (or SIGTERM) stops the run in order: the running
	// client and the server are stopped, the temporary directory removed.
	// A second one kills the harness at once; the kernel then kills the
	// children (procattr_linux.go).
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() { <-sigCtx.Done(); stopSignals() }()
	ctx, cancel := context.WithTimeoutCause(sigCtx, o.timeout, fmt.Errorf("the whole run took longer than -timeout=%v", o.timeout))
	defer cancel()

	tmp, err := os.MkdirTemp("", "h2rpc-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		return 1
	}
	if o.keep {
		out("keeping %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	certs, err := writeCerts(tmp, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix: generating certificates:", err)
		return 1
	}

	var ps []string
	for _, p := range o.pairs {
		ps = append(ps, p.String())
	}
	out("interop matrix in %s: %s; %v; %d of %d test cases\n", dir, strings.Join(ps, ", "), o.secs, len(o.cases), len(allCases))
	runStart := time.Now()
	bins := map[impl]binaries{}
	used := usedImpls(o.pairs)
	for _, im := range impls {
		if used[im] {
			bins[im] = build(ctx, dir, tmp, im, out)
		}
	}

	env := append(os.Environ(), "GRPC_GO_LOG_SEVERITY_LEVEL=info")
	r := &runner{opts: o, bins: bins, certs: certs, serverEnv: env, clientEnv: env, out: out}
	var t tally
	groups := expand(o.pairs, o.secs, o.cases)
	for i, g := range groups {
		if ctx.Err() != nil {
			n := 0
			for _, g := range groups[i:] {
				for _, c := range g.combos {
					if c.skip == "" {
						n++
					}
				}
			}
			out("ABORTED  %v: %d combinations not run, counted as failed\n", context.Cause(ctx), n)
			t.failed += n
			break
		}
		r.runGroup(ctx, g, &t)
	}
	if t.na > 0 {
		out("%d combinations not applicable (N/A above, with the reason; see matrix/table.go)\n", t.na)
	}
	if t.xfail > 0 {
		out("%d combinations failed as expected (XFAIL above, with the reason; see matrix/table.go)\n", t.xfail)
	}
	out("matrix took %v (builds included)\n", time.Since(runStart).Round(100*time.Millisecond))
	out("%d passed, %d failed\n", t.passed, t.failed)
	if t.failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// build builds im's interop client and server into tmp/<im>/.
func build(ctx context.Context, dir, tmp string, im impl, out func(string, ...any)) binaries {
	start := time.Now()
	outDir := filepath.Join(tmp, string(im))
	b := binaries{client: filepath.Join(outDir, "client"), server: filepath.Join(outDir, "server")}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		b.err = err
		return b
	}
	pkgs := buildPkgs[im]
	cmd := exec.CommandContext(ctx, "go", "build", "-o", outDir+string(filepath.Separator), pkgs[0], pkgs[1])
	cmd.Dir = dir
	// On interrupt or timeout, let the go command stop its compilers, and
	// kill it if it has not exited 5 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	setBuildAttr(cmd)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		b.err = fmt.Errorf("go build %s %s: %v", pkgs[0], pkgs[1], err)
		out("BUILD FAILED  %s interop client and server (%.1fs): %v\n%s", im, time.Since(start).Seconds(), b.err, tail(string(msg), "    | ", 40))
		return b
	}
	out("built  %s interop client and server (%.1fs)\n", im, time.Since(start).Seconds())
	return b
}

// logPrefix is a log line's "name: date time " prefix.
var logPrefix = regexp.MustCompile(`^[^:]*: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? `)

type runner struct {
	opts                 options
	bins                 map[impl]binaries
	certs                certFiles
	serverEnv, clientEnv []string
	out                  func(string, ...any)
}

// server is a running interop server.
type server struct {
	impl impl
	sec  security
	port int
	p    *proc
	out  *outBuffer
}

func (s *server) name() string {
	return fmt.Sprintf("%s server (%s, port %d)", s.impl, s.sec, s.port)
}

// startServer starts im's server and waits until it accepts connections,
// trying another port if the first was taken meanwhile.
func (r *runner) startServer(ctx context.Context, im impl, sec security) (*server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{"--port=" + strconv.Itoa(port)}
		if sec == withTLS {
			args = append(args, "--use_tls", "--tls_cert_file="+r.certs.Cert, "--tls_key_file="+r.certs.Key)
		}
		s := &server{impl: im, sec: sec, port: port, out: newOutBuffer(1 << 20)}
		s.p, err = startProc(r.bins[im].server, args, r.serverEnv, s.out)
		if err != nil {
			return nil, err
		}
		err = waitForTCP(ctx, "127.0.0.1:"+strconv.Itoa(port), s.p, 20*time.Second)
		if err == nil {
			return s, nil
		}
		s.p.stop(5 * time.Second)
		lastErr = fmt.Errorf("%s: %v\n%s", s.name(), err, tail(s.out.String(), "    | ", 40))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (r *runner) clientArgs(port int, sec security, tc string) []string {
	args := []string{
		"--server_host=127.0.0.1",
		"--server_port=" + strconv.Itoa(port),
		"--test_case=" + tc,
	}
	if sec == withTLS {
		// grpc-go's client reads --ca_file only with --use_test_ca (without
		// it, it verifies against the system roots).
		args = append(args, "--use_tls", "--use_test_ca", "--ca_file="+r.certs.CA, "--server_host_override="+serverHostOverride)
	}
	if tc == "rpc_soak" || tc == "channel_soak" {
		args = append(args, soakArgs...)
	}
	return args
}

func (r *runner) line(status string, c combo, rest string) {
	r.out("%-4s  %-15s  %-9s  %-28s %s\n", status, c.pair, c.sec, c.tc, rest)
}

// runGroup runs the combinations of one pair and security mode against one
// server process.
func (r *runner) runGroup(ctx context.Context, g group, t *tally) {
	var todo []combo
	for _, c := range g.combos {
		if c.skip != "" {
			r.line("N/A", c, "(not applicable: "+c.skip+")")
			t.na++
			continue
		}
		todo = append(todo, c)
	}
	if len(todo) == 0 {
		return
	}
	// Binaries that did not build fail every case that needs them.
	for _, im := range []impl{g.server, g.client} {
		if err := r.bins[im].err; err != nil {
			for _, c := range todo {
				r.line("FAIL", c, fmt.Sprintf("(not run: %s binaries did not build, see BUILD FAILED above)", im))
				t.failed++
			}
			return
		}
	}

	var srv *server
	defer func() {
		if srv != nil {
			srv.p.stop(5 * time.Second)
		}
	}()
	// last is the case run last against srv, passed whether it was counted
	// as passed, and mark where srv's output stood when it began.
	var last *combo
	var passed bool
	var mark int64
	// checkServer makes sure srv survived the last case. A server that died
	// or stopped accepting connections right after a case whose client had
	// already exited 0 turns that case's PASS into a FAIL.
	checkServer := func() {
		if srv == nil || last == nil {
			return
		}
		why := r.serverHealth(srv)
		if why == "" {
			return
		}
		if passed {
			t.passed--
			t.failed++
			r.line("FAIL", *last, "(revised from PASS: "+why+" right after this case)")
			r.out("    %s output since the case began (tail):\n%s", srv.name(), tail(srv.out.since(mark), "    | ", 40))
		} else {
			r.out("    %s: %s\n", srv.name(), why)
		}
		srv.p.stop(5 * time.Second)
		srv = nil
	}
	defer checkServer()
	for i, c := range todo {
		if ctx.Err() != nil {
			r.out("ABORTED  %v: %d combinations not run, counted as failed\n", context.Cause(ctx), len(todo)-i)
			t.failed += len(todo) - i
			return
		}
		checkServer()
		if srv == nil {
			var err error
			srv, err = r.startServer(ctx, g.server, g.sec)
			if err != nil {
				r.out("      %s server (%s) did not start: %v\n", g.server, g.sec, err)
				for _, c := range todo[i:] {
					r.line("FAIL", c, fmt.Sprintf("(not run: the %s server did not start, see above)", g.server))
					t.failed++
				}
				return
			}
		}
		mark = srv.out.mark()
		passed = r.runCase(ctx, srv, c, t)
		last = &todo[i]
	}
}

// serverHealth returns "" if srv is running and accepts connections, and
// what is wrong otherwise.
func (r *runner) serverHealth(srv *server) string {
	if ok, err := srv.p.exited(); ok {
		return "the server exited (" + exitText(err) + ")"
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(srv.port), 2*time.Second)
	if err == nil {
		c.Close()
		return ""
	}
	// Most likely the process is exiting; give it a moment to be reaped.
	select {
	case <-srv.p.done:
		return "the server exited (" + exitText(srv.p.waitErr) + ")"
	case <-time.After(2 * time.Second):
		return "the server stopped accepting connections (" + err.Error() + ")"
	}
}

// runCase runs one case against srv and reports whether it passed.
func (r *runner) runCase(ctx context.Context, srv *server, c combo, t *tally) bool {
	mark := srv.out.mark()
	cout := newOutBuffer(1 << 20)
	args := append(r.clientArgs(srv.port, c.sec, c.tc), c.extra...)
	res := runClient(ctx, r.bins[c.client].client, args, r.clientEnv, cout, r.opts.caseTimeout)
	dur := fmt.Sprintf("(%.2fs)", res.dur.Seconds())
	srvDead, srvErr := srv.p.exited()
	if c.note != "" {
		dur += "  [" + c.note + "]"
	}
	if c.xfail != "" {
		return r.expectedFailure(c, res, dur, srvDead, cout, t)
	}
	if res.err == nil && !srvDead {
		r.line("PASS", c, dur)
		if c.note != "" {
			// What the lenient client let pass, as it logged it.
			for _, l := range strings.Split(cout.String(), "\n") {
				if strings.Contains(l, "going on") {
					r.out("    | %s\n", logPrefix.ReplaceAllString(l, ""))
				}
			}
		}
		t.passed++
		return true
	}
	t.failed++
	r.line("FAIL", c, dur)
	why := "client: " + exitText(res.err)
	if res.err == nil {
		why = "client exited 0"
	}
	if srvDead {
		why += "; server exited during the case: " + exitText(srvErr)
	}
	r.out("    direction %s, %s, test case %s: %s\n", c.pair, c.sec, c.tc, why)
	r.out("    client command: %s %s\n", r.bins[c.client].client, strings.Join(args, " "))
	r.out("    %s client output (tail):\n%s", c.client, tail(cout.String(), "    | ", 40))
	r.out("    %s output during the case (tail):\n%s", srv.name(), tail(srv.out.since(mark), "    | ", 40))
	return false
}

// expectedFailure reports a case expected to fail: XFAIL with the reason
// and the client's last line when it failed, XPASS (counted as failed)
// when it passed. It returns false: the case is never counted as passed.
func (r *runner) expectedFailure(c combo, res runResult, dur string, srvDead bool, cout *outBuffer, t *tally) bool {
	if res.err == nil && !srvDead {
		t.failed++
		r.line("XPASS", c, dur+"  (expected to fail: "+c.xfail+"; it passes now: remove the expectation in matrix/table.go)")
		return false
	}
	t.xfail++
	r.line("XFAIL", c, dur+"  (expected: "+c.xfail+")")
	if last := lastLine(cout.String()); last != "" {
		r.out("    | %s\n", logPrefix.ReplaceAllString(last, ""))
	}
	return false
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// findModuleDir looks for the test/interop module at or above start, or at
// test/interop below start or one of its ancestors (the repository root).
func findModuleDir(start string) (string, error) {
	for d := start; ; {
		if isInteropModule(d) {
			return d, nil
		}
		if sub := filepath.Join(d, "test", "interop"); isInteropModule(sub) {
			return sub, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no %s module at or above %s", interopModule, start)
		}
		d = parent
	}
}

func isInteropModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == interopModule {
			return true
		}
	}
	return false
}
