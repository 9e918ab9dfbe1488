package cases

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/h2rpc/h2rpc/rpc"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// SoakConfig configures rpc_soak and channel_soak; its fields are the
// --soak_* flags of the interop client.
type SoakConfig struct {
	// Iterations is the number of large unary calls, in all.
	Iterations int
	// MaxFailures is how many of them may fail (an error or a latency
	// above PerIterationMaxAcceptableLatency) with the case still passing.
	MaxFailures int
	// PerIterationMaxAcceptableLatency is the longest a call may take.
	PerIterationMaxAcceptableLatency time.Duration
	// OverallTimeout bounds the whole case; iterations not run by then
	// fail it.
	OverallTimeout time.Duration
	// MinTimeBetweenRPCs is the least time between the starts of two
	// calls of one worker.
	MinTimeBetweenRPCs time.Duration
	// RequestSize and ResponseSize are the payload sizes of each call.
	RequestSize, ResponseSize int
	// NumWorkers is the number of workers calling concurrently; they
	// share Iterations evenly.
	NumWorkers int
	// ServerAddr names the server in the log lines.
	ServerAddr string
}

// DefaultSoakConfig is the default of the interop client's flags.
func DefaultSoakConfig() SoakConfig {
	return SoakConfig{
		Iterations:                       10,
		MaxFailures:                      0,
		PerIterationMaxAcceptableLatency: time.Second,
		OverallTimeout:                   10 * time.Second,
		MinTimeBetweenRPCs:               0,
		RequestSize:                      largeReqSize,
		ResponseSize:                     largeRespSize,
		NumWorkers:                       1,
	}
}

func rpcSoak(ctx context.Context, env *Env) error {
	return soak(ctx, env, func() (*rpc.ClientConn, func(), error) {
		return env.Conn, func() {}, nil
	})
}

func channelSoak(ctx context.Context, env *Env) error {
	if env.Dial == nil {
		return fmt.Errorf("channel_soak: Env.Dial is nil")
	}
	return soak(ctx, env, func() (*rpc.ClientConn, func(), error) {
		cc, err := env.Dial()
		if err != nil {
			return nil, nil, err
		}
		return cc, func() { cc.Close() }, nil
	})
}

// soakResult is what one worker saw.
type soakResult struct {
	succeeded int
	failures  []string
	latencies []time.Duration
}

// soak runs large unary calls, each on a channel from channel, as
// SoakConfig says, and fails when more than MaxFailures of them failed or
// when not all ran within OverallTimeout.
func soak(ctx context.Context, env *Env, channel func() (*rpc.ClientConn, func(), error)) error {
	cfg := env.Soak
	if cfg.NumWorkers <= 0 {
		cfg.NumWorkers = 1
	}
	if cfg.Iterations%cfg.NumWorkers != 0 {
		return fmt.Errorf("soak: %d iterations do not divide evenly among %d workers", cfg.Iterations, cfg.NumWorkers)
	}
	perWorker := cfg.Iterations / cfg.NumWorkers
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.OverallTimeout)
	defer cancel()

	results := make([]soakResult, cfg.NumWorkers)
	var wg sync.WaitGroup
	for w := range cfg.NumWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			for i := range perWorker {
				if ctx.Err() != nil {
					return
				}
				next := time.Now().Add(cfg.MinTimeBetweenRPCs)
				latency, err := soakIteration(ctx, cfg, channel)
				switch {
				case err != nil:
					r.failures = append(r.failures, fmt.Sprintf("worker %d iteration %d: %v", w, i, err))
					env.logf("soak worker %d: iteration %d server_uri %s failed: %v", w, i, cfg.ServerAddr, err)
				case latency > cfg.PerIterationMaxAcceptableLatency:
					r.failures = append(r.failures, fmt.Sprintf("worker %d iteration %d: took %v, more than %v", w, i, latency, cfg.PerIterationMaxAcceptableLatency))
					env.logf("soak worker %d: iteration %d server_uri %s elapsed_ms %d exceeds the max acceptable latency %d ms",
						w, i, cfg.ServerAddr, latency.Milliseconds(), cfg.PerIterationMaxAcceptableLatency.Milliseconds())
				default:
					r.succeeded++
					r.latencies = append(r.latencies, latency)
					env.logf("soak worker %d: iteration %d server_uri %s elapsed_ms %d succeeded", w, i, cfg.ServerAddr, latency.Milliseconds())
				}
				if d := time.Until(next); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
					}
				}
			}
		}()
	}
	wg.Wait()

	succeeded := 0
	var failures []string
	var latencies []time.Duration
	for _, r := range results {
		succeeded += r.succeeded
		failures = append(failures, r.failures...)
		latencies = append(latencies, r.latencies...)
	}
	ran := succeeded + len(failures)
	env.logf("soak (server_uri %s): %d/%d iterations succeeded, %d failed, in %v; latencies %s",
		cfg.ServerAddr, succeeded, cfg.Iterations, len(failures), time.Since(start).Round(time.Millisecond), latencySummary(latencies))
	if ran != cfg.Iterations {
		return fmt.Errorf("soak: ran %d of %d iterations within the overall timeout of %v (%d failed)%s",
			ran, cfg.Iterations, cfg.OverallTimeout, len(failures), errorsJoin(failures))
	}
	if len(failures) > cfg.MaxFailures {
		return fmt.Errorf("soak: %d of %d iterations failed, more than the %d allowed:%s",
			len(failures), cfg.Iterations, cfg.MaxFailures, errorsJoin(failures))
	}
	return nil
}

// soakIteration makes one large unary call and returns how long it took.
func soakIteration(ctx context.Context, cfg SoakConfig, channel func() (*rpc.ClientConn, func(), error)) (time.Duration, error) {
	start := time.Now()
	cc, done, err := channel()
	if err != nil {
		return 0, fmt.Errorf("opening a channel: %v", err)
	}
	defer done()
	reply, err := testpb.NewTestServiceClient(cc).UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseSize: int32(cfg.ResponseSize),
		Payload:      newPayload(cfg.RequestSize),
	})
	if err != nil {
		return 0, fmt.Errorf("UnaryCall: %v", err)
	}
	if err := checkPayload("UnaryCall response", reply.GetPayload(), cfg.ResponseSize); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// latencySummary describes latencies by their median, 90th percentile and
// maximum.
func latencySummary(l []time.Duration) string {
	if len(l) == 0 {
		return "none"
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	at := func(p int) time.Duration { return l[(len(l)-1)*p/100] }
	return fmt.Sprintf("p50 %v p90 %v max %v", at(50), at(90), l[len(l)-1])
}
