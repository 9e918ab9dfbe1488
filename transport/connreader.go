package transport

import (
	"io"
	"sync"
)

// Read buffering. A connection waits for the peer in a small buffer of its
// own and switches to a large pooled buffer only while data keeps coming
// in bulk: an idle connection holds smallReadSize bytes instead of a
// 32 KiB bufio.Reader, and a busy one still reads many frames per syscall.
const (
	// smallReadSize is the buffer an idle or lightly used connection reads
	// into; a small unary request or response fits in it whole.
	smallReadSize = 512
)

// readBufPools holds one pool of large read buffers per size.
var readBufPools sync.Map // int -> *sync.Pool

func readBufPool(size int) *sync.Pool {
	if p, ok := readBufPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := readBufPools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}})
	return p.(*sync.Pool)
}

// connReader buffers reads from the connection for the reader goroutine;
// it is not safe for concurrent use. The buffer for each read is chosen
// when the previous one is used up: after a read that filled the small
// buffer (more is waiting) the next read goes into a large pooled buffer;
// after a read into the large buffer that returned no more than half the
// small size (the burst is over) the large buffer goes back to the pool.
type connReader struct {
	conn      io.Reader
	pool      *sync.Pool // large buffers of largeSize bytes
	largeSize int
	large     *[]byte // the large buffer while held
	wantLarge bool    // the next read goes into the large buffer
	buf       []byte  // the buffer in use; buf[r:w] is unread
	r, w      int
	err       error // sticky; returned once buffered bytes are consumed
	small     [smallReadSize]byte
}

func newConnReader(conn io.Reader, largeSize int) *connReader {
	largeSize = max(largeSize, smallReadSize)
	cr := &connReader{conn: conn, pool: readBufPool(largeSize), largeSize: largeSize}
	cr.buf = cr.small[:0]
	return cr
}

// fill reads into the buffer once it is empty. It returns false if no
// byte could be read (cr.err says why).
func (cr *connReader) fill() bool {
	if cr.err != nil {
		return false
	}
	if cr.wantLarge {
		if cr.large == nil {
			cr.large = cr.pool.Get().(*[]byte)
		}
		cr.buf = *cr.large
	} else {
		cr.releaseLarge()
		cr.buf = cr.small[:]
	}
	cr.r, cr.w = 0, 0
	for cr.w == 0 && cr.err == nil {
		cr.w, cr.err = cr.conn.Read(cr.buf)
	}
	if cr.large == nil {
		cr.wantLarge = cr.w == len(cr.small)
	} else {
		cr.wantLarge = cr.w > smallReadSize/2
	}
	return cr.w > 0
}

// releaseLarge gives the large buffer back to the pool.
func (cr *connReader) releaseLarge() {
	if cr.large != nil {
		cr.pool.Put(cr.large)
		cr.large = nil
	}
}

// Read reads buffered bytes into p (io.Reader; the server reads the
// client preface with it, frames are read with take, next and readFull).
// A read into an empty buffer that is at least as large as the large
// buffer goes to the connection directly.
func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.r == cr.w {
		if len(p) >= cr.largeSize && cr.err == nil {
			n, err := cr.conn.Read(p)
			cr.err = err
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if !cr.fill() {
			return 0, cr.err
		}
	}
	n := copy(p, cr.buf[cr.r:cr.w])
	cr.r += n
	return n, nil
}

// ReadByte reads one byte.
func (cr *connReader) ReadByte() (byte, error) {
	if cr.r == cr.w && !cr.fill() {
		return 0, cr.err
	}
	b := cr.buf[cr.r]
	cr.r++
	return b, nil
}

// next returns up to max buffered bytes, reading if none are buffered.
// They are valid until the next call on cr.
func (cr *connReader) next(max int) ([]byte, error) {
	if cr.r == cr.w && !cr.fill() {
		return nil, cr.err
	}
	n := min(max, cr.w-cr.r)
	p := cr.buf[cr.r : cr.r+n]
	cr.r += n
	return p, nil
}

// Discard skips n bytes.
func (cr *connReader) Discard(n int) error {
	for n > 0 {
		p, err := cr.next(n)
		if err != nil {
			return err
		}
		n -= len(p)
	}
	return nil
}

// buffered reports how many bytes are buffered and whether the large
// buffer is held, for tests.
func (cr *connReader) buffered() (n int, large bool) { return cr.w - cr.r, cr.large != nil }

// take returns the next n bytes as a slice of the buffer, valid until the
// next call on cr, if they are buffered (reading first if nothing is);
// otherwise it consumes nothing and returns false, and the caller reads
// them with readFull. An error is left for readFull to report.
func (cr *connReader) take(n int) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	if cr.r == cr.w && !cr.fill() {
		return nil, false
	}
	if cr.w-cr.r < n {
		return nil, false
	}
	p := cr.buf[cr.r : cr.r+n : cr.r+n]
	cr.r += n
	return p, true
}

// readFull fills p. Like io.ReadFull, it returns io.EOF if no byte was
// read and io.ErrUnexpectedEOF if the connection ended part way.
func (cr *connReader) readFull(p []byte) error {
	for i := 0; i < len(p); {
		b, err := cr.next(len(p) - i)
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		i += copy(p[i:], b)
	}
	return nil
}
