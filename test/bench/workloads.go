package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
)

// config is how long and how hard each run goes.
type config struct {
	duration   time.Duration // measured part of a run (upper bound)
	warmup     time.Duration // unmeasured part before it (upper bound)
	repeats    int           // runs per system and workload
	maxOps     int           // if > 0, caps calls or messages per measured run
	warmupOps  int           // if > 0, caps calls or messages per warm-up
	maxStreams int           // if > 0, caps streams per measured run
	streamMsgs int           // if > 0, messages per stream; else streamBytes/size
	conns      int           // connections held open by idle-conn

	// heapProfile, if set, is called by idle-conn once it has measured,
	// while its connections are still open (-memprofile); heapProfiled
	// records that it was.
	heapProfile  func() error
	heapProfiled bool

	// log, if set, gets notes a workload prints once (unary-rr3's
	// per-server shares); rrShown records the systems already shown.
	log     io.Writer
	rrShown map[string]bool
}

// streamBytes is how much one download or upload stream carries, so the
// cost of opening a stream is spread over many messages.
const streamBytes = 64 << 20

// metric describes one figure a workload reports per run.
type metric struct {
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Better string `json:"better"` // "lower" or "higher"
	format string // how the table shows a value
}

// workload is one measurement, written once against the system
// interfaces. run does one run (warm-up included) and returns one value
// per metric.
type workload struct {
	name    string
	desc    string
	metrics []metric
	run     func(ctx context.Context, sys system, cfg *config) ([]float64, error)
}

var (
	mP50    = metric{"p50", "µs", "lower", "p50 %.1f µs"}
	mP99    = metric{"p99", "µs", "lower", "p99 %.1f µs"}
	mRPCs   = metric{"rpc/s", "rpc/s", "higher", "%s rpc/s"}
	mMsgs   = metric{"msg/s", "msg/s", "higher", "%s msg/s"}
	mMBs    = metric{"MB/s", "MB/s", "higher", "%.0f MB/s"}
	mAllocs = metric{"allocs/rpc", "allocs", "lower", "%.1f allocs/rpc"}
	mBytes  = metric{"bytes/rpc", "B", "lower", "%.0f B/rpc"}
	mCPU    = metric{"cpu-s/100k", "CPU-s", "lower", "%.2f CPU-s/100k rpc"}
	mCores  = metric{"cores", "cores", "lower", "%.2f cores busy"}
	mHeap   = metric{"heap/conn", "KiB", "lower", "heap %.1f KiB/conn"}
	mStack  = metric{"stack/conn", "KiB", "lower", "stacks %.1f KiB/conn"}
	mRSS    = metric{"rss/conn", "KiB", "lower", "RSS %.1f KiB/conn"}
)

// allWorkloads are the workloads in the order they run.
var allWorkloads = []workload{
	{
		name: "unary-c1", desc: "unary calls one at a time, 1-byte payload",
		metrics: []metric{mP50, mP99, mRPCs},
		run:     func(ctx context.Context, s system, c *config) ([]float64, error) { return runUnary(ctx, s, c, 1) },
	},
	{
		name: "unary-c16", desc: "16 concurrent unary callers on one connection, 1-byte payload",
		metrics: []metric{mRPCs, mP50, mP99},
		run:     func(ctx context.Context, s system, c *config) ([]float64, error) { return runUnary(ctx, s, c, 16) },
	},
	{
		name: "unary-c128", desc: "128 concurrent unary callers on one connection, 1-byte payload",
		metrics: []metric{mRPCs, mP50, mP99},
		run:     func(ctx context.Context, s system, c *config) ([]float64, error) { return runUnary(ctx, s, c, 128) },
	},
	{
		name: "unary-rr3", desc: "16 concurrent unary callers on one client balancing round_robin over three servers (127.0.0.1-3), 1-byte payload; h2rpc and grpc-go only",
		metrics: []metric{mRPCs, mP50, mP99},
		run:     func(ctx context.Context, s system, c *config) ([]float64, error) { return runRR3(ctx, s, c, 16) },
	},
	{
		name: "pingpong", desc: "one bidi stream, send a 1-byte message and wait for its echo",
		metrics: []metric{mMsgs, mP50, mP99},
		run:     runPingPong,
	},
	streamWorkload("download-64KiB", true, 64<<10),
	streamWorkload("download-1MiB", true, 1<<20),
	streamWorkload("upload-64KiB", false, 64<<10),
	streamWorkload("upload-1MiB", false, 1<<20),
	{
		name: "allocs", desc: "heap allocations per unary call (c=1, 1-byte payload), client and server together",
		metrics: []metric{mAllocs, mBytes},
		run:     runAllocs,
	},
	{
		name: "cpu", desc: "CPU time (user+system, whole process) per 100k unary calls at c=16",
		metrics: []metric{mCPU, mRPCs, mCores},
		run:     runCPU,
	},
	{
		name: "idle-conn", desc: "memory per open idle connection (client and server side together), after GC",
		metrics: []metric{mHeap, mRSS, mStack},
		run:     runIdle,
	},
}

