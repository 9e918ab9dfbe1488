package keepalive

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// quietLog discards log output for one test.
func quietLog(t *testing.T) {
	old := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(old) })
}

func TestClientEffective(t *testing.T) {
	quietLog(t)
	tests := []struct {
		name string
		in   ClientParameters
		want ClientParameters
	}{
		{"zero disables", ClientParameters{}, ClientParameters{Time: Infinity, Timeout: DefaultClientTimeout}},
		{"below minimum", ClientParameters{Time: time.Second}, ClientParameters{Time: 10 * time.Second, Timeout: 20 * time.Second}},
		{"negative", ClientParameters{Time: -time.Second, Timeout: -1}, ClientParameters{Time: 10 * time.Second, Timeout: 20 * time.Second}},
		{"kept", ClientParameters{Time: time.Minute, Timeout: time.Second, PermitWithoutStream: true},
			ClientParameters{Time: time.Minute, Timeout: time.Second, PermitWithoutStream: true}},
		{"infinity", ClientParameters{Time: Infinity}, ClientParameters{Time: Infinity, Timeout: 20 * time.Second}},
	}
	for _, tc := range tests {
		if got := tc.in.Effective(); got != tc.want {
			t.Errorf("%s: %+v.Effective() = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestClientEffectiveWarnsOnce(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	clientTimeWarned.Store(false)

	for range 3 {
		ClientParameters{Time: time.Second}.Effective()
	}
	ClientParameters{Time: time.Minute}.Effective()
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("got %d warnings, want 1; log:\n%s", n, buf.String())
	}
}

func TestClientEffectiveMinimumOverride(t *testing.T) {
	setMinimums(t, time.Millisecond, time.Millisecond)
	p := ClientParameters{Time: 5 * time.Millisecond}.Effective()
	if p.Time != 5*time.Millisecond {
		t.Fatalf("Time = %v, want 5ms with MinClientTime lowered", p.Time)
	}
}

func TestServerEffective(t *testing.T) {
	got := ServerParameters{}.Effective()
	want := ServerParameters{
		MaxConnectionIdle: Infinity, MaxConnectionAge: Infinity, MaxConnectionAgeGrace: Infinity,
		Time: 2 * time.Hour, Timeout: 20 * time.Second,
	}
	if got != want {
		t.Fatalf("zero.Effective() = %+v, want %+v", got, want)
	}
	got = ServerParameters{Time: time.Millisecond}.Effective()
	if got.Time != time.Second {
		t.Fatalf("Time below minimum: got %v, want 1s", got.Time)
	}
	in := ServerParameters{MaxConnectionIdle: 1, MaxConnectionAge: 2, MaxConnectionAgeGrace: 3, Time: time.Minute, Timeout: 4}
	if got := in.Effective(); got != in {
		t.Fatalf("explicit values changed: %+v -> %+v", in, got)
	}
}

func TestEnforcementEffective(t *testing.T) {
	if got := (EnforcementPolicy{}).Effective(); got.MinTime != 5*time.Minute || got.PermitWithoutStream {
		t.Fatalf("zero.Effective() = %+v", got)
	}
	in := EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}
	if got := in.Effective(); got != in {
		t.Fatalf("explicit values changed: %+v -> %+v", in, got)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct{ in, want time.Duration }{
		{0, 0},
		{Infinity, Infinity},
		{time.Second, 20 * time.Second}, // below the minimum: counts as 10s
		{10 * time.Second, 20 * time.Second},
		{time.Minute, 2 * time.Minute},
		{Infinity/2 + 1, Infinity},
		{Infinity / 2, Infinity - 1},
	}
	for _, tc := range tests {
		p := ClientParameters{Time: tc.in, Timeout: time.Second, PermitWithoutStream: true}
		got := p.Backoff()
		if got.Time != tc.want || got.Timeout != p.Timeout || !got.PermitWithoutStream {
			t.Errorf("Backoff(Time %v) = %+v, want Time %v", tc.in, got, tc.want)
		}
	}
}

func TestJitterAge(t *testing.T) {
	if got := jitterAge(Infinity); got != Infinity {
		t.Fatalf("jitterAge(Infinity) = %v", got)
	}
	if got := jitterAge(5); got != 5 {
		t.Fatalf("jitterAge(5ns) = %v, want unchanged", got)
	}
	d := time.Minute
	for range 1000 {
		if got := jitterAge(d); got < d-d/10 || got > d+d/10 {
			t.Fatalf("jitterAge(%v) = %v, outside ±10%%", d, got)
		}
	}
	if got := jitterAge(Infinity - 1); got < Infinity-Infinity/10-1 {
		t.Fatalf("jitterAge(near Infinity) = %v", got)
	}
}

func TestActivity(t *testing.T) {
	var a Activity
	if !a.LastRead().IsZero() {
		t.Fatalf("LastRead before any Read = %v, want zero", a.LastRead())
	}
	before := time.Now()
	a.Read()
	after := time.Now()
	got := a.LastRead()
	if got.Before(before) || got.After(after) {
		t.Fatalf("LastRead = %v, want within [%v, %v]", got, before, after)
	}
	if n := testing.AllocsPerRun(100, a.Read); n != 0 {
		t.Fatalf("Read allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, a.StreamStarted); n != 0 {
		t.Fatalf("StreamStarted (not dormant) allocates %v times", n)
	}
}

func BenchmarkActivityRead(b *testing.B) {
	var a Activity
	b.ReportAllocs()
	for b.Loop() {
		a.Read()
	}
}

func BenchmarkEnforcerReset(b *testing.B) {
	e := NewEnforcer(EnforcementPolicy{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Reset()
		}
	})
}
