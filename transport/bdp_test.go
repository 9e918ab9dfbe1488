package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/flowcontrol"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// oneWayDelay is the simulated latency of the BDP test, each way.
const oneWayDelay = 20 * time.Millisecond

// downloadHandler answers a request of two big-endian uint32s (count,
// size) with count messages of size bytes.
func downloadHandler(s *ServerStream) {
	req, err := readMsg(s)
	if err != nil {
		s.WriteStatus(status.Convert(err))
		return
	}
	if len(req) != 8 {
		s.WriteStatus(status.New(codes.InvalidArgument, "want count and size"))
		return
	}
	count := int(binary.BigEndian.Uint32(req))
	size := int(binary.BigEndian.Uint32(req[4:]))
	payload := bytes.Repeat([]byte{'d'}, size)
	prefix := frameMsg(size)
	for range count {
		if err := s.Write(prefix, payload, WriteOptions{}); err != nil {
			s.WriteStatus(status.Convert(err))
			return
		}
	}
	s.WriteStatus(status.New(codes.OK, ""))
}

// download asks the server for count messages of size bytes and reads
// them all; it returns how long that took.
func download(t testing.TB, c *http2Client, count, size int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	start := time.Now()
	s, err := c.NewStream(ctx, &CallHdr{Method: "/test.Bulk/Download"})
	if err != nil {
		t.Fatal(err)
	}
	req := binary.BigEndian.AppendUint32(nil, uint32(count))
	req = binary.BigEndian.AppendUint32(req, uint32(size))
	if err := s.Write(frameMsg(len(req)), req, WriteOptions{Last: true}); err != nil {
		t.Fatal(err)
	}
	for i := range count {
		m, err := readMsg(s)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m) != size {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m), size)
		}
	}
	if st := s.Status(); st.Code() != codes.OK {
		t.Fatalf("download status %v", st)
	}
	return time.Since(start)
}

func mbPerSec(n int, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

// TestBDPGrowsWindowOverLatency downloads over a path with a 40 ms round
// trip. With the default (dynamic) windows the BDP estimator must grow the
// client's receive windows past 64 KiB; with fixed 64 KiB windows they must
// stay put. The throughputs are logged, not asserted: the window growth is
// what must happen, the speed-up is what it buys.
func TestBDPGrowsWindowOverLatency(t *testing.T) {
	delayed := func(c net.Conn) (net.Conn, error) { return newLatencyConn(c, oneWayDelay), nil }

	// (a) Dynamic windows: 32 MiB.
	const bdpCount, msgSize = 32, 1 << 20
	ts := newTestServerWith(t, ServerConfig{}, downloadHandler, delayed)
	c := newTestClient(t, ts.addr(), ConnectOptions{Dialer: latencyDialer(oneWayDelay)})
	bdpTime := download(t, c, bdpCount, msgSize)
	streamWin, connWin := c.streamWindow.Load(), c.trIn.Limit()
	if streamWin <= flowcontrol.DefaultWindowSize || connWin <= flowcontrol.DefaultWindowSize {
		t.Errorf("with BDP on, the windows did not grow: stream %d, connection %d", streamWin, connWin)
	}

	// (b) Fixed 64 KiB windows on both sides (BDP off): 4 MiB, since
	// 64 KiB per 40 ms round trip is about 1.6 MB/s.
	const fixedCount = 4
	fixed := uint32(flowcontrol.DefaultWindowSize)
	ts2 := newTestServerWith(t, ServerConfig{InitialWindowSize: fixed, InitialConnWindowSize: fixed}, downloadHandler, delayed)
	c2 := newTestClient(t, ts2.addr(), ConnectOptions{
		Dialer:                latencyDialer(oneWayDelay),
		InitialWindowSize:     fixed,
		InitialConnWindowSize: fixed,
	})
	fixedTime := download(t, c2, fixedCount, msgSize)
	if w, cw := c2.streamWindow.Load(), c2.trIn.Limit(); w != fixed || cw != fixed {
		t.Errorf("with fixed windows, the windows changed: stream %d, connection %d", w, cw)
	}
	if c2.bdp != nil {
		t.Error("a configured window must turn the BDP estimator off")
	}

	bdpRate := mbPerSec(bdpCount*msgSize, bdpTime)
	fixedRate := mbPerSec(fixedCount*msgSize, fixedTime)
	t.Logf("BDP: %.1f MB/s (%d MiB in %v), fixed 64 KiB window: %.1f MB/s (%d MiB in %v), window grew to %d (connection %d)",
		bdpRate, bdpCount*msgSize>>20, bdpTime.Round(time.Millisecond),
		fixedRate, fixedCount*msgSize>>20, fixedTime.Round(time.Millisecond), streamWin, connWin)
}