func streamWorkload(name string, down bool, size int) workload {
	desc := fmt.Sprintf("server-streaming download (Expand) of %d KiB messages, one stream at a time", size>>10)
	if !down {
		desc = fmt.Sprintf("client-streaming upload (Collect) of %d KiB messages, one stream at a time", size>>10)
	}
	return workload{
		name: name, desc: desc,
		metrics: []metric{mMBs},
		run: func(ctx context.Context, s system, c *config) ([]float64, error) {
			return runStream(ctx, s, c, down, size)
		},
	}
}

// setup starts a server of sys and dials one client to it.
func setup(ctx context.Context, sys system) (server, client, error) {
	srv, err := sys.startServer()
	if err != nil {
		return nil, nil, err
	}
	cl, err := srv.dial(ctx)
	if err != nil {
		srv.close()
		return nil, nil, err
	}
	return srv, cl, nil
}

func teardown(srv server, cl client) {
	cl.close()
	srv.close()
}

// loadResult is what a burst of unary calls did.
type loadResult struct {
	calls   int
	elapsed time.Duration
	lat     []time.Duration // per call, if recorded; sorted
}

// loadUnary makes unary calls from conc goroutines until d has passed or
// maxOps calls were made (if maxOps > 0).
func loadUnary(ctx context.Context, cl client, conc int, req *echov1.EchoRequest, d time.Duration, maxOps int, record bool) (loadResult, error) {
	var (
		wg      sync.WaitGroup
		claimed atomic.Int64 // calls started, against maxOps
		done    atomic.Int64 // calls completed
		stop    atomic.Bool
		errOnce sync.Once
		firstEr error
		mu      sync.Mutex
		lat     []time.Duration
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			if record {
				mine = make([]time.Duration, 0, 1024)
			}
			for !stop.Load() {
				if maxOps > 0 && claimed.Add(1) > int64(maxOps) {
					break
				}
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := cl.unary(ctx, req); err != nil {
					errOnce.Do(func() { firstEr = err })
					stop.Store(true)
					break
				}
				if record {
					mine = append(mine, time.Since(t0))
				}
				done.Add(1)
			}
			if record {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), calls: int(done.Load())}
	if record {
		slices.Sort(lat)
		r.lat = lat
	}
	if firstEr != nil {
		return r, firstEr
	}
	if r.calls == 0 {
		return r, errors.New("no call completed")
	}
	return r, nil
}

