package netfault

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
)

// Lossy link settings of TestLossyDownloadCompletes: 1 % loss each way,
// 50 ms RTT, 200 Mbit/s.
const (
	lossyRTT      = 50 * time.Millisecond
	lossyLoss     = 0.01
	lossyRate     = 200e6 / 8 // bytes per second
	downloadBytes = 64 << 20
	downloadChunk = 64 << 10
	// downloadTimeout bounds the download: generous for 2 busy cores
	// under -race, as CI runs it.
	downloadTimeout = 150 * time.Second
)

// TestLossyDownloadCompletes: 1 % packet loss at 50 ms RTT (and a rate
// cap) still moves a 64 MiB server-streaming download to completion,
// every byte in order.
func TestLossyDownloadCompletes(t *testing.T) {
	e := newEnv(t)
	e.link.SetDelay(lossyRTT / 2)
	e.link.SetLoss(lossyLoss)
	e.link.SetRate(lossyRate, 0)
	e.startServer(serverConfig{})
	c := echov1.NewEchoClient(e.client())
	ctx, cancel := context.WithTimeout(context.Background(), downloadTimeout)
	defer cancel()
	payload := make([]byte, downloadChunk)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	start := time.Now()
	s, err := c.Expand(ctx, &echov1.ExpandRequest{Count: downloadBytes / downloadChunk, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for seq := uint64(0); ; seq++ {
		m, err := s.Recv()
		if err != nil {
			if got != downloadBytes || !errors.Is(err, io.EOF) {
				t.Fatalf("after %d of %d bytes (%v): %v", got, downloadBytes, time.Since(start), err)
			}
			break
		}
		if m.GetSequence() != seq || len(m.GetPayload()) != downloadChunk || m.GetPayload()[downloadChunk-1] != payload[downloadChunk-1] {
			t.Fatalf("message %d: sequence %d, %d bytes", seq, m.GetSequence(), len(m.GetPayload()))
		}
		got += len(m.GetPayload())
	}
	el := time.Since(start)
	sent, lost, dropped, _, _ := e.link.stats(1)
	sentUp, lostUp, _, _, _ := e.link.stats(0)
	t.Logf("64 MiB over %v RTT, %.0f%% loss, %.0f Mbit/s cap, MTU 1500: %v, %.2f MB/s", lossyRTT, lossyLoss*100, lossyRate*8/1e6, el.Round(time.Millisecond), float64(got)/el.Seconds()/1e6)
	t.Logf("link server→client: %d packets delivered, %d lost, %d dropped by the queue; client→server: %d delivered, %d lost", sent, lost, dropped, sentUp, lostUp)
}
