package stress

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/internal/testhook"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/status"
)

var (
	seedFlag     = flag.Uint64("stress.seed", 0, "seed of the run; 0 runs the fixed CI seeds")
	durationFlag = flag.Duration("stress.duration", 3*time.Second, "how long the workload runs per seed")
)

// ciSeeds run when -stress.seed is 0.
var ciSeeds = []uint64{1, 2, 3}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	workers     = 8
	grace       = 5 * time.Second  // a call may end this late after its deadline
	backstop    = 20 * time.Second // the deadline of calls without a short one
	stallLimit  = 8 * time.Second  // the watchdog fires after this without a completed call
	heapSlack   = 64 << 20         // the heap may stay this much above its baseline
	unavailPost = 3 * time.Second  // Unavailable is accepted this long after a disruption
)

func TestStress(t *testing.T) {
	seeds := ciSeeds
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := newRun(t, seed)
			r.run(*durationFlag)
		})
	}
}

// run is one seeded run: a server (restarted at will on one address),
// one ClientConn and the workers calling through it.
type run struct {
	t      *testing.T
	seed   uint64
	rng    *mrand.Rand // of the run's set-up and chaos goroutine
	addr   string
	sbuf   int // socket buffer size
	useTLS bool
	// idsBeforeDrain, when positive, starts every client connection's
	// stream ids this many streams short of the point where it drains
	// (internal/testhook), so connections run out of ids and drain all
	// through the run.
	idsBeforeDrain int32
	srvTLS         *tls.Config
	cliTLS         *tls.Config

	mu          sync.Mutex
	srv         *rpc.Server
	serveDone   chan struct{}
	disruptions []disruption
	t0          time.Time // the start of the workload

	active   sync.Map // call id -> *call, the calls in flight
	nextID   atomic.Uint32
	done     atomic.Int64 // calls completed
	lastDone atomic.Int64 // unix nanoseconds of the last completed call
	failed   atomic.Bool
	failOnce sync.Once
}

func newRun(t *testing.T, seed uint64) *run {
	r := &run{t: t, seed: seed, rng: mrand.New(mrand.NewPCG(seed, 0x5eed))}
	r.sbuf = (32 + r.rng.IntN(65)) << 10
	r.useTLS = r.rng.IntN(2) == 0
	if r.useTLS {
		r.srvTLS, r.cliTLS = selfSignedTLS(t)
	}
	if r.rng.IntN(2) == 0 {
		r.idsBeforeDrain = int32(20 + r.rng.IntN(200))
	}
	t.Logf("seed %d: socket buffers %d KiB, TLS %v, stream ids drain after %d streams (0: never)", seed, r.sbuf>>10, r.useTLS, r.idsBeforeDrain)
	return r
}

// repro is the command that reproduces the run.
func (r *run) repro() string {
	return fmt.Sprintf("go test -race ./test/stress -run 'TestStress' -stress.seed=%d -stress.duration=%v", r.seed, *durationFlag)
}

// fail reports an invariant violation with the seed and the command.
func (r *run) fail(format string, args ...any) {
	r.failed.Store(true)
	r.t.Errorf("seed %d: %s\nreproduce with: %s", r.seed, fmt.Sprintf(format, args...), r.repro())
}

// smallBufListener sets small socket buffers on accepted connections.
type smallBufListener struct {
	net.Listener
	n int
}

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		setBuffers(c, l.n)
	}
	return c, err
}

func setBuffers(c net.Conn, n int) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(n)
		tc.SetWriteBuffer(n)
	}
}

// startServer starts a server on r.addr (a new loopback port the first
// time).
func (r *run) startServer() error {
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	r.addr = lis.Addr().String()
	opts := []rpc.ServerOption{
		rpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Second, Timeout: 2 * time.Second}),
		rpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		// Stop returns only once the handlers have: the run checks
		// goroutines and heap right after the last Stop.
		rpc.WaitForHandlers(true),
	}
	if r.useTLS {
		opts = append(opts, rpc.Creds(credentials.NewTLS(r.srvTLS)))
	}
	srv := rpc.NewServer(opts...)
	srv.RegisterService(&serviceDesc, struct{}{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(smallBufListener{lis, r.sbuf}) // its error is ErrServerStopped or nil after a stop
	}()
	r.mu.Lock()
	r.srv, r.serveDone = srv, done
	r.mu.Unlock()
	return nil
}

