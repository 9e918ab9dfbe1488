package transport

import (
	"sync"
)

// recvChunkSize is the size of the pooled chunks that hold received DATA
// bytes. Payloads are packed end to end, so a stream fed one-byte DATA
// frames holds about as much memory as it has unread bytes, not a chunk
// per frame.
const recvChunkSize = 16 << 10

// recvChunk is one pooled chunk. The pool holds the *recvChunk itself, so
// taking a chunk and giving it back allocate nothing.
type recvChunk struct{ b []byte }

var chunkPool = sync.Pool{New: func() any {
	return &recvChunk{b: make([]byte, 0, recvChunkSize)}
}}

func getChunk() *recvChunk {
	c := chunkPool.Get().(*recvChunk)
	c.b = c.b[:0]
	return c
}

func putChunk(c *recvChunk) { chunkPool.Put(c) }

// recvBuffer holds the DATA bytes of one stream until the application reads
// them. The reader goroutine appends; one application goroutine reads.
// It must not be copied after init.
type recvBuffer struct {
	mu     sync.Mutex
	cond   sync.Cond    // on mu; signalled when bytes or the end arrive
	chunks []*recvChunk // chunks[0].b[off:] is the next unread byte
	inline [2]*recvChunk
	off    int
	unread int   // bytes not yet read
	held   int   // bytes of memory held by chunks
	err    error // once set, no more bytes arrive; returned after the unread bytes

	// post is the rest of a reader's buffer waiting in readDirect: while
	// it is set nothing is unread, and arriving bytes are copied into it
	// rather than into chunks, until it is full.
	post []byte
}

func (r *recvBuffer) init() {
	r.cond.L = &r.mu
	// A message of a stream usually fits one or two chunks: their list
	// lives in the buffer itself until more are needed.
	r.chunks = r.inline[:0]
}

// write copies p in: into a buffer posted by readDirect first, then
// packed after the bytes already held. It returns how many bytes went
// into the posted buffer (they are consumed: the caller refunds them to
// flow control) and false if the buffer is already closed (the bytes are
// dropped).
func (r *recvBuffer) write(p []byte) (direct int, ok bool) {
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return 0, false
	}
	if len(r.post) > 0 {
		direct = copy(r.post, p)
		r.post = r.post[direct:]
		p = p[direct:]
		if len(r.post) == 0 {
			r.cond.Signal()
		}
		if len(p) == 0 {
			r.mu.Unlock()
			return direct, true
		}
	}
	r.unread += len(p)
	for len(p) > 0 {
		n := len(r.chunks)
		if n == 0 || len(r.chunks[n-1].b) == recvChunkSize {
			r.chunks = append(r.chunks, getChunk())
			r.held += recvChunkSize
			n++
		}
		last := r.chunks[n-1]
		k := copy(last.b[len(last.b):recvChunkSize], p)
		last.b = last.b[:len(last.b)+k]
		p = p[k:]
	}
	r.cond.Signal()
	r.mu.Unlock()
	return direct, true
}

// readDirect fills p: first with the unread bytes, then with bytes as they
// arrive, which the reader goroutine copies straight into p (see write).
// A large message thus takes one copy from the connection's read buffer
// to its final place, and the reading goroutine wakes once, when p is
// full. It returns how many bytes it copied from the chunks (the caller
// refunds those; write reports the others) and the close error if the
// buffer closed before p was full.
func (r *recvBuffer) readDirect(p []byte) (fromChunks int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fromChunks, _, _ = r.readLocked(p)
	if fromChunks == len(p) {
		return fromChunks, nil
	}
	r.post = p[fromChunks:]
	for len(r.post) > 0 && r.err == nil {
		r.cond.Wait()
	}
	if len(r.post) > 0 {
		// Closed first: write must not touch p once we return.
		r.post = nil
		return fromChunks, r.err
	}
	r.post = nil
	return fromChunks, nil
}

// close records that no more bytes will come; readers get err once the
// unread bytes are consumed. The first error wins.
func (r *recvBuffer) close(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	if r.unread == 0 {
		r.releaseLocked()
	}
	r.cond.Signal()
	r.mu.Unlock()
}

// abort closes the buffer and drops unread bytes, releasing their memory.
// It returns how many unread bytes were dropped.
func (r *recvBuffer) abort(err error) int {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	dropped := r.unread
	r.releaseLocked()
	r.unread = 0
	r.cond.Signal()
	r.mu.Unlock()
	return dropped
}

// read copies unread bytes into p. It returns (0, nil, false) when nothing
// is there yet, and the close error once everything was read.
func (r *recvBuffer) read(p []byte) (n int, err error, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readLocked(p)
}

// readWait is read that waits until bytes or the end arrive; p must not
// be empty.
func (r *recvBuffer) readWait(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if n, err, ok := r.readLocked(p); ok {
			return n, err
		}
		r.cond.Wait()
	}
}

func (r *recvBuffer) readLocked(p []byte) (n int, err error, ok bool) {
	for n < len(p) && r.unread > 0 {
		c := r.chunks[0]
		k := copy(p[n:], c.b[r.off:])
		n += k
		r.off += k
		r.unread -= k
		// The last chunk stays while it may still be filled.
		if r.off == len(c.b) && (len(r.chunks) > 1 || len(c.b) == recvChunkSize) {
			putChunk(c)
			r.chunks[0] = nil
			r.chunks = r.chunks[1:]
			r.off = 0
			r.held -= recvChunkSize
		}
	}
	if r.err != nil && r.unread == 0 {
		r.releaseLocked()
	}
	if n > 0 {
		return n, nil, true
	}
	if r.err != nil {
		return 0, r.err, true
	}
	return 0, nil, false
}

// releaseLocked returns the chunks to the pool once the buffer is closed
// and everything was read: the last chunk, kept for refilling, would
// otherwise be garbage (16 KiB per stream). Caller holds r.mu.
func (r *recvBuffer) releaseLocked() {
	for i, c := range r.chunks {
		putChunk(c)
		r.chunks[i] = nil
	}
	r.chunks, r.off, r.held = r.inline[:0], 0, 0
}

// stats reports unread bytes and memory held, for tests and metrics.
func (r *recvBuffer) stats() (unread, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unread, r.held
}
