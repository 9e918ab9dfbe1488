//go:build linux

package main

import (
	"context"
	"errors"
	"time"

	"golang.org/x/net/http2"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// Bounds, in MiB of peak RSS growth of the server process.
const (
	// budgetBound is for attacks that make the server queue replies the
	// attacker never takes: the outbound budget per connection (32 MiB
	// by default) plus 16 MiB of slack for the garbage collector (a Go
	// heap grows to about twice its live size before a collection) and
	// the stream state.
	budgetBound = 32 + 16
	// A handler of the interop server whose 1 MiB reply waits for the
	// outbound budget holds the reply message it built and its
	// encoding: 2 MiB. A streaming handler whose previous reply the
	// budget took has also left that reply's message as garbage the
	// heap keeps until the next collection: 3 MiB. This is the
	// application's memory: the transport bounds what it queues (the
	// budget), not what handlers allocate before they write; what
	// bounds that is the number of handlers a connection may run at
	// once (MAX_CONCURRENT_STREAMS, rpc.MaxConcurrentStreams), as in
	// any gRPC server.
	unaryReplyMiB     = 2
	streamingReplyMiB = 3
)

// heldRepliesBound is the bound of an attack whose streams ask for 1 MiB
// replies and never take them: the budget bound, plus what each blocked
// handler holds (perStreamMiB), plus 10 % of that for the heap's slack.
func heldRepliesBound(streams, perStreamMiB int) float64 {
	held := float64(streams * perStreamMiB)
	return budgetBound + held + held/10
}

const (
	// floodBound is for floods of small frames: what they cost must not
	// depend on how many frames came, only on the control buffer's
	// throttle and the read and write buffers of a few connections.
	floodBound = 16
	// resetBound is for attacks that open streams and have them reset:
	// a reset stream keeps its handler slot until the handler returns,
	// so up to MAX_CONCURRENT_STREAMS (1,000) handlers run at once, at
	// 16 KiB each as in idle-streams, on top of the flood bound.
	resetBound = 16 + 16
)

// attacks lists every attack in the order they run.
func attacks() []*attack {
	return []*attack{
		{name: "rapid-reset", what: "HEADERS + RST_STREAM(CANCEL) pairs, 100 per write, as fast as the server takes them (CVE-2023-44487)",
			// See resetBound.
			boundMiB: resetBound, run: rapidReset},
		{name: "made-you-reset", what: "streams the server must reset itself: WINDOW_UPDATE 0 on an open stream, an upper-case header name, DATA after END_STREAM",
			// See resetBound; our own RST_STREAMs are responses the
			// control buffer throttles.
			boundMiB: resetBound, run: madeYouReset},
		{name: "one-byte-data", what: "100 StreamingInputCall streams fed one-byte DATA frames round robin, each announcing a 1 MiB message",
			// Each announced message reserves its buffer from the
			// connection's body budget (16 MiB, the largest window BDP
			// grows to); the buffers of streams reset and replaced are
			// garbage the GC lets pile up to the live size again
			// before it collects. The one-byte frames themselves must
			// add nothing per frame (a 15 s run, 73 million frames,
			// peaks where a 2 s run does). 2 × 16 MiB + the flood bound.
			boundMiB: 2*16 + floodBound, run: oneByteData},
		{name: "idle-streams", what: "10,000 streams opened (HEADERS without END_STREAM) and never continued, over as many connections as MAX_CONCURRENT_STREAMS forces",
			// Each open stream runs a handler blocked on its request:
			// 16 KiB per stream (an 8 KiB goroutine stack, the stream's
			// state, context and receive buffer, and the GC's slack on
			// the heap part) × 10,000 streams.
			boundMiB: 160, run: idleStreams},
		{name: "never-read-1MiB", what: "SETTINGS_INITIAL_WINDOW_SIZE 0, 200 UnaryCalls asking for 1 MiB replies, never a WINDOW_UPDATE",
			// The budget queues 32 replies; the other 168 handlers
			// wait, each holding its reply (see heldRepliesBound).
			boundMiB: heldRepliesBound(200-32, unaryReplyMiB), run: func(ctx context.Context, e *env) error { return neverGrant(ctx, e, 1<<20) }},
		{name: "never-read-16KiB", what: "as never-read-1MiB with 16 KiB replies",
			boundMiB: budgetBound, run: func(ctx context.Context, e *env) error { return neverGrant(ctx, e, 16<<10) }},
		{name: "socket-never-read", what: "windows granted in full, 100 StreamingOutputCalls of 16 × 1 MiB, the socket never read",
			// Every handler holds its next 1 MiB reply while the
			// budget is spent (see heldRepliesBound).
			boundMiB: heldRepliesBound(100, streamingReplyMiB), run: socketNeverRead},
		{name: "zero-window-forever", what: "1 MiB stream windows, the connection window (64 KiB) used up and never granted again, 100 StreamingOutputCalls of 16 × 1 MiB",
			// As socket-never-read.
			boundMiB: heldRepliesBound(100, streamingReplyMiB), run: zeroWindowForever},
		{name: "continuation-flood", what: "a HEADERS without END_HEADERS, then 1 KiB CONTINUATION frames without end; reconnect when closed (CVE-2024-27316)",
			// The block is decoded as it comes and cut off at twice
			// the header list limit: a few connections' buffers.
			boundMiB: floodBound, run: continuationFlood},
		{name: "ping-flood", what: "PING frames, 1,000 per write, on a connection that reads and one that never reads",
			boundMiB: floodBound, run: pingFlood},
		{name: "settings-flood", what: "SETTINGS frames, 1,000 per write, on a connection that reads and one that never reads",
			boundMiB: floodBound, run: settingsFlood},
		{name: "window-update-flood", what: "WINDOW_UPDATE(+1) frames on the connection and an open stream, 1,000 per write, one reading connection and one not",
			boundMiB: floodBound, run: windowUpdateFlood},
		{name: "priority-flood", what: "PRIORITY frames on ever new idle streams, 1,000 per write, one reading connection and one not",
			boundMiB: floodBound, run: priorityFlood},
		{name: "slow-preface", what: "500 connections (200 in short runs) each sending the client preface one byte a second",
			// A connection waiting for its preface holds a goroutine
			// (8 KiB stack), a 512-byte read buffer and the transport's
			// state: ~16 KiB × 500.
			boundMiB: floodBound, minDuration: 12 * time.Second, run: slowPreface},
		{name: "slow-header-block", what: "100 connections each sending a HEADERS without END_HEADERS, then a one-byte CONTINUATION a second",
			// 100 established connections, ~50 KiB each (reader and
			// writer goroutines, HPACK tables, buffers).
			boundMiB: floodBound, minDuration: 12 * time.Second, run: slowHeaderBlock},
	}
}

// eachConn runs f on a connection made with o, and on a new one each time
// the server closes it, until ctx is done. A connection the server
// stopped reading is held, unwritten, until the end: the server keeps
// what it holds for it.
func eachConn(ctx context.Context, e *env, o rawOpts, f func(rc *rawConn) error) error {
	var held []*rawConn
	defer func() {
		for _, rc := range held {
			rc.close()
		}
	}()
	for ctx.Err() == nil {
		rc, err := dialRaw(ctx, e.addr, e.ans, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.ans.note("dial failed: %v", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if !o.noRead {
			if _, err := rc.awaitSettings(ctx); err != nil {
				rc.close()
				continue
			}
		}
		err = f(rc)
		if ctx.Err() == nil && err != nil && !errors.Is(err, errDead) {
			rc.close()
			return err
		}
		if ctx.Err() == nil && !rc.serverGone.Load() {
			// Stalled: hold it, start another.
			held = append(held, rc)
			if len(held) >= 4 {
				<-ctx.Done()
				return nil
			}
		} else {
			rc.close()
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
	return nil
}

// floodPair runs batch on two connections at once, one that reads the
// server's answers and one that never does, each rebuilt when the server
// closes it, until ctx is done. batch adds one write's worth of frames.
func floodPair(ctx context.Context, e *env, setup func(rc *rawConn), batch func(rc *rawConn, fr *http2.Framer)) error {
	e.ans.unit = "frames"
	flood := func(o rawOpts) error {
		return eachConn(ctx, e, o, func(rc *rawConn) error {
			if setup != nil {
				setup(rc)
			}
			for ctx.Err() == nil {
				rc.frames(func(fr *http2.Framer) { batch(rc, fr) })
				if err := rc.flush(); err != nil {
					return err
				}
				e.ans.sent.Add(floodBatch)
			}
			return nil
		})
	}
	errc := make(chan error, 1)
	go func() { errc <- flood(rawOpts{noRead: true, smallRecv: true}) }()
	return errors.Join(flood(rawOpts{}), <-errc)
}

// floodBatch is how many frames a flood's batch writes at once.
const floodBatch = 1000

// rapidReset opens streams and cancels each at once.
func rapidReset(ctx context.Context, e *env) error {
	e.ans.unit = "HEADERS+RST pairs"
	return eachConn(ctx, e, rawOpts{}, func(rc *rawConn) error {
		id := uint32(1)
		for ctx.Err() == nil && id < 1<<30 {
			rc.frames(func(fr *http2.Framer) {
				for range 100 {
					fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request("EmptyCall")...), EndHeaders: true})
					fr.WriteRSTStream(id, http2.ErrCodeCancel)
					id += 2
				}
			})
			if err := rc.flush(); err != nil {
				return err
			}
			e.ans.sent.Add(100)
		}
		return nil
	})
}

// madeYouReset opens streams and provokes the server into resetting each
// with a stream error, in three ways in turn.
func madeYouReset(ctx context.Context, e *env) error {
	e.ans.unit = "provoking streams"
	return eachConn(ctx, e, rawOpts{}, func(rc *rawConn) error {
		id := uint32(1)
		for ctx.Err() == nil && id < 1<<30 {
			rc.frames(func(fr *http2.Framer) {
				for i := range 99 {
					switch i % 3 {
					case 0: // RFC 9113 §6.9: an increment of 0 is a stream error
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request("UnaryCall")...), EndHeaders: true})
						fr.WriteWindowUpdate(id, 0)
					case 1: // §8.2.1: upper-case field names are malformed
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request("UnaryCall", "X-Bad", "1")...), EndHeaders: true, EndStream: true})
					case 2: // §5.1: DATA on a half-closed (remote) stream
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request("UnaryCall")...), EndHeaders: true, EndStream: true})
						fr.WriteData(id, false, []byte{0})
					}
					id += 2
				}
			})
			if err := rc.flush(); err != nil {
				return err
			}
			e.ans.sent.Add(99)
		}
		return nil
	})
}

