package transport

import (
	"context"
	"net"
	"sync"
	"time"
)

// latencyConn delays the bytes written to it by a fixed one-way delay, as
// a long path would: Write queues the bytes stamped with their delivery
// time and returns at once, and a goroutine of the conn hands them to the
// real connection, in order, once their time has come. Reads are not
// delayed: wrapping both ends of a connection gives the delay each way.
//
// There is no bandwidth limit beyond the real connection's; the sender's
// flow-control window bounds what can be queued.
type latencyConn struct {
	net.Conn
	delay time.Duration

	mu     sync.Mutex
	queue  []latencyChunk // guarded by mu
	closed bool           // guarded by mu: Close was called
	err    error          // guarded by mu: the real connection failed

	wake chan struct{} // one token: the queue changed or Close was called
	done chan struct{} // closed when the delivery goroutine is gone
}

type latencyChunk struct {
	at time.Time
	b  []byte
}

// latencyCloseGrace bounds how long Close waits for queued bytes to reach
// a peer that no longer reads.
const latencyCloseGrace = time.Second

func newLatencyConn(c net.Conn, delay time.Duration) *latencyConn {
	lc := &latencyConn{
		Conn:  c,
		delay: delay,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	go lc.deliver()
	return lc
}

func (c *latencyConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Write queues a copy of p for delivery after the delay.
func (c *latencyConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.err != nil {
		return 0, c.err
	}
	c.queue = append(c.queue, latencyChunk{at: time.Now().Add(c.delay), b: append([]byte(nil), p...)})
	c.signal()
	return len(p), nil
}

// Close delivers what is queued (as a socket's send buffer would, within
// latencyCloseGrace), then closes the real connection. It returns once the
// delivery goroutine is gone.
func (c *latencyConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.Conn.SetWriteDeadline(time.Now().Add(c.delay + latencyCloseGrace))
	c.signal()
	<-c.done
	return nil
}

// deliver writes queued chunks to the real connection when they are due;
// chunks due together leave in one writev.
func (c *latencyConn) deliver() {
	defer close(c.done)
	defer c.Conn.Close()
	var bufs net.Buffers
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			<-c.wake
			continue
		}
		first := c.queue[0].at
		c.mu.Unlock()
		if d := time.Until(first); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		c.mu.Lock()
		bufs = bufs[:0]
		n := 0
		for n < len(c.queue) && !c.queue[n].at.After(now) {
			bufs = append(bufs, c.queue[n].b)
			c.queue[n] = latencyChunk{}
			n++
		}
		c.queue = c.queue[n:]
		c.mu.Unlock()
		wb := bufs // WriteTo consumes its receiver
		if _, err := wb.WriteTo(c.Conn); err != nil {
			c.mu.Lock()
			c.err = err
			c.queue = nil
			c.mu.Unlock()
			return
		}
	}
}

// latencyDialer returns a ConnectOptions.Dialer whose connections delay
// the bytes they write by delay.
func latencyDialer(delay time.Duration) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return newLatencyConn(c, delay), nil
	}
}
