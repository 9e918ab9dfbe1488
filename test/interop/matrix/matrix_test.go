package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain doubles as a fake interop client and server (MATRIX_FAKE=client
// or server), so that the runner can be tested without building anything.
func TestMain(m *testing.M) {
	switch os.Getenv("MATRIX_FAKE") {
	case "server":
		fakeServer()
		return
	case "client":
		fakeClient()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func fakeServer() {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	port := fs.Int("port", 0, "")
	fs.Bool("use_tls", false, "")
	fs.String("tls_cert_file", "", "")
	fs.String("tls_key_file", "", "")
	fs.Parse(os.Args[1:])
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake server:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; fmt.Fprintln(os.Stderr, "fake server: terminated"); os.Exit(0) }()
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		if n == 0 {
			c.Close() // the harness checking that the server is up
			continue
		}
		fmt.Fprintf(os.Stderr, "fake server: got %q\n", buf[:n])
		switch string(buf[:n]) {
		case "die":
			// Stop accepting first, so that by the time the client
			// sees its connection end no health probe can connect.
			l.Close()
			os.Exit(3)
		case "cancel_after_begin": // dies just after answering
			l.Close()
			c.Close()
			time.Sleep(300 * time.Millisecond)
			fmt.Fprintln(os.Stderr, "fake server: dying late")
			os.Exit(4)
		}
		c.Close()
	}
}

func fakeClient() {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	port := fs.Int("server_port", 0, "")
	tc := fs.String("test_case", "", "")
	fs.String("server_host", "", "")
	fs.Bool("use_tls", false, "")
	fs.Bool("use_test_ca", false, "")
	fs.String("ca_file", "", "")
	fs.String("server_host_override", "", "")
	fs.String("service_config_json", "", "")
	for _, f := range []string{"soak_iterations", "soak_max_failures", "soak_per_iteration_max_acceptable_latency_ms", "soak_overall_timeout_seconds"} {
		fs.Int(f, 0, "")
	}
	fs.Parse(os.Args[1:])
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake client:", err)
		os.Exit(1)
	}
	msg := *tc
	if *tc == "ping_pong" {
		msg = "die"
	}
	c.Write([]byte(msg))
	c.Read(make([]byte, 1)) // until the server closes or exits
	switch *tc {
	case "large_unary":
		fmt.Fprintln(os.Stderr, "fake client: large_unary went wrong")
		os.Exit(1)
	case "empty_stream":
		time.Sleep(time.Minute) // outlives the case timeout
	case "orca_per_rpc":
		fmt.Fprintln(os.Stderr, "fake client: no load report")
		os.Exit(1)
	}
}

func TestExpand(t *testing.T) {
	gs := expand(defaultPairs, defaultSecurity, allCases)
	if len(gs) != 6 {
		t.Fatalf("got %d groups, want 6", len(gs))
	}
	run, lenient, orca, xfail, na := 0, 0, 0, 0, map[string]int{}
	for _, g := range gs {
		if len(g.combos) != len(allCases) {
			t.Errorf("%v %v: %d combinations, want %d", g.pair, g.sec, len(g.combos), len(allCases))
		}
		for _, c := range g.combos {
			if c.pair != g.pair || c.sec != g.sec {
				t.Errorf("combination %v in group %v %v", c, g.pair, g.sec)
			}
			if c.xfail != "" {
				xfail++
			}
			switch {
			case c.skip != "":
				na[c.skip]++
			case isORCACase(c.tc):
				orca++
				run++
			case len(c.extra) > 0:
				lenient++
				run++
			default:
				run++
			}
		}
	}
	// 22 cases × 3 pairs × 2 modes, less the four compression cases that
	// grpc-go's client does not have; of those run, the compression cases
	// against grpc-go's server are lenient, and none is expected to fail.
	if run != 124 || lenient != 8 || orca != 12 || xfail != 0 {
		t.Errorf("%d combinations run, %d of them lenient, %d ORCA, %d expected to fail; want 124, 8, 12, 0", run, lenient, orca, xfail)
	}
	if want := map[string]int{reasonNoGoClientCase: 8}; fmt.Sprint(na) != fmt.Sprint(want) {
		t.Errorf("not applicable: got %v, want %v", na, want)
	}
}