// oneByteData keeps 100 client-streaming calls busy with one-byte DATA
// frames. A stream gets at most 60,000 bytes, under its initial window,
// then is reset and replaced, so the attacker never breaks flow control.
func oneByteData(ctx context.Context, e *env) error {
	const streams = 100
	const perStream = 60000
	e.ans.unit = "one-byte DATA frames"
	return eachConn(ctx, e, rawOpts{}, func(rc *rawConn) error {
		msg := make([]byte, 5+(1<<20))
		msg[1], msg[2], msg[3], msg[4] = 0, 0x10, 0, 0 // a 1 MiB message follows
		ids := make([]uint32, streams)
		sent := make([]int, streams)
		next := uint32(1)
		open := func(fr *http2.Framer, i int) {
			ids[i], sent[i] = next, 0
			next += 2
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids[i], BlockFragment: rc.encode(request("StreamingInputCall")...), EndHeaders: true})
		}
		rc.frames(func(fr *http2.Framer) {
			for i := range streams {
				open(fr, i)
			}
		})
		for ctx.Err() == nil && next < 1<<30 {
			rc.frames(func(fr *http2.Framer) {
				for range 10 {
					for i := range streams {
						if sent[i] == perStream {
							fr.WriteRSTStream(ids[i], http2.ErrCodeCancel)
							open(fr, i)
						}
						fr.WriteData(ids[i], false, msg[sent[i]:sent[i]+1])
						sent[i]++
					}
				}
			})
			if err := rc.flush(); err != nil {
				return err
			}
			e.ans.sent.Add(10 * streams)
		}
		return nil
	})
}

