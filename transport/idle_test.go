package transport

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// What an idle connection holds: these tests check that memory used for a
// call is let go of once the call is over.

func TestHeaderBlockReleasesFields(t *testing.T) {
	var encBuf bytes.Buffer
	f := headersFrame(t, hpack.NewEncoder(&encBuf), &encBuf)
	hb := newHeaderBlock(DefaultMaxHeaderListSize)
	if done, err := startFrame(hb, f); !done || err != nil {
		t.Fatalf("start = %v, %v", done, err)
	}
	if len(hb.fields) != len(typicalRequest) {
		t.Fatalf("%d fields, want %d", len(hb.fields), len(typicalRequest))
	}
	fields := hb.fields[:cap(hb.fields)]
	hb.release()
	if hb.fields != nil || hb.pooled != nil {
		t.Fatalf("after release the block still holds %d fields", cap(hb.fields))
	}
	// The pool must not keep the decoded strings alive.
	for i, f := range fields {
		if f != (hpack.HeaderField{}) {
			t.Fatalf("pooled field %d = %v, want it cleared", i, f)
		}
	}
	hb.release() // a second release does nothing

	// The next block takes fields again and decodes as before (from the
	// dynamic table now).
	f = headersFrame(t, hpack.NewEncoder(&encBuf), &encBuf)
	if done, err := startFrame(hb, f); !done || err != nil {
		t.Fatalf("second start = %v, %v", done, err)
	}
	for i, got := range hb.fields {
		if got != typicalRequest[i] {
			t.Fatalf("field %d = %v, want %v", i, got, typicalRequest[i])
		}
	}
	hb.release()
}

// watchRecorder counts Watch's callbacks.
type watchRecorder struct {
	goAway, closed atomic.Int32
	order          atomic.Value // "goAway" or "closed": which came first
}

// watch registers the recorder; then, if set, runs on each call.
func (w *watchRecorder) watch(c ClientTransport, then func()) {
	c.Watch(func() {
		w.order.CompareAndSwap(nil, "goAway")
		w.goAway.Add(1)
		if then != nil {
			then()
		}
	}, func() {
		w.order.CompareAndSwap(nil, "closed")
		w.closed.Add(1)
		if then != nil {
			then()
		}
	})
}

func (w *watchRecorder) check(t *testing.T, goAway, closed int32) {
	t.Helper()
	if g, c := w.goAway.Load(), w.closed.Load(); g != goAway || c != closed {
		t.Errorf("goAway called %d times, closed %d times; want %d and %d", g, c, goAway, closed)
	}
	if o := w.order.Load(); o != nil && o != "goAway" {
		t.Errorf("%v called first, want goAway", o)
	}
}

func TestWatchGoAwayThenClose(t *testing.T) {
	noLeaks(t)
	c, p := startRawServer(t)
	var w watchRecorder
	w.watch(c, nil)
	s, id := rawOpenStream(t, c, p)
	p.must(p.write(func(fr *http2.Framer) error { return fr.WriteGoAway(id, http2.ErrCodeNo, nil) }))
	pollUntil(t, "goAway callback", func() bool { return w.goAway.Load() > 0 })
	w.check(t, 1, 0) // the stream at the last id keeps the connection open

	// The stream ends; with none left the client closes the connection.
	p.must(p.writeHeaders(id, true, respFields(append(rawOKHeaders(), "grpc-status", "0")...)))
	rawStreamStatus(t, s)
	select {
	case <-c.Done():
	case <-time.After(longWait):
		t.Fatal("connection still open after its last stream")
	}
	pollUntil(t, "closed callback", func() bool { return w.closed.Load() > 0 })
	w.check(t, 1, 1)

	// Watching a closed transport calls both at once.
	var late watchRecorder
	late.watch(c, nil)
	late.check(t, 1, 1)
}

func TestWatchClose(t *testing.T) {
	noLeaks(t)
	c, _ := startRawServer(t)
	// The callbacks may call the transport: closing it again from them
	// must not deadlock.
	var w watchRecorder
	w.watch(c, func() {
		c.GracefulClose()
		c.Close(nil)
	})
	c.Close(nil)
	// close calls them before it returns.
	w.check(t, 1, 1)
}

func TestEvent(t *testing.T) {
	var e event
	if e.hasFired() {
		t.Fatal("zero event has fired")
	}
	before := e.wait()
	select {
	case <-before:
		t.Fatal("wait's channel closed before fire")
	default:
	}
	if !e.fire() || e.fire() {
		t.Fatal("fire did not report the first call only")
	}
	<-before // closed by fire
	if !e.hasFired() {
		t.Fatal("hasFired = false after fire")
	}
	var late event
	late.fire()
	<-late.wait() // made after fire: closed at once
}

// madeChannel reports whether e's channel was made.
func madeChannel(e *event) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ch != nil
}

func TestIdleConnectionMakesNoEventChannels(t *testing.T) {
	ts := newTestServer(t, ServerConfig{}, echoHandler)
	c := newTestClient(t, ts.addr(), ConnectOptions{})
	ctx := rawCtx(t)
	if _, _, err := unary(ctx, c, echoMethod, []byte("hi"), nil); err != nil {
		t.Fatal(err)
	}
	sc := ts.conn(0)
	for name, e := range map[string]*event{
		"client done": &c.done, "client loopyDone": &c.loopyDone, "client goAway": &c.goAway,
		"server done": &sc.done, "server loopyDone": &sc.loopyDone,
	} {
		if madeChannel(e) {
			t.Errorf("%s: channel made on an open connection nobody waits on", name)
		}
	}
}