// disrupt runs one of GracefulStop, Stop or a plain restart, then starts
// the server again on the same address.
func (r *run) disrupt(kind int) {
	r.mu.Lock()
	r.disruptions = append(r.disruptions, disruption{graceful: kind == 0, start: time.Now()})
	d := &r.disruptions[len(r.disruptions)-1]
	srv, done := r.srv, r.serveDone
	r.mu.Unlock()
	switch kind {
	case 0:
		// GracefulStop waits for in-flight calls; all of them end by
		// their deadlines, but a stuck one must not stop the run here
		// (the watchdog reports it).
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(backstop + grace):
			r.fail("GracefulStop did not return within %v", backstop+grace)
			r.mu.Lock()
			d.graceful = false
			r.mu.Unlock()
			srv.Stop()
			<-stopped
		}
	default:
		srv.Stop()
	}
	<-done
	if err := r.startServer(); err != nil {
		r.fail("restart on %s: %v", r.addr, err)
	}
	r.mu.Lock()
	d.end = time.Now()
	r.mu.Unlock()
}

// disruptionLog lists the disruptions so far, in run time.
func (r *run) disruptionLog() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, d := range r.disruptions {
		kind := "Stop"
		if d.graceful {
			kind = "GracefulStop"
		}
		end := "…"
		if !d.end.IsZero() {
			end = d.end.Sub(r.t0).Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "[%s +%v..+%s] ", kind, d.start.Sub(r.t0).Round(time.Millisecond), end)
	}
	return b.String()
}

// disruption is one stop and restart of the server.
type disruption struct {
	graceful   bool // GracefulStop (that did not have to fall back to Stop)
	start, end time.Time
}

// unavailableFits reports whether UNAVAILABLE fits a call that ran from
// start to end: it started while the server was down or the client was
// reconnecting after a disruption, or a Stop overlapped it, or a
// GracefulStop began before its first request reached a handler (the
// client may not have sent it yet). A call whose handler was running when
// a GracefulStop began must finish instead.
func (r *run) unavailableFits(id uint32, start, end time.Time) bool {
	_, seen := seenByServer.Load(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.disruptions {
		dEnd := d.end
		if dEnd.IsZero() {
			dEnd = end // still under way
		}
		if !start.Before(d.start) && start.Before(dEnd.Add(unavailPost)) {
			return true // started while the server was down or just after
		}
		if (!d.graceful || !seen) && d.start.Before(end) && start.Before(dEnd) {
			return true // a Stop cut it, or it had not reached the server
		}
	}
	return false
}

func (r *run) run(d time.Duration) {
	t := r.t
	seenByServer.Clear()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	if err := r.startServer(); err != nil {
		t.Fatal(err)
	}
	if r.idsBeforeDrain > 0 {
		testhook.ClientStreamsBeforeDrain.Store(r.idsBeforeDrain)
		defer testhook.ClientStreamsBeforeDrain.Store(0)
	}
	dopts := []rpc.DialOption{
		rpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var dl net.Dialer
			c, err := dl.DialContext(ctx, "tcp", addr)
			if err == nil {
				setBuffers(c, r.sbuf)
			}
			return c, err
		}),
		rpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepalive.MinClientTime, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		rpc.WithBackoff(rpc.BackoffConfig{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond}),
		rpc.WithDefaultCallOptions(rpc.CallContentSubtype("stress")),
	}
	if r.useTLS {
		dopts = append(dopts, rpc.WithTransportCredentials(credentials.NewTLS(r.cliTLS)))
	} else {
		dopts = append(dopts, rpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	cc, err := rpc.NewClient(r.addr, dopts...)
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	end := time.Now().Add(d)
	r.t0 = time.Now()
	r.lastDone.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(r.seed, uint64(w)+1))
			for ctx.Err() == nil && time.Now().Before(end) && !r.failed.Load() {
				r.oneCall(ctx, cc, rng)
			}
		}()
	}
	// Chaos: disruptions at random times.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			wait := time.Duration(300+r.rng.IntN(1200)) * time.Millisecond
			if time.Now().Add(wait).After(end) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			r.disrupt(r.rng.IntN(2))
		}
	}()
	// Watchdog.
	wdDone := make(chan struct{})
	allDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-allDone:
				return
			case <-tick.C:
			}
			var inFlight []string
			r.active.Range(func(_, v any) bool {
				inFlight = append(inFlight, v.(*call).hist())
				return true
			})
			if idle := time.Since(time.Unix(0, r.lastDone.Load())); idle > stallLimit && len(inFlight) > 0 {
				buf := make([]byte, 8<<20)
				buf = buf[:runtime.Stack(buf, true)]
				r.fail("watchdog: no RPC completed for %v (%d completed in all); disruptions: %s\ncalls in flight:\n%s\ngoroutines:\n%s",
					idle.Round(time.Millisecond), r.done.Load(), r.disruptionLog(), strings.Join(inFlight, "\n--\n"), buf)
				stop() // ends every call through its context
				return
			}
		}
	}()
	wg.Wait()
	close(allDone)
	<-wdDone
	stop()

	cc.Close()
	r.mu.Lock()
	srv, done := r.srv, r.serveDone
	r.mu.Unlock()
	srv.Stop()
	<-done
	t.Logf("seed %d: %d calls completed", r.seed, r.done.Load())
	if r.done.Load() == 0 {
		r.fail("no call completed")
	}

	// The heap returns near its baseline (goleak in TestMain checks the
	// goroutines).
	var after runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > base.HeapAlloc+heapSlack {
		r.fail("heap %d MiB after the run, %d MiB before", after.HeapAlloc>>20, base.HeapAlloc>>20)
	}
}