// idleStreams opens 10,000 streams that never send their request, filling
// each connection up to the MAX_CONCURRENT_STREAMS it announced, and
// holds them.
func idleStreams(ctx context.Context, e *env) error {
	const total = 10000
	var conns []*rawConn
	defer func() {
		for _, rc := range conns {
			rc.close()
		}
	}()
	opened := 0
	for opened < total && ctx.Err() == nil {
		rc, err := dialRaw(ctx, e.addr, e.ans, rawOpts{})
		if err != nil {
			return err
		}
		conns = append(conns, rc)
		limit, err := rc.awaitSettings(ctx)
		if err != nil {
			continue
		}
		n := min(int(limit), total-opened)
		id := uint32(1)
		for done := 0; done < n; {
			rc.frames(func(fr *http2.Framer) {
				for k := 0; k < 100 && done < n; k++ {
					fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request("UnaryCall")...), EndHeaders: true})
					id += 2
					done++
				}
			})
			if err := rc.flush(); err != nil {
				break
			}
		}
		opened += n
	}
	e.ans.note("%d streams on %d conns", opened, len(conns))
	<-ctx.Done()
	return nil
}

// neverGrant asks for 200 replies of size bytes with a stream window of
// zero and never grants any.
func neverGrant(ctx context.Context, e *env, size int32) error {
	rc, err := dialRaw(ctx, e.addr, e.ans, rawOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}})
	if err != nil {
		return err
	}
	defer rc.close()
	if _, err := rc.awaitSettings(ctx); err != nil {
		return err
	}
	req := grpcMessage(&testpb.SimpleRequest{ResponseSize: size})
	openStreams(rc, 200, "UnaryCall", req)
	<-ctx.Done()
	return nil
}

