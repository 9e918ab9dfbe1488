// Command bench measures h2rpc side by side with grpc-go and with raw TCP
// (the physical limit of the machine) on the same workloads, in one
// process, over loopback TCP, and prints a markdown table of the results
// and the ratios h2rpc ÷ grpc-go against the targets of issue 5.
//
// From the repository root:
//
//	go -C test/bench run . [flags]
//
// or `go run .` in test/bench. BENCHMARKS.md explains every figure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"google.golang.org/grpc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run is the whole command: it parses args, runs the benchmark, writes
// the tables to stdout and progress to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		short      = fs.Bool("short", false, "smoke run for CI: one repeat, a few hundred calls per workload, 50 idle connections")
		duration   = fs.Duration("duration", time.Second, "measured time of each run (an upper bound with -short)")
		warmup     = fs.Duration("warmup", 300*time.Millisecond, "unmeasured warm-up before each run")
		repeats    = fs.Int("repeats", 5, "runs of each workload per system (1 with -short)")
		conns      = fs.Int("conns", 1000, "connections the idle-conn workload holds open (50 with -short)")
		workloads  = fs.String("workloads", "", "comma-separated workloads to run, by name or prefix (unary, download, ...); empty: all")
		systems    = fs.String("systems", "", "comma-separated systems to run ("+sysH2RPC+", "+sysGRPC+", "+sysRaw+"); empty: all")
		out        = fs.String("out", "", "also write the results as JSON to this file")
		commit     = fs.String("commit", "", "commit to record (default: git rev-parse --short HEAD, +dirty if the tree has changes)")
		cpuprofile = fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		traceFile  = fs.String("trace", "", "write an execution trace of the whole run to this file (keep the run short)")
		memprofile = fs.String("memprofile", "", "write a heap profile to this file at the end of the run (with idle-conn: while the last idle-conn run's connections are open)")
		memrate    = fs.Int("memprofilerate", 0, "with -memprofile, set runtime.MemProfileRate (1: every allocation; 0: the runtime's default)")
		list       = fs.Bool("list", false, "list the workloads and exit")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *list {
		for _, w := range allWorkloads {
			fmt.Fprintf(stdout, "%-15s %s\n", w.name, w.desc)
		}
		return nil
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := &config{duration: *duration, warmup: *warmup, repeats: *repeats, conns: *conns}
	if *short {
		cfg.maxOps, cfg.warmupOps = 300, 30
		cfg.maxStreams, cfg.streamMsgs = 2, 4
		if !set["repeats"] {
			cfg.repeats = 1
		}
		if !set["conns"] {
			cfg.conns = 50
		}
		if !set["warmup"] {
			cfg.warmup = 100 * time.Millisecond
		}
	}
	if cfg.repeats < 1 || cfg.conns < 1 || cfg.duration <= 0 || cfg.warmup < 0 {
		return fmt.Errorf("-repeats and -conns must be at least 1, -duration positive, -warmup not negative")
	}
	syss, err := pickSystems(*systems)
	if err != nil {
		return err
	}
	wls, err := pickWorkloads(*workloads)
	if err != nil {
		return err
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if *memprofile != "" {
		if *memrate > 0 {
			runtime.MemProfileRate = *memrate
		}
		// idle-conn takes its snapshot while its connections are open:
		// at the end of the run they are closed and their memory freed.
		cfg.heapProfile = func() error { return writeHeapProfile(*memprofile) }
	}

	rep := &report{
		Commit:      *commit,
		GoVersion:   runtime.Version(),
		GOOS:        runtime.GOOS,
		GOARCH:      runtime.GOARCH,
		NumCPU:      runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		GRPCVersion: grpc.Version,
		Started:     time.Now().UTC().Truncate(time.Second),
		Settings: settings{
			Short: *short, DurationSeconds: cfg.duration.Seconds(), WarmupSeconds: cfg.warmup.Seconds(),
			Repeats: cfg.repeats, MaxOps: cfg.maxOps, MaxStreams: cfg.maxStreams, StreamMsgs: cfg.streamMsgs,
			Conns: cfg.conns, Systems: names(syss), Workloads: workloadNames(wls),
		},
	}
	if rep.Commit == "" {
		rep.Commit = gitCommit()
	}
	start := time.Now()
	cfg.log = stderr
	rep.Results = runAll(context.Background(), cfg, syss, wls, stderr)
	rep.ElapsedSeconds = time.Since(start).Seconds()
	rep.Ratios = computeRatios(rep.Results)
	if *memprofile != "" && !cfg.heapProfiled {
		if err := writeHeapProfile(*memprofile); err != nil {
			return err
		}
	}

	fmt.Fprintln(stderr)
	writeMarkdown(stdout, rep)
	fmt.Fprintf(stderr, "\ntook %.1fs\n", rep.ElapsedSeconds)
	if *out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range rep.Results {
		if r.Error != "" {
			failed = append(failed, r.Workload+"/"+r.System)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d run(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// writeHeapProfile writes the heap profile as of a fresh garbage
// collection to file (replacing it), for go tool pprof.
func writeHeapProfile(file string) error {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pickSystems returns the systems named in list, in the default order.
func pickSystems(list string) ([]system, error) {
	if list == "" {
		return allSystems, nil
	}
	want := make(map[string]bool)
	for _, n := range strings.Split(list, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []system
	for _, s := range allSystems {
		if want[s.name()] {
			out = append(out, s)
			delete(want, s.name())
		}
	}
	for n := range want {
		return nil, fmt.Errorf("unknown system %q (have %s)", n, names(allSystems))
	}
	return out, nil
}

// pickWorkloads returns the workloads named in list, in the default
// order. An entry matches a workload by name or by the part of the name
// before a dash ("unary" is unary-c1, unary-c16 and unary-c128).
func pickWorkloads(list string) ([]workload, error) {
	if list == "" {
		return allWorkloads, nil
	}
	var out []workload
	used := make(map[string]bool)
	for _, w := range allWorkloads {
		matched := false
		for _, n := range strings.Split(list, ",") {
			n = strings.TrimSpace(n)
			if w.name == n || strings.HasPrefix(w.name, n+"-") {
				used[n] = true
				matched = true
			}
		}
		if matched {
			out = append(out, w)
		}
	}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); !used[n] {
			return nil, fmt.Errorf("unknown workload %q (have %s)", n, workloadNames(allWorkloads))
		}
	}
	return out, nil
}

func names(ss []system) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.name())
	}
	return strings.Join(n, ",")
}

func workloadNames(ws []workload) string {
	var n []string
	for _, w := range ws {
		n = append(n, w.name)
	}
	return strings.Join(n, ",")
}

// gitCommit returns the short commit of the working tree, with "+dirty"
// if it has uncommitted changes, or "unknown".
func gitCommit() string {
	b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(b))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}
