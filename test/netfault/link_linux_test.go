package netfault

import (
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Link limits: packets wait in a bounded queue; a link whose queue is full
// drops the packet (drop tail), as a router does.
const (
	maxPacket       = 65536 // bigger than any MTU we set
	linkQueuePkts   = 16384 // packets in flight or queued, per direction
	defaultQueueLen = 1 << 20
)

// Link is the simulated wire between the client and server namespaces: a
// relay moving IP packets between their TUN devices. Each direction
// applies, in order: the partition (drop everything), random loss, the
// rate limit (a serialising token bucket with a bounded queue, drop tail
// when full) and the one-way delay. All settings change at run time.
type Link struct {
	mu         sync.Mutex
	delay      time.Duration // one way
	loss       float64       // probability of dropping a packet
	rate       float64       // bytes per second; 0 means unlimited
	queueBytes int           // bytes the rate limiter may queue
	partition  bool
	rng        *rand.Rand

	dirs [2]*direction
	wg   sync.WaitGroup
}

// direction is one way of the link.
type direction struct {
	l        *Link
	src, dst *os.File
	txEnd    time.Time // when the rate limiter finishes the last packet; guarded by l.mu
	q        chan packet
	stats    linkStats
}

// linkStats counts what one direction did.
type linkStats struct {
	sent, lost, dropped, cut, bytes atomic.Int64
}

type packet struct {
	due time.Time
	b   []byte
}

var pktPool = sync.Pool{New: func() any { b := make([]byte, maxPacket); return &b }}

// newLink relays between the TUN devices a (client side) and b (server
// side) until Close. seed makes the loss pattern repeatable.
func newLink(a, b *os.File, seed uint64) *Link {
	l := &Link{queueBytes: defaultQueueLen, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	l.dirs[0] = &direction{l: l, src: a, dst: b, q: make(chan packet, linkQueuePkts)}
	l.dirs[1] = &direction{l: l, src: b, dst: a, q: make(chan packet, linkQueuePkts)}
	for _, d := range l.dirs {
		l.wg.Add(2)
		go d.read()
		go d.deliver()
	}
	return l
}

// SetDelay sets the one-way delay of both directions (RTT/2).
func (l *Link) SetDelay(d time.Duration) {
	l.mu.Lock()
	l.delay = d
	l.mu.Unlock()
}

// SetLoss sets the probability that a packet is lost, in each direction.
func (l *Link) SetLoss(p float64) {
	l.mu.Lock()
	l.loss = p
	l.mu.Unlock()
}

// SetRate limits each direction to bytesPerSec (0: unlimited), queueing
// at most queueBytes behind the limiter (0: 1 MiB).
func (l *Link) SetRate(bytesPerSec float64, queueBytes int) {
	if queueBytes <= 0 {
		queueBytes = defaultQueueLen
	}
	l.mu.Lock()
	l.rate, l.queueBytes = bytesPerSec, queueBytes
	l.mu.Unlock()
}

// Partition cuts the link (on) or restores it (off). While cut, every
// packet is dropped, also those already on the wire.
func (l *Link) Partition(on bool) {
	l.mu.Lock()
	l.partition = on
	l.mu.Unlock()
}

func (l *Link) partitioned() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.partition
}

// wait waits for the relay to stop: the caller closes the TUN files
// first, which ends the readers, and the deliverers follow.
func (l *Link) wait() { l.wg.Wait() }

// stats reports, for client→server (0) and server→client (1), the
// packets delivered, lost at random, dropped by the full queue and cut
// by the partition.
func (l *Link) stats(i int) (sent, lost, dropped, cut, bytes int64) {
	s := &l.dirs[i].stats
	return s.sent.Load(), s.lost.Load(), s.dropped.Load(), s.cut.Load(), s.bytes.Load()
}

// read takes packets from src and schedules them.
func (d *direction) read() {
	defer d.l.wg.Done()
	defer close(d.q)
	for {
		bp := pktPool.Get().(*[]byte)
		n, err := d.src.Read(*bp)
		if err != nil {
			pktPool.Put(bp)
			return
		}
		due, ok := d.admit(n)
		if !ok {
			pktPool.Put(bp)
			continue
		}
		select {
		case d.q <- packet{due: due, b: (*bp)[:n]}:
		default:
			d.stats.dropped.Add(1)
			pktPool.Put(bp)
		}
	}
}

// admit applies partition, loss and rate to a packet of n bytes arriving
// now, and says when it is due at the far end.
func (d *direction) admit(n int) (time.Time, bool) {
	l := d.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partition {
		d.stats.cut.Add(1)
		return time.Time{}, false
	}
	if l.loss > 0 && l.rng.Float64() < l.loss {
		d.stats.lost.Add(1)
		return time.Time{}, false
	}
	now := time.Now()
	start := now
	if l.rate > 0 {
		if d.txEnd.After(now) {
			if backlog := d.txEnd.Sub(now).Seconds() * l.rate; backlog+float64(n) > float64(l.queueBytes) {
				d.stats.dropped.Add(1)
				return time.Time{}, false
			}
			start = d.txEnd
		}
		d.txEnd = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
		start = d.txEnd
	}
	return start.Add(l.delay), true
}

// deliver writes scheduled packets to dst when they are due.
func (d *direction) deliver() {
	defer d.l.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for p := range d.q {
		if wait := time.Until(p.due); wait > 0 {
			t.Reset(wait)
			<-t.C
		}
		if d.l.partitioned() {
			d.stats.cut.Add(1)
		} else if _, err := d.dst.Write(p.b); err == nil {
			d.stats.sent.Add(1)
			d.stats.bytes.Add(int64(len(p.b)))
		}
		b := p.b[:cap(p.b)]
		pktPool.Put(&b)
	}
}