func TestPlan(t *testing.T) {
	for _, p := range []pair{{grpcGo, grpcGo}, {grpcGo, h2rpc}, {h2rpc, grpcGo}, {h2rpc, h2rpc}} {
		for _, c := range allCases {
			skip, extra, note, xfail := plan(p, c)
			if isORCACase(c) {
				if skip != "" || fmt.Sprint(extra) != "["+orcaServiceConfigArg+"]" || note != "" || xfail != "" {
					t.Errorf("plan(%v, %s) = %q, %q, %q, %q; want the service config, expected to pass", p, c, skip, extra, note, xfail)
				}
				continue
			}
			if xfail != "" {
				t.Errorf("plan(%v, %s): expected to fail (%s)", p, c, xfail)
			}
			comp := isCompressionCase(c)
			wantSkip := comp && p.client == grpcGo
			wantLenient := comp && p == pair{h2rpc, grpcGo}
			if (skip != "") != wantSkip {
				t.Errorf("plan(%v, %s): skip %q, want skipped: %v", p, c, skip, wantSkip)
			}
			if gotLenient := fmt.Sprint(extra) == "["+lenientCompressionArg+"]" && note != ""; gotLenient != wantLenient || (!wantLenient && (extra != nil || note != "")) {
				t.Errorf("plan(%v, %s): extra %q, note %q; want lenient: %v", p, c, extra, note, wantLenient)
			}
		}
	}
	n := 0
	for _, c := range allCases {
		if isCompressionCase(c) {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d compression cases, want 4", n)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(o.pairs) != fmt.Sprint(defaultPairs) || len(o.secs) != 2 || len(o.cases) != 22 {
		t.Errorf("defaults: %v %v %d cases", o.pairs, o.secs, len(o.cases))
	}
	o, err = parseFlags([]string{"-pairs", "grpc-go->grpc-go, h2rpc:h2rpc,h2rpc→h2rpc", "-security", "tls", "-cases", "large_unary,ping_pong"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []pair{{grpcGo, grpcGo}, {h2rpc, h2rpc}}; fmt.Sprint(o.pairs) != fmt.Sprint(want) {
		t.Errorf("pairs %v, want %v", o.pairs, want)
	}
	if len(o.secs) != 1 || o.secs[0] != withTLS || fmt.Sprint(o.cases) != "[large_unary ping_pong]" {
		t.Errorf("got %v %v", o.secs, o.cases)
	}
	for _, bad := range [][]string{
		{"-pairs", "grpc-go"}, {"-pairs", "java→h2rpc"}, {"-security", "alts"},
		{"-cases", "orca_nonsense"}, {"-cases", ","}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

func TestCerts(t *testing.T) {
	dir := t.TempDir()
	f, err := writeCerts(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{serverHostOverride, "localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots}); err == nil {
		t.Error("certificate verified for other.example")
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", st.Mode(), err)
	}

	// A real TLS handshake with the files, as the clients do it.
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverHostOverride})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wg.Wait()
}

func TestTailAndBuffer(t *testing.T) {
	b := newOutBuffer(16)
	fmt.Fprint(b, "0123456789")
	m := b.mark()
	fmt.Fprint(b, "abcdefghij")
	if got := b.since(m); got != "abcdefghij" {
		t.Errorf("since(mark) = %q", got)
	}
	if got := b.String(); got != "456789abcdefghij" {
		t.Errorf("kept %q, want the last 16 bytes", got)
	}
	if got := tail("", "| ", 3); got != "| (no output)\n" {
		t.Errorf("tail of nothing: %q", got)
	}
	if got := tail("a\nb\nc\nd\n", "| ", 2); got != "| …\n| c\n| d\n" {
		t.Errorf("tail: %q", got)
	}
}

func TestFindModuleDir(t *testing.T) {
	root := t.TempDir()
	mod := filepath.Join(root, "test", "interop")
	os.MkdirAll(filepath.Join(mod, "matrix"), 0o755)
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module "+interopModule+"\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/h2rpc/h2rpc\n"), 0o644)
	for _, start := range []string{root, mod, filepath.Join(mod, "matrix")} {
		got, err := findModuleDir(start)
		if err != nil || got != mod {
			t.Errorf("findModuleDir(%s) = %q, %v; want %q", start, got, err, mod)
		}
	}
	if got, err := findModuleDir(t.TempDir()); err == nil {
		t.Errorf("found %q in an empty directory", got)
	}
}

// TestRunGroup runs the runner against the fake client and server: a pass,
// a failing client, a server that dies mid-case (and is restarted), a
// client that outlives the case timeout, and a server that dies just after
// a case passed.
func TestRunGroup(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	r := &runner{
		opts:      options{caseTimeout: 2 * time.Second},
		bins:      map[impl]binaries{h2rpc: {client: exe, server: exe}},
		certs:     certFiles{CA: "ca.pem", Cert: "server.pem", Key: "server.key"},
		serverEnv: append(os.Environ(), "MATRIX_FAKE=server", "GORACE=atexit_sleep_ms=0"),
		clientEnv: append(os.Environ(), "MATRIX_FAKE=client", "GORACE=atexit_sleep_ms=0"),
		out: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(&out, f, a...)
		},
	}
	cases := []string{"empty_unary", "large_unary", "ping_pong", "custom_metadata", "empty_stream", "cancel_after_begin", "client_compressed_unary"}
	g := expand([]pair{{h2rpc, h2rpc}}, []security{withTLS}, cases)[0]

	var tl tally
	r.runGroup(context.Background(), g, &tl)
	got := out.String()
	t.Log("\n" + got)

	if tl.passed != 3 || tl.failed != 4 || tl.na != 0 {
		t.Errorf("tally %+v, want 3 passed (empty_unary, custom_metadata, client_compressed_unary), 4 failed", tl)
	}
	for _, want := range []string{
		"PASS  h2rpc→h2rpc      tls        empty_unary",
		"FAIL  h2rpc→h2rpc      tls        large_unary",
		"fake client: large_unary went wrong",
		`fake server: got "large_unary"`,
		"FAIL  h2rpc→h2rpc      tls        ping_pong",
		"exit status 3",
		"PASS  h2rpc→h2rpc      tls        custom_metadata",
		"FAIL  h2rpc→h2rpc      tls        empty_stream",
		"timed out after 2s",
		"FAIL  h2rpc→h2rpc      tls        cancel_after_begin           (revised from PASS: the server exited (exit status 4) right after this case)",
		"fake server: dying late",
		"PASS  h2rpc→h2rpc      tls        client_compressed_unary",
		"--use_tls --use_test_ca --ca_file=ca.pem --server_host_override=foo.test.example",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, `got "empty_unary"`) {
		t.Error("output of a passing case's server shown in a failure")
	}
}

// TestRunGroupExpectedFailures runs cases expected to fail against the
// fake client and server: one that fails (XFAIL, not counted as failed)
// and one that passes (XPASS, counted as failed).
func TestRunGroupExpectedFailures(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	r := &runner{
		opts:      options{caseTimeout: 10 * time.Second},
		bins:      map[impl]binaries{h2rpc: {client: exe, server: exe}},
		serverEnv: append(os.Environ(), "MATRIX_FAKE=server", "GORACE=atexit_sleep_ms=0"),
		clientEnv: append(os.Environ(), "MATRIX_FAKE=client", "GORACE=atexit_sleep_ms=0"),
		out: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(&out, f, a...)
		},
	}
	g := expand([]pair{{h2rpc, h2rpc}}, []security{plaintext}, []string{"orca_per_rpc"})[0]
	// No combination of the table is expected to fail any more: mark
	// both, as plan would.
	const reason = "a reason given in the table"
	g.combos[0].xfail = reason
	passing := g.combos[0]
	passing.tc = "empty_unary"
	g.combos = append(g.combos, passing)

	var tl tally
	r.runGroup(context.Background(), g, &tl)
	got := out.String()
	t.Log("\n" + got)
	if tl.passed != 0 || tl.failed != 1 || tl.xfail != 1 {
		t.Errorf("tally %+v, want 1 expected failure (orca_per_rpc) and 1 failure (empty_unary passing)", tl)
	}
	for _, want := range []string{
		"XFAIL  h2rpc→h2rpc      plaintext  orca_per_rpc",
		"(expected: " + reason + ")",
		"| fake client: no load report",
		"XPASS  h2rpc→h2rpc      plaintext  empty_unary",
		"remove the expectation in matrix/table.go",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