// openStreams opens n streams of method, each sending msg and ending.
func openStreams(rc *rawConn, n int, method string, msg []byte) error {
	id := uint32(1)
	for i := 0; i < n; i += 50 {
		rc.frames(func(fr *http2.Framer) {
			for j := i; j < min(n, i+50); j++ {
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.encode(request(method)...), EndHeaders: true})
				fr.WriteData(id, true, msg)
				id += 2
			}
		})
		if err := rc.flush(); err != nil {
			return err
		}
	}
	return nil
}

// streamingRequest asks for 16 replies of 1 MiB.
func streamingRequest() []byte {
	req := &testpb.StreamingOutputCallRequest{}
	for range 16 {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: 1 << 20})
	}
	return grpcMessage(req)
}

// socketNeverRead grants every window there is, asks for 1.6 GiB of
// replies and never reads the socket.
func socketNeverRead(ctx context.Context, e *env) error {
	rc, err := dialRaw(ctx, e.addr, e.ans, rawOpts{
		settings:   []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}},
		connWindow: 1<<31 - 1,
		noRead:     true,
		smallRecv:  true,
	})
	if err != nil {
		return err
	}
	defer rc.close()
	openStreams(rc, 100, "StreamingOutputCall", streamingRequest())
	<-ctx.Done()
	return nil
}

// zeroWindowForever reads everything the server sends but never refills
// the connection window: after 64 KiB the server can send no DATA again.
func zeroWindowForever(ctx context.Context, e *env) error {
	rc, err := dialRaw(ctx, e.addr, e.ans, rawOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 20}}})
	if err != nil {
		return err
	}
	defer rc.close()
	if _, err := rc.awaitSettings(ctx); err != nil {
		return err
	}
	openStreams(rc, 100, "StreamingOutputCall", streamingRequest())
	<-ctx.Done()
	return nil
}
