package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// result is what one system did on one workload, over all its runs.
type result struct {
	Workload    string         `json:"workload"`
	Description string         `json:"description"`
	System      string         `json:"system"`
	Runs        int            `json:"runs"`
	Metrics     []metricResult `json:"metrics"`
	Error       string         `json:"error,omitempty"`
	Skipped     string         `json:"skipped,omitempty"` // why the system does not run this workload
}

// metricResult is one figure over the runs: the median, the extremes and
// the spread, ±(max−min)/(2·median) in percent.
type metricResult struct {
	metric
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	SpreadPct float64   `json:"spread_pct"`
	Values    []float64 `json:"values"`
}

// runTimeout bounds one run, so that a hung system fails rather than
// blocks the benchmark.
func runTimeout(cfg *config) time.Duration {
	return cfg.warmup + cfg.duration + 2*time.Minute
}

// runAll runs every workload against every system, cfg.repeats times. For
// each workload the runs alternate between systems, the first system
// rotating from one repeat to the next, so that drift on the machine hits
// all systems alike. Progress goes to progress.
func runAll(ctx context.Context, cfg *config, systems []system, workloads []workload, progress io.Writer) []result {
	var results []result
	for _, w := range workloads {
		runs := make(map[string][][]float64)
		errs := make(map[string]error)
		skipped := make(map[string]string)
		for r := range cfg.repeats {
			for i := range systems {
				s := systems[(i+r)%len(systems)]
				if errs[s.name()] != nil || skipped[s.name()] != "" {
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, runTimeout(cfg))
				v, err := w.run(rctx, s, cfg)
				cancel()
				var skip errSkipped
				if errors.As(err, &skip) {
					skipped[s.name()] = skip.why
					fmt.Fprintf(progress, "%-14s %-8s skipped: %s\n", w.name, s.name(), skip.why)
					continue
				}
				if err != nil {
					errs[s.name()] = err
					fmt.Fprintf(progress, "%-14s %-8s run %d/%d: error: %v\n", w.name, s.name(), r+1, cfg.repeats, err)
					continue
				}
				runs[s.name()] = append(runs[s.name()], v)
				fmt.Fprintf(progress, "%-14s %-8s run %d/%d: %s\n", w.name, s.name(), r+1, cfg.repeats, formatRun(w.metrics, v))
			}
		}
		for _, s := range systems {
			res := result{Workload: w.name, Description: w.desc, System: s.name(), Runs: len(runs[s.name()])}
			if err := errs[s.name()]; err != nil {
				res.Error = err.Error()
			}
			res.Skipped = skipped[s.name()]
			for j, m := range w.metrics {
				var vals []float64
				for _, v := range runs[s.name()] {
					vals = append(vals, v[j])
				}
				res.Metrics = append(res.Metrics, summarize(m, vals))
			}
			results = append(results, res)
		}
	}
	return results
}

func summarize(m metric, vals []float64) metricResult {
	mr := metricResult{metric: m, Values: vals}
	if len(vals) == 0 {
		return mr
	}
	sorted := slices.Sorted(slices.Values(vals))
	n := len(sorted)
	mr.Min, mr.Max = sorted[0], sorted[n-1]
	if n%2 == 1 {
		mr.Median = sorted[n/2]
	} else {
		mr.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	if mr.Median != 0 {
		mr.SpreadPct = (mr.Max - mr.Min) / 2 / mr.Median * 100
	}
	return mr
}

// formatValue shows one value of m.
func formatValue(m metric, v float64) string {
	if strings.HasPrefix(m.format, "%s") {
		return fmt.Sprintf(m.format, si(v))
	}
	return fmt.Sprintf(m.format, v)
}

// si shows a rate with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func formatRun(ms []metric, v []float64) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = formatValue(m, v[i])
	}
	return strings.Join(parts, ", ")
}

// find returns the result of system on workload.
func find(results []result, workload, system string) *result {
	for i := range results {
		if results[i].Workload == workload && results[i].System == system {
			return &results[i]
		}
	}
	return nil
}

// median returns the median of the metric named name in r, and whether r
// has it.
func (r *result) median(name string) (float64, bool) {
	if r == nil || r.Runs == 0 || r.Error != "" {
		return 0, false
	}
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Median, true
		}
	}
	return 0, false
}
