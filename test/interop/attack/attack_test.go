//go:build linux

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortDuration is how long each attack lasts in the test: long enough
// for the memory an attack can pin to show up, short enough that all of
// them run in about a minute on two cores.
const shortDuration = 2 * time.Second

// TestAttacksStayWithinBounds runs every attack in short mode against the
// interop server as a separate process and fails an attack that grows the
// server's RSS past its bound, kills the server or fails a bystander
// call. The table of figures goes to the test log.
func TestAttacksStayWithinBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("the attacks take about a minute; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := buildServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rs []result
	for _, a := range attacks() {
		t.Run(a.name, func(t *testing.T) {
			var log strings.Builder
			r := runAttack(ctx, bin, a, shortDuration, true, &log)
			t.Log(strings.TrimSpace(log.String()))
			rs = append(rs, r)
			for _, f := range r.failures() {
				t.Error(f)
			}
		})
	}
	t.Log("\n" + table(rs))
}
