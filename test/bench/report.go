package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// target is one performance target of issue 5, judged on the medians of
// one run.
type target struct {
	Name     string
	Workload string
	Metric   string
	Op       string  // "≤" or "≥"
	Limit    float64 // on the ratio h2rpc ÷ grpc-go, or on h2rpc's own figure if Absolute
	Absolute bool
	Info     bool // shown, not judged
}

var targets = []target{
	{Name: "unary c=1 p50 latency", Workload: "unary-c1", Metric: "p50", Op: "≤", Limit: 0.75},
	{Name: "unary c=128 throughput", Workload: "unary-c128", Metric: "rpc/s", Op: "≥", Limit: 1.5},
	{Name: "unary round_robin over 3 servers, c=16", Workload: "unary-rr3", Metric: "rpc/s", Info: true}, // no goal
	{Name: "ping-pong msg/s", Workload: "pingpong", Metric: "msg/s", Op: "≥", Limit: 1.25},
	{Name: "1 MiB download MB/s", Workload: "download-1MiB", Metric: "MB/s", Op: "≥", Limit: 1.5},
	{Name: "1 MiB upload MB/s", Workload: "upload-1MiB", Metric: "MB/s", Op: "≥", Limit: 1.5},
	{Name: "allocs per unary RPC", Workload: "allocs", Metric: "allocs/rpc", Op: "≤", Limit: 45, Absolute: true},
	{Name: "CPU per unary RPC at c=16", Workload: "cpu", Metric: "cpu-s/100k", Op: "≤", Limit: 0.6},
	{Name: "memory per idle connection (heap)", Workload: "idle-conn", Metric: "heap/conn", Op: "≤", Limit: 0.5},
	{Name: "memory per idle connection (RSS)", Workload: "idle-conn", Metric: "rss/conn", Op: "≤", Limit: 0.5, Info: true},
}

// ratio is a target's outcome in one run.
type ratio struct {
	Target   string   `json:"target"`
	Workload string   `json:"workload"`
	Metric   string   `json:"metric"`
	H2RPC    *float64 `json:"h2rpc"`
	GRPC     *float64 `json:"grpc_go"`
	Raw      *float64 `json:"raw_tcp"`
	Ratio    *float64 `json:"ratio"` // h2rpc ÷ grpc-go
	Goal     string   `json:"goal"`  // e.g. "ratio ≤ 0.75" or "h2rpc ≤ 45"
	Met      *bool    `json:"met"`   // nil if not measured or informational
	Info     bool     `json:"informational,omitempty"`
}

func computeRatios(results []result) []ratio {
	var out []ratio
	for _, t := range targets {
		if find(results, t.Workload, sysH2RPC) == nil && find(results, t.Workload, sysGRPC) == nil {
			continue // workload not run
		}
		r := ratio{Target: t.Name, Workload: t.Workload, Metric: t.Metric, Info: t.Info}
		val := func(sys string) *float64 {
			if v, ok := find(results, t.Workload, sys).median(t.Metric); ok {
				return &v
			}
			return nil
		}
		r.H2RPC, r.GRPC, r.Raw = val(sysH2RPC), val(sysGRPC), val(sysRaw)
		if r.H2RPC != nil && r.GRPC != nil && *r.GRPC != 0 {
			q := *r.H2RPC / *r.GRPC
			r.Ratio = &q
		}
		subject := r.Ratio
		r.Goal = fmt.Sprintf("ratio %s %g", t.Op, t.Limit)
		if t.Absolute {
			subject = r.H2RPC
			r.Goal = fmt.Sprintf("h2rpc %s %g", t.Op, t.Limit)
		}
		if t.Op == "" {
			r.Goal = "—"
		}
		if subject != nil && !t.Info {
			met := *subject <= t.Limit
			if t.Op == "≥" {
				met = *subject >= t.Limit
			}
			r.Met = &met
		}
		out = append(out, r)
	}
	return out
}

