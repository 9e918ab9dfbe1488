package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shortConfig is -short with fewer idle connections: every workload runs
// a few hundred calls at most.
func shortConfig() *config {
	return &config{
		duration: 2 * time.Second, warmup: 100 * time.Millisecond, repeats: 1,
		maxOps: 300, warmupOps: 30, maxStreams: 2, streamMsgs: 4, conns: 20,
	}
}

// TestWorkloads runs every workload once against every system in short
// mode and checks that the figures are sane. It asserts nothing about
// speed.
func TestWorkloads(t *testing.T) {
	cfg := shortConfig()
	for _, w := range allWorkloads {
		for _, s := range allSystems {
			t.Run(w.name+"/"+s.name(), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), runTimeout(cfg))
				defer cancel()
				v, err := w.run(ctx, s, cfg)
				var skip errSkipped
				if errors.As(err, &skip) {
					t.Skip(skip.why)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(v) != len(w.metrics) {
					t.Fatalf("%d values for %d metrics", len(v), len(w.metrics))
				}
				for i, m := range w.metrics {
					if math.IsNaN(v[i]) || math.IsInf(v[i], 0) {
						t.Errorf("%s = %v", m.Name, v[i])
					}
					// RSS and stack deltas of a few connections may be
					// lost in the noise; everything else must be positive.
					if m != mRSS && m != mStack && v[i] <= 0 {
						t.Errorf("%s = %v, want > 0", m.Name, v[i])
					}
				}
				t.Log(formatRun(w.metrics, v))
			})
		}
	}
}

// TestCommand runs the command as CI does, on a few workloads, and checks
// its table and JSON.
func TestCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"-short", "-conns", "10", "-workloads", "unary-c1,allocs,idle-conn", "-commit", "test", "-out", out}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	table := stdout.String()
	for _, want := range []string{"| unary-c1 | h2rpc |", "| allocs | grpc-go |", "| idle-conn | raw-tcp |", "| unary c=1 p50 latency |", "| allocs per unary RPC |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Commit != "test" || len(rep.Results) != 3*3 {
		t.Errorf("JSON has commit %q and %d results, want test and 9", rep.Commit, len(rep.Results))
	}
	judged := 0
	for _, r := range rep.Ratios {
		if r.Ratio == nil || *r.Ratio <= 0 {
			t.Errorf("ratio of %s: %v", r.Target, r.Ratio)
		}
		if r.Met != nil {
			judged++
		}
	}
	if judged != 3 { // unary c=1, allocs, idle heap
		t.Errorf("%d targets judged, want 3: %+v", judged, rep.Ratios)
	}
}

func TestPick(t *testing.T) {
	ws, err := pickWorkloads("unary,cpu")
	if err != nil || workloadNames(ws) != "unary-c1,unary-c16,unary-c128,unary-rr3,cpu" {
		t.Errorf("pickWorkloads(unary,cpu) = %s, %v", workloadNames(ws), err)
	}
	if _, err := pickWorkloads("nope"); err == nil {
		t.Error("pickWorkloads(nope) did not fail")
	}
	ss, err := pickSystems("raw-tcp,h2rpc")
	if err != nil || names(ss) != "h2rpc,raw-tcp" {
		t.Errorf("pickSystems = %s, %v", names(ss), err)
	}
	if _, err := pickSystems("grpc"); err == nil {
		t.Error("pickSystems(grpc) did not fail")
	}
}

// TestMemProfile checks that -memprofile writes a heap profile, both with
// idle-conn (taken while its connections are open) and without.
func TestMemProfile(t *testing.T) {
	for _, wl := range []string{"idle-conn", "allocs"} {
		t.Run(wl, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "heap.out")
			var stdout, stderr bytes.Buffer
			args := []string{"-short", "-conns", "5", "-workloads", wl, "-systems", sysH2RPC, "-memprofile", file}
			if err := run(args, &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// A profile is a gzipped protocol buffer.
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Fatalf("%s is not a gzipped profile (%d bytes)", file, len(b))
			}
		})
	}
}

func TestTrace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trace.out")
	var stdout, stderr bytes.Buffer
	args := []string{"-short", "-workloads", "pingpong", "-systems", sysH2RPC, "-trace", file}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// An execution trace starts with its magic header.
	if !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Fatalf("%s is not an execution trace (%d bytes, starts %q)", file, len(b), b[:min(len(b), 16)])
	}
}