// percentile returns the q-quantile (0..1) of sorted durations, in µs.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / float64(time.Microsecond)
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func runUnary(ctx context.Context, sys system, cfg *config, conc int) ([]float64, error) {
	srv, cl, err := setup(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer teardown(srv, cl)
	req := &echov1.EchoRequest{Payload: []byte{'x'}}
	if _, err := loadUnary(ctx, cl, conc, req, cfg.warmup, cfg.warmupOps, false); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	r, err := loadUnary(ctx, cl, conc, req, cfg.duration, cfg.maxOps, true)
	if err != nil {
		return nil, err
	}
	p50, p99, rps := percentile(r.lat, 0.50), percentile(r.lat, 0.99), perSecond(r.calls, r.elapsed)
	if conc == 1 {
		return []float64{p50, p99, rps}, nil
	}
	return []float64{rps, p50, p99}, nil
}

func runPingPong(ctx context.Context, sys system, cfg *config) ([]float64, error) {
	srv, cl, err := setup(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer teardown(srv, cl)
	st, err := cl.chat(ctx)
	if err != nil {
		return nil, err
	}
	req := &echov1.EchoRequest{Payload: []byte{'x'}}
	loop := func(d time.Duration, maxOps int, lat []time.Duration) ([]time.Duration, int, time.Duration, error) {
		start := time.Now()
		deadline := start.Add(d)
		n := 0
		for maxOps <= 0 || n < maxOps {
			t0 := time.Now()
			if !t0.Before(deadline) {
				break
			}
			if err := st.roundTrip(req); err != nil {
				return lat, n, 0, err
			}
			n++
			if lat != nil {
				lat = append(lat, time.Since(t0))
			}
		}
		return lat, n, time.Since(start), nil
	}
	if _, _, _, err := loop(cfg.warmup, cfg.warmupOps, nil); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	lat, n, elapsed, err := loop(cfg.duration, cfg.maxOps, make([]time.Duration, 0, 1<<16))
	if err != nil {
		return nil, err
	}
	if err := st.close(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("no message completed")
	}
	slices.Sort(lat)
	return []float64{perSecond(n, elapsed), percentile(lat, 0.50), percentile(lat, 0.99)}, nil
}

func runStream(ctx context.Context, sys system, cfg *config, down bool, size int) ([]float64, error) {
	srv, cl, err := setup(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer teardown(srv, cl)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	count := cfg.streamMsgs
	if count <= 0 {
		count = max(1, streamBytes/size)
	}
	one := func() (int64, error) {
		if down {
			return cl.download(ctx, payload, count)
		}
		if err := cl.upload(ctx, payload, count); err != nil {
			return 0, err
		}
		return int64(count * size), nil
	}
	// Warm-up: one stream, which also lets flow-control windows grow.
	if _, err := one(); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	start := time.Now()
	var total int64
	for streams := 0; cfg.maxStreams <= 0 || streams < cfg.maxStreams; streams++ {
		if streams > 0 && time.Since(start) >= cfg.duration {
			break
		}
		n, err := one()
		if err != nil {
			return nil, err
		}
		total += n
	}
	elapsed := time.Since(start)
	return []float64{float64(total) / 1e6 / elapsed.Seconds()}, nil
}

func runAllocs(ctx context.Context, sys system, cfg *config) ([]float64, error) {
	srv, cl, err := setup(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer teardown(srv, cl)
	req := &echov1.EchoRequest{Payload: []byte{'x'}}
	if _, err := loadUnary(ctx, cl, 1, req, cfg.warmup, cfg.warmupOps, false); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r, err := loadUnary(ctx, cl, 1, req, cfg.duration, cfg.maxOps, false)
	runtime.ReadMemStats(&m1)
	if err != nil {
		return nil, err
	}
	n := float64(r.calls)
	return []float64{float64(m1.Mallocs-m0.Mallocs) / n, float64(m1.TotalAlloc-m0.TotalAlloc) / n}, nil
}

func runCPU(ctx context.Context, sys system, cfg *config) ([]float64, error) {
	srv, cl, err := setup(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer teardown(srv, cl)
	req := &echov1.EchoRequest{Payload: []byte{'x'}}
	if _, err := loadUnary(ctx, cl, 16, req, cfg.warmup, cfg.warmupOps, false); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	c0, err := cpuTime()
	if err != nil {
		return nil, err
	}
	r, err := loadUnary(ctx, cl, 16, req, cfg.duration, cfg.maxOps, false)
	if err != nil {
		return nil, err
	}
	c1, err := cpuTime()
	if err != nil {
		return nil, err
	}
	cpu := (c1 - c0).Seconds()
	return []float64{cpu / float64(r.calls) * 1e5, perSecond(r.calls, r.elapsed), cpu / r.elapsed.Seconds()}, nil
}

// settle collects garbage and returns freed memory to the system, so that
// heap and RSS figures show live memory only.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func runIdle(ctx context.Context, sys system, cfg *config) ([]float64, error) {
	srv, err := sys.startServer()
	if err != nil {
		return nil, err
	}
	defer srv.close()
	settle()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0, rssErr := rss()

	clients := make([]client, 0, cfg.conns)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for range cfg.conns {
		c, err := srv.dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", len(clients)+1, err)
		}
		clients = append(clients, c)
	}
	// Let what the first calls started finish, then measure.
	time.Sleep(100 * time.Millisecond)
	settle()
	runtime.ReadMemStats(&m1)
	rss1, err := rss()
	if rssErr != nil || err != nil {
		rss0, rss1 = 0, 0 // not available: report 0
	}
	if cfg.heapProfile != nil {
		if err := cfg.heapProfile(); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
		cfg.heapProfiled = true
	}
	n := float64(cfg.conns)
	kib := func(a, b uint64) float64 { return (float64(b) - float64(a)) / n / 1024 }
	return []float64{kib(m0.HeapInuse, m1.HeapInuse), kib(rss0, rss1), kib(m0.StackInuse, m1.StackInuse)}, nil
}
