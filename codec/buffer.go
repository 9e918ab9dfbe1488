package codec

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Pooled message buffers. Buffers come in power-of-two size classes from
// minPooledSize to maxPooledSize, one sync.Pool per class; larger ones are
// allocated for the message and left to the garbage collector, so the
// pools never hold more than a few buffers of at most maxPooledSize each
// (and sync.Pool drops idle ones at the next collections).
const (
	minPooledShift = 10 // 1 KiB
	maxPooledShift = 22 // 4 MiB, the default receive limit
	minPooledSize  = 1 << minPooledShift
	maxPooledSize  = 1 << maxPooledShift
	numClasses     = maxPooledShift - minPooledShift + 1
)

var (
	// classPools[i] holds *buffer whose b has capacity 1<<(i+minPooledShift).
	classPools [numClasses]sync.Pool
	// barePool holds *buffer without memory, for messages whose bytes come
	// from elsewhere (a codec's Marshal, a buffer too large to pool).
	// Memory attached to a bare buffer with attach is never pooled.
	barePool sync.Pool
)

// testHookGetBuffer, when set by a test, sees the size of every buffer
// requested. It is not safe to change while buffers are in use.
var testHookGetBuffer func(n int)

// buffer is a byte slice, the prefix of the message it holds, and the
// bookkeeping to give both back. Exactly one owner uses it at a time: it
// is taken with getBuffer and given back with release.
type buffer struct {
	b      []byte
	prefix [PrefixLen]byte
	inUse  atomic.Bool // catches a second release
	// foreign marks b as memory h2rpc does not own (a codec's Marshal
	// result): release drops it instead of pooling it, whatever its size.
	foreign bool
	free    func() // b.release, bound once so handing it out allocates nothing
}

func newBuffer(b []byte) *buffer {
	buf := &buffer{b: b}
	buf.free = buf.release
	return buf
}

// classOf returns the index of the smallest class that holds n bytes;
// n must be at most maxPooledSize.
func classOf(n int) int {
	if n <= minPooledSize {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledShift
}

// getBuffer returns a buffer with len 0 and a capacity of at least n.
func getBuffer(n int) *buffer {
	if testHookGetBuffer != nil {
		testHookGetBuffer(n)
	}
	var buf *buffer
	if n <= maxPooledSize {
		c := classOf(n)
		if v, ok := classPools[c].Get().(*buffer); ok {
			buf = v
		} else {
			buf = newBuffer(make([]byte, 0, 1<<(c+minPooledShift)))
		}
	} else {
		buf = getBare()
		buf.b = make([]byte, 0, n)
	}
	buf.b = buf.b[:0]
	buf.inUse.Store(true)
	return buf
}

// attach makes b, memory h2rpc does not own, the contents of buf, a bare
// buffer. release never pools it.
func (buf *buffer) attach(b []byte) {
	buf.b = b
	buf.foreign = true
}

// getBare returns a buffer without memory, for bytes the caller attaches.
func getBare() *buffer {
	buf, ok := barePool.Get().(*buffer)
	if !ok {
		buf = newBuffer(nil)
	}
	buf.inUse.Store(true)
	return buf
}

// release gives buf back. Memory h2rpc allocated whose capacity is
// exactly a class size goes to that class's pool; foreign memory (see
// attach) and other sizes are dropped. A second release of the same use panics: it would hand the
// memory to two owners.
func (buf *buffer) release() {
	if !buf.inUse.CompareAndSwap(true, false) {
		panic("codec: message buffer released twice")
	}
	if c := cap(buf.b); !buf.foreign && c >= minPooledSize && c <= maxPooledSize && c&(c-1) == 0 {
		classPools[bits.Len(uint(c))-1-minPooledShift].Put(buf)
		return
	}
	buf.b = nil
	buf.foreign = false
	barePool.Put(buf)
}

// grow makes room for at least n bytes in total, keeping the contents.
// The old memory goes back to its pool.
func (buf *buffer) grow(n int) {
	if n <= cap(buf.b) {
		return
	}
	next := getBuffer(n)
	next.b = append(next.b, buf.b...)
	buf.b, next.b = next.b, buf.b
	buf.foreign, next.foreign = false, buf.foreign
	next.release()
}

// Write appends p, growing to the next size class when full. It lets a
// Compressor write straight into pooled memory.
func (buf *buffer) Write(p []byte) (int, error) {
	if need := len(buf.b) + len(p); need > cap(buf.b) {
		buf.grow(max(need, 2*cap(buf.b)))
	}
	buf.b = append(buf.b, p...)
	return len(p), nil
}
