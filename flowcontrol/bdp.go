package flowcontrol

import (
	"sync/atomic"
	"time"
)

// BDP estimation tunables. The estimator measures how many bytes arrive
// during one PING round trip; that sample approximates the
// bandwidth-delay product of the path, the window needed to keep it full.
const (
	// bdpGrowThreshold is the fraction of the current window a sample must
	// reach before the window grows: a sample well below the window means
	// the sender is not limited by it.
	bdpGrowThreshold = 0.66

	// bdpGrowFactor multiplies the sample to give the new window, leaving
	// headroom so the next round can show whether even more helps.
	bdpGrowFactor = 2

	// rttNewWeight is the weight of a new round-trip sample in the smoothed
	// RTT (an exponentially weighted moving average, as TCP's SRTT in
	// RFC 6298 §2 with alpha = 1/8).
	rttNewWeight = 0.125

	// minRTT stands in for a measured round trip of zero (a coarse clock),
	// so bandwidth stays finite.
	minRTT = time.Microsecond
)

// BDPPing is the payload of the PING frames the estimator uses. The reader
// tells a BDP ping ack from other PING acks by this payload (RFC 9113 §6.7:
// the ack echoes the payload).
var BDPPing = [8]byte{'h', '2', 'r', 'p', 'c', 'b', 'd', 'p'}

// BDPPingData returns the payload of BDP pings; it equals BDPPing.
func BDPPingData() [8]byte { return BDPPing }

// now is the estimator's clock; tests replace it.
var now = time.Now

// bdpRoundStartBytes is how many DATA bytes must arrive, since the last
// round ended, before a new round (a BDP PING) starts. Small RPCs, which
// can never fill a window, then cost no PING and ack per call on each
// side, while a bulk transfer starts a round with its first full frame.
// A package variable so tests can start rounds at once.
var bdpRoundStartBytes uint64 = 16 << 10

// BDPEstimator grows the receive windows from bandwidth-delay product
// measurements. While DATA arrives, it asks for a PING with the BDPPing
// payload, counts the bytes received until the ack, and estimates bandwidth
// from that sample and the round trip. When the sample nears the current
// window and bandwidth is at its peak, the window is too small to keep the
// path full: the estimator doubles the sample (up to MaxBDPWindow) and
// reports the new window through its update callback.
//
// The reader goroutine calls Add and Calculate; the writer goroutine calls
// Timesnap when it writes the ping. Only the send time is shared between
// them, and it is stored atomically.
type BDPEstimator struct {
	// window is the current estimate: the window last reported.
	window uint32
	// sample counts bytes received since the outstanding ping was asked for.
	sample uint64
	// pinging is true while a BDP ping is outstanding.
	pinging bool
	// idle counts bytes received between rounds, toward
	// bdpRoundStartBytes.
	idle uint64
	// sentAt holds the UnixNano time the ping was written, 0 until then.
	sentAt atomic.Int64
	// rtt is the smoothed round trip in seconds, 0 before the first sample.
	rtt float64
	// peakBW is the highest bandwidth seen, in bytes per second.
	peakBW float64
	update func(newWindow uint32)
}

// NewBDPEstimator returns an estimator for a connection whose receive
// window starts at initialWindow. update is called, on the goroutine that
// calls Calculate, with each larger window; it must not be nil.
func NewBDPEstimator(initialWindow uint32, update func(newWindow uint32)) *BDPEstimator {
	return &BDPEstimator{window: initialWindow, update: update}
}

// Add records that n bytes of DATA arrived. It returns true when the caller
// must send a PING with the BDPPing payload now: that happens once per
// round, when no BDP ping is outstanding and bdpRoundStartBytes arrived
// since the last round. Once the window reached
// MaxBDPWindow it never asks for a ping.
func (b *BDPEstimator) Add(n uint32) bool {
	if b.window >= MaxBDPWindow {
		return false
	}
	if !b.pinging {
		b.idle += uint64(n)
		if b.idle < bdpRoundStartBytes {
			return false
		}
		b.idle = 0
		// Bytes that arrived before the ping leaves do not belong to its
		// round trip; the sample starts empty.
		b.pinging = true
		b.sample = 0
		b.sentAt.Store(0)
		return true
	}
	b.sample += uint64(n)
	return false
}

// Timesnap records that a PING with payload d is being written now. Pings
// other than BDP pings are ignored. Safe to call from a goroutine other
// than the one calling Add and Calculate.
func (b *BDPEstimator) Timesnap(d [8]byte) {
	if d != BDPPing {
		return
	}
	b.sentAt.Store(now().UnixNano())
}

// Calculate handles the ack of a PING with payload d: for a BDP ping it
// closes the round, updates the RTT and bandwidth estimates and, when the
// window should grow, calls update with the new window. Acks of other pings
// are ignored.
func (b *BDPEstimator) Calculate(d [8]byte) {
	if d != BDPPing || !b.pinging {
		return
	}
	b.pinging = false
	sent := b.sentAt.Load()
	if sent == 0 {
		// The ping was never written; there is no round trip to measure.
		return
	}
	rtt := max(time.Duration(now().UnixNano()-sent), minRTT).Seconds()
	if b.rtt == 0 {
		b.rtt = rtt
	} else {
		b.rtt += (rtt - b.rtt) * rttNewWeight
	}
	bw := float64(b.sample) / b.rtt
	atPeak := bw >= b.peakBW
	if atPeak {
		b.peakBW = bw
	}
	if !atPeak || float64(b.sample) < bdpGrowThreshold*float64(b.window) {
		return
	}
	grown := uint32(min(b.sample*bdpGrowFactor, uint64(MaxBDPWindow)))
	if grown <= b.window {
		return
	}
	b.window = grown
	b.update(grown)
}