// report is the JSON output.
type report struct {
	Commit         string    `json:"commit"`
	GoVersion      string    `json:"go_version"`
	GOOS           string    `json:"goos"`
	GOARCH         string    `json:"goarch"`
	NumCPU         int       `json:"num_cpu"`
	GOMAXPROCS     int       `json:"gomaxprocs"`
	GRPCVersion    string    `json:"grpc_go_version"`
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	Settings       settings  `json:"settings"`
	Results        []result  `json:"results"`
	Ratios         []ratio   `json:"ratios"`
}

// settings are the flags a run used.
type settings struct {
	Short           bool    `json:"short"`
	DurationSeconds float64 `json:"duration_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Repeats         int     `json:"repeats"`
	MaxOps          int     `json:"max_ops,omitempty"`
	MaxStreams      int     `json:"max_streams,omitempty"`
	StreamMsgs      int     `json:"stream_msgs,omitempty"`
	Conns           int     `json:"conns"`
	Systems         string  `json:"systems"`
	Workloads       string  `json:"workloads"`
}

// writeMarkdown writes the results table and the ratios table.
func writeMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "commit %s · %s %s/%s · %d CPUs, GOMAXPROCS %d · grpc-go %s · %s, %d repeat(s), warm-up %s\n\n",
		rep.Commit, rep.GoVersion, rep.GOOS, rep.GOARCH, rep.NumCPU, rep.GOMAXPROCS, rep.GRPCVersion,
		durationSetting(rep.Settings), rep.Settings.Repeats, time.Duration(rep.Settings.WarmupSeconds*float64(time.Second)))
	width := 0
	for _, r := range rep.Results {
		width = max(width, len(r.Metrics))
	}
	fmt.Fprint(w, "| workload | system |")
	for i := range width {
		fmt.Fprintf(w, " figure %d |", i+1)
	}
	fmt.Fprint(w, "\n|---|---|")
	for range width {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %s | %s |", r.Workload, r.System)
		for i := range width {
			cell := ""
			switch {
			case r.Error != "" && i == 0:
				cell = "**error:** " + strings.ReplaceAll(r.Error, "|", `\|`)
			case r.Error != "":
			case r.Skipped != "" && i == 0:
				cell = "skipped: " + strings.ReplaceAll(r.Skipped, "|", `\|`)
			case r.Skipped != "":
			case i < len(r.Metrics):
				m := r.Metrics[i]
				cell = formatValue(m.metric, m.Median)
				if r.Runs > 1 {
					cell += fmt.Sprintf(" ±%.0f%%", m.SpreadPct)
				}
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	if len(rep.Ratios) == 0 {
		return
	}
	fmt.Fprint(w, "\n| target | h2rpc | grpc-go | raw TCP | h2rpc ÷ grpc-go | goal | met |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Ratios {
		m := metricNamed(r.Workload, r.Metric)
		show := func(v *float64) string {
			if v == nil {
				return "—"
			}
			return formatValue(m, *v)
		}
		q := "—"
		if r.Ratio != nil {
			q = fmt.Sprintf("%.2f×", *r.Ratio)
		}
		met := "—"
		switch {
		case r.Info:
			met = "(shown only)"
		case r.Met != nil && *r.Met:
			met = "yes"
		case r.Met != nil:
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Target, show(r.H2RPC), show(r.GRPC), show(r.Raw), q, r.Goal, met)
	}
}

func durationSetting(s settings) string {
	d := time.Duration(s.DurationSeconds * float64(time.Second)).String()
	if s.Short {
		return fmt.Sprintf("-short (runs ≤ %s, ≤ %d calls)", d, s.MaxOps)
	}
	return "runs of " + d
}

func metricNamed(workload, name string) metric {
	for _, w := range allWorkloads {
		if w.name != workload {
			continue
		}
		for _, m := range w.metrics {
			if m.Name == name {
				return m
			}
		}
	}
	return metric{Name: name, format: "%g"}
}
