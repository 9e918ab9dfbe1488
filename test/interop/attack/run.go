//go:build linux

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

// attack is one hostile client behaviour and the most it may make the
// server hold.
type attack struct {
	name string
	what string // one line for the table
	// boundMiB is the peak RSS growth allowed, in MiB; each attack's
	// definition says why.
	boundMiB float64
	// minDuration, in runs that are not short, stretches an attack whose
	// defence is a time limit past that limit, so the table shows it.
	minDuration time.Duration
	run         func(ctx context.Context, e *env) error
}

// env is what an attack gets: the server's address and the recorder of
// its answers.
type env struct {
	addr  string
	ans   *answers
	short bool
}

// result is the measurement of one attack.
type result struct {
	a          *attack
	duration   time.Duration
	baseMiB    float64
	growthMiB  float64
	by         bystanderStats
	answer     string
	serverDied string // why, when it died
	err        error  // the harness failed
}

// failures lists why the attack counts as a failure (empty: it passed).
func (r result) failures() []string {
	var f []string
	if r.err != nil {
		f = append(f, "harness error: "+r.err.Error())
	}
	if r.serverDied != "" {
		f = append(f, "server died: "+r.serverDied)
	}
	if r.growthMiB > r.a.boundMiB {
		f = append(f, fmt.Sprintf("RSS grew %.1f MiB, bound %.0f MiB", r.growthMiB, r.a.boundMiB))
	}
	if r.by.failed > 0 {
		f = append(f, fmt.Sprintf("bystander: %d calls failed (last: %v)", r.by.failed, r.by.lastErr))
	}
	if r.by.ok == 0 && r.err == nil {
		f = append(f, "bystander: no call succeeded")
	}
	return f
}

// runAttack measures a against a fresh server process: each attack gets
// its own server, so one attack's leftovers (heap the GC has not given
// back, goroutines still winding down) do not count against the next.
func runAttack(ctx context.Context, bin string, a *attack, d time.Duration, short bool, logw io.Writer) (r result) {
	r.a = a
	if !short && a.minDuration > d {
		d = a.minDuration
	}
	r.duration = d
	sp, err := startServer(ctx, bin)
	if err != nil {
		r.err = err
		return r
	}
	defer sp.stop()
	by, err := startBystander(sp.addr)
	if err != nil {
		r.err = err
		return r
	}
	defer by.stop()
	// Warm up: the bystander's connection and the server's pools exist
	// before the baseline is taken.
	for i := 0; i < 200 && by.okCount() < 50; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	base, err := settledRSS(sp)
	if err != nil {
		r.err = fmt.Errorf("reading the server's RSS: %w", err)
		return r
	}
	r.baseMiB = float64(base) / 1024
	by.reset()
	sampler := sampleRSS(sp)
	ans := newAnswers()
	actx, cancel := context.WithTimeout(ctx, d)
	runErr := a.run(actx, &env{addr: sp.addr, ans: ans, short: short})
	cancel()
	peak, _, _ := sampler.finish()
	r.by = by.stats()
	r.growthMiB = float64(peak-base) / 1024
	r.answer = ans.String()
	if runErr != nil && !errors.Is(runErr, context.DeadlineExceeded) && !errors.Is(runErr, context.Canceled) {
		r.err = runErr
	}
	if sp.dead() {
		r.serverDied = fmt.Sprint(sp.err)
		fmt.Fprintf(logw, "%s: the server died (%v); its last output:\n%s\n", a.name, sp.err, sp.stderr)
	}
	fmt.Fprintf(logw, "%-22s growth %7.1f MiB (bound %.0f), bystander %d ok / %d failed, p99 %v; %s\n",
		a.name, r.growthMiB, a.boundMiB, r.by.ok, r.by.failed, r.by.p99.Round(time.Millisecond), r.answer)
	return r
}

// selectAttacks returns the attacks named in list (comma-separated; all
// when empty).
func selectAttacks(list string) ([]*attack, error) {
	all := attacks()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var out []*attack
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(a *attack) bool { return a.name == name })
		if i < 0 {
			var names []string
			for _, a := range all {
				names = append(names, a.name)
			}
			return nil, fmt.Errorf("unknown attack %q (known: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// table renders the results as a markdown table.
func table(rs []result) string {
	var sb strings.Builder
	sb.WriteString("| attack | what it does | peak RSS growth (MiB) | bound (MiB) | bystander calls ok/failed | bystander p50 / p99 | server's answer | verdict |\n")
	sb.WriteString("|---|---|---:|---:|---|---|---|---|\n")
	for _, r := range rs {
		verdict := "ok"
		if f := r.failures(); len(f) > 0 {
			verdict = "**FAIL**: " + strings.Join(f, "; ")
		}
		fmt.Fprintf(&sb, "| %s | %s | %.1f | %.0f | %d/%d | %v / %v | %s | %s |\n",
			r.a.name, r.a.what, r.growthMiB, r.a.boundMiB, r.by.ok, r.by.failed,
			fmtDur(r.by.p50), fmtDur(r.by.p99), mdEscape(r.answer), mdEscape(strings.ReplaceAll(verdict, "\n", " ")))
	}
	return sb.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