// call is one RPC's plan and history.
type call struct {
	id       uint32
	kind     string
	sizes    []int
	action   uint8
	code     codes.Code // the handler's code for actError
	deadline time.Duration
	cancelAt int // cancel before sending message cancelAt (-1: never; len(sizes): after CloseSend)
	cancelIn time.Duration
	stallRd  time.Duration // the client stops reading this long after the first reply
	canceled atomic.Bool

	mu      sync.Mutex // the call's goroutines both log
	history []string
}

func (c *call) logf(format string, args ...any) {
	c.mu.Lock()
	c.history = append(c.history, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// hist is the call's history, one event a line.
func (c *call) hist() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.history, "\n")
}

// msgSize draws a message size: mostly small, a few large.
func msgSize(rng *mrand.Rand) int {
	switch p := rng.IntN(100); {
	case p < 70:
		return rng.IntN(1 << 10)
	case p < 97:
		return rng.IntN(64 << 10)
	default:
		return rng.IntN(3 << 20)
	}
}

var errorCodes = []codes.Code{codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Aborted, codes.PermissionDenied}

// oneCall plans a call from rng, runs it and checks its outcome.
func (r *run) oneCall(parent context.Context, cc *rpc.ClientConn, rng *mrand.Rand) {
	c := &call{id: r.nextID.Add(1), cancelAt: -1, deadline: backstop}
	c.kind = []string{"Unary", "ServerStream", "ClientStream", "Bidi"}[rng.IntN(4)]
	n := 1
	if c.kind == "ClientStream" || c.kind == "Bidi" {
		n = rng.IntN(8)
		if n == 0 && rng.IntN(2) == 0 {
			n = 1
		}
	}
	for range n {
		c.sizes = append(c.sizes, msgSize(rng))
	}
	if c.kind == "Unary" && rng.IntN(10) == 0 {
		c.sizes[0] = 0 // an empty message
	}
	short := false
	switch p := rng.IntN(100); {
	case p < 8:
		c.action, c.code = actError, errorCodes[rng.IntN(len(errorCodes))]
	case p < 12:
		c.action = actStall
	}
	if p := rng.IntN(100); p < 25 || c.action == actStall {
		c.deadline = time.Duration(5+rng.IntN(500)) * time.Millisecond
		short = true
	}
	if rng.IntN(100) < 15 {
		if rng.IntN(2) == 0 {
			c.cancelAt = rng.IntN(len(c.sizes) + 1)
		} else {
			c.cancelIn = time.Duration(rng.IntN(300)) * time.Millisecond
		}
	}
	if rng.IntN(100) < 10 {
		c.stallRd = time.Duration(rng.IntN(400)) * time.Millisecond
	}
	if len(c.sizes) == 0 || c.sizes[0] == 0 {
		// No first request (or an empty one): no control word.
		c.action, c.code = actNormal, 0
	}
	respN, respClass := uint8(rng.IntN(10)), uint8(rng.IntN(4))
	if respClass == 3 {
		respN = min(respN, 3)
	}
	ctl := ctlWord(c.action, uint8(c.code), respN, respClass)
	c.logf("call %d %s: sizes %v action %d code %v deadline %v cancelAt %d cancelIn %v stallRead %v responses %d×class %d",
		c.id, c.kind, c.sizes, c.action, c.code, c.deadline, c.cancelAt, c.cancelIn, c.stallRd, respN, respClass)

	start := time.Now()
	ctx, cancelDl := context.WithTimeout(parent, c.deadline)
	defer cancelDl()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	doCancel := func(why string) {
		c.canceled.Store(true)
		c.logf("cancel %s", why)
		cancel()
	}
	if c.cancelIn > 0 {
		tm := time.AfterFunc(c.cancelIn, func() { c.canceled.Store(true); cancel() })
		defer tm.Stop()
	}

	r.active.Store(c.id, c)
	err := r.exec(ctx, cc, c, ctl, respN, respClass, doCancel)
	r.active.Delete(c.id)

	elapsed := time.Since(start)
	r.done.Add(1)
	r.lastDone.Store(time.Now().UnixNano())
	code := status.Code(err)
	c.logf("end after %v: %v", elapsed.Round(time.Millisecond), err)

	if parent.Err() != nil {
		return // the run is being stopped
	}
	if elapsed > c.deadline+grace {
		r.fail("call outlived its deadline %v by more than %v:\n%s", c.deadline, grace, c.hist())
		return
	}
	if err != nil && code == codes.OK {
		r.fail("call failed with %v but code OK:\n%s", err, c.hist())
		return
	}
	ok := false
	switch code {
	case codes.OK:
		// Checked by exec; an OK call whose handler was to fail is wrong.
		ok = c.action == actNormal
	case codes.Canceled:
		ok = c.canceled.Load()
	case codes.DeadlineExceeded:
		ok = short || elapsed >= c.deadline
	case codes.Unavailable:
		ok = r.unavailableFits(c.id, start, time.Now())
	default:
		ok = c.action == actError && code == c.code
	}
	if !ok {
		_, seen := seenByServer.Load(c.id)
		c.logf("handler saw the call: %v", seen)
		c.logf("call ran from +%v to +%v of the run; disruptions: %s", start.Sub(r.t0).Round(time.Millisecond), time.Since(r.t0).Round(time.Millisecond), r.disruptionLog())
		r.fail("call ended with a code that does not fit (%v):\n%s", code, c.hist())
	}
}

