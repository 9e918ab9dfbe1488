package transport

// Raw-peer tests of frames a peer may send at any rate and that need no
// answer, WINDOW_UPDATE and RST_STREAM on streams gone, sent while the
// server's writer is blocked on a socket the peer does not read.

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2rpc/h2rpc/rpc/status"
)

// streamMethod streams 16 KiB replies until its stream ends.
const streamMethod = "/test.Raw/Stream"

func TestRawIncomingFloodWhileWriterBlocked(t *testing.T) {
	noLeaks(t)
	var written atomic.Int64
	reply := make([]byte, 16<<10)
	ts := newSmallBufferServer(t, ServerConfig{}, func(s *ServerStream) {
		if s.Method() != streamMethod {
			echoHandler(s)
			return
		}
		for {
			if err := s.Write(frameMsg(len(reply)), reply, WriteOptions{}); err != nil {
				s.WriteStatus(status.Convert(err))
				return
			}
			written.Add(int64(len(reply)))
		}
	})
	// Windows granted in full; the socket never read.
	p := dialRawClient(t, ts.addr(), rawPeerOpts{noRead: true, smallSocket: true,
		settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 30}}})
	p.must(p.writeWindowUpdate(0, 1<<30))
	// Streams 1 to 999 are closed without ever being opened (RFC 9113
	// §5.1.1): the server knows nothing of them.
	open := []uint32{1001, 1003, 1005}
	for _, id := range open {
		p.must(p.writeHeaders(id, true, reqFields(streamMethod)))
	}
	sc := ts.conn(0)
	// The replies fill the socket buffers, and loopy blocks in writev:
	// the handlers' writes stop once their write quotas are spent.
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(longWait); ; {
		if n := written.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 200*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never stopped writing (%d bytes)", last)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// What is queued now is the handlers' replies, bounded by their
	// write quotas.
	_, base := sc.cb.Len()

	// 200,000 WINDOW_UPDATEs, for the connection and the open streams,
	// and 200,000 RST_STREAMs on streams the server never saw.
	const n = 400000
	f := startFlood(p, n, 1000, func(fr *http2.Framer, i int) error {
		if i%2 == 0 {
			id := uint32(0)
			if i%4 == 2 {
				id = open[(i/4)%len(open)]
			}
			return fr.WriteWindowUpdate(id, 1)
		}
		return fr.WriteRSTStream(uint32(1+2*((i/2)%500)), http2.ErrCodeCancel)
	})
	maxQueued, stalled := f.watch(300*time.Millisecond, func() int { _, total := sc.cb.Len(); return total })
	t.Logf("sent %d of %d frames, stalled %v, at most %d items queued (%d before the flood)", f.sent.Load(), n, stalled, maxQueued, base)
	// The window updates coalesce (one item per window), and the resets
	// count against MaxQueuedControl: the reader stops there.
	if bound := base + maxControlBound + len(open) + 1; maxQueued > bound {
		t.Errorf("%d items queued during the flood (%d before), want at most %d", maxQueued, base, bound)
	}
	// As for other floods: the server stops reading rather than queue;
	// the connection is not closed, and other connections are served.
	if !stalled {
		t.Errorf("the flood of %d frames never stalled: the server read on without bound", f.sent.Load())
	}
	normalClientWorks(t, ts)

	// Once the peer reads, the server reads again: the flood ends and
	// the connection serves RPCs.
	f.stop.Store(true)
	p.skip = func(f rawFrame) bool { return f.Type == http2.FrameData && f.StreamID <= open[len(open)-1] }
	p.startReader()
	if err := f.wait(t); err != nil {
		t.Fatalf("flood: %v", err)
	}
	for _, id := range open {
		p.must(p.writeRST(id, http2.ErrCodeCancel))
	}
	p.unaryOK(1007, echoMethod)
	p.expectNone(anyGoAway(), 0)
}