// errBadData marks an OK call that did not deliver what was sent.
var errBadData = errors.New("stress: wrong data")

// exec runs a planned call; a data mismatch fails the run at once.
func (r *run) exec(ctx context.Context, cc *rpc.ClientConn, c *call, ctl uint32, respN, respClass uint8, doCancel func(string)) error {
	method := "/" + serviceName + "/" + c.kind
	if c.cancelAt == 0 {
		doCancel("before sending")
	}
	if c.kind == "Unary" {
		req := &msg{payload(c.id, 0, ctl, c.sizes[0])}
		if c.sizes[0] == 0 {
			req.b = nil
		}
		out := new(msg)
		err := cc.Invoke(ctx, method, req, out)
		if err == nil && string(out.b) != string(req.b) {
			r.fail("unary echo of %d bytes came back as %d different bytes:\n%s", len(req.b), len(out.b), c.hist())
			return errBadData
		}
		return err
	}
	desc := &rpc.StreamDesc{StreamName: c.kind, ServerStreams: c.kind != "ClientStream", ClientStreams: c.kind != "ServerStream"}
	cs, err := cc.NewStream(ctx, desc, method)
	if err != nil {
		return err
	}
	stallOnce := func() {
		if c.stallRd > 0 {
			c.logf("client stops reading for %v", c.stallRd)
			time.Sleep(c.stallRd)
			c.stallRd = 0
		}
	}
	// Bidi replies are read by a goroutine of the call so that a large
	// send never waits on our own reading.
	var echoErr chan error
	if c.kind == "Bidi" {
		echoErr = make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				m := new(msg)
				err := cs.RecvMsg(m)
				if err == io.EOF {
					if i != len(c.sizes) {
						r.fail("bidi call ended OK after %d of %d echoes:\n%s", i, len(c.sizes), c.hist())
						err = errBadData
					} else {
						err = nil
					}
					echoErr <- err
					return
				}
				if err != nil {
					echoErr <- err
					return
				}
				if i >= len(c.sizes) || checkPayload(m.b, c.id, uint32(i)) != nil || len(m.b) != max(c.sizes[i], hdrLen) {
					r.fail("bidi echo %d wrong (%d bytes):\n%s", i, len(m.b), c.hist())
					doCancel("after bad data")
					echoErr <- errBadData
					return
				}
				stallOnce()
			}
		}()
	}
	var sendErr error
	for i, size := range c.sizes {
		if c.cancelAt == i && i > 0 {
			doCancel(fmt.Sprintf("before message %d", i))
		}
		w := ctl
		if i > 0 {
			w = 0
		}
		if sendErr = cs.SendMsg(&msg{payload(c.id, uint32(i), w, size)}); sendErr != nil {
			c.logf("send %d: %v", i, sendErr)
			break
		}
	}
	if sendErr == nil || sendErr == io.EOF {
		if err := cs.CloseSend(); err != nil {
			c.logf("CloseSend: %v", err)
		}
		if c.cancelAt == len(c.sizes) && c.cancelAt > 0 {
			doCancel("after CloseSend")
		}
	}
	switch c.kind {
	case "Bidi":
		if sendErr != nil && sendErr != io.EOF {
			// Let the reader see the status.
			err := <-echoErr
			if err == nil {
				r.fail("send failed (%v) but the call ended OK:\n%s", sendErr, c.hist())
				return errBadData
			}
			return err
		}
		return <-echoErr
	case "ClientStream":
		m := new(msg)
		err := cs.RecvMsg(m)
		if err != nil {
			return err
		}
		if len(m.b) != 8 || binary.BigEndian.Uint32(m.b[4:]) != uint32(len(c.sizes)) || len(c.sizes) > 0 && binary.BigEndian.Uint32(m.b) != c.id {
			r.fail("client-streaming reply %x, want call %d count %d:\n%s", m.b, c.id, len(c.sizes), c.hist())
			return errBadData
		}
		return nil
	default: // ServerStream
		for i := 0; ; i++ {
			m := new(msg)
			err := cs.RecvMsg(m)
			if err == io.EOF {
				if i != int(respN) {
					r.fail("server stream ended OK after %d of %d messages:\n%s", i, respN, c.hist())
					return errBadData
				}
				return nil
			}
			if err != nil {
				return err
			}
			if i >= int(respN) || checkPayload(m.b, c.id, uint32(i)) != nil || len(m.b) != respSize(respClass, i) {
				r.fail("server-streamed message %d wrong (%d bytes):\n%s", i, len(m.b), c.hist())
				doCancel("after bad data")
				return errBadData
			}
			stallOnce()
		}
	}
}

// selfSignedTLS makes a server and a client configuration around a
// self-signed certificate for 127.0.0.1.
func selfSignedTLS(t *testing.T) (srv, cli *tls.Config) {
	cert, pool := testcert.New(t)
	srv = &tls.Config{Certificates: []tls.Certificate{cert}}
	cli = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return srv, cli
}
