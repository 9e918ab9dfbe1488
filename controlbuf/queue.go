package controlbuf

// queueShrinkCap is the capacity above which an emptied queue gives its
// backing array back to the garbage collector, so a burst does not pin
// memory on an idle connection or stream.
const queueShrinkCap = 256

// queueInline is how many elements a queue holds in its own storage
// before it needs a backing array: a unary stream queues at most three
// items (headers, data, trailers), so its queue allocates nothing.
const queueInline = 4

// queue is a FIFO ring over a slice. Push allocates only when the ring is
// full (the backing array then doubles), so a queue in steady state
// allocates nothing. The zero value is an empty queue. The ring starts in
// the queue's inline array, so a queue must not be copied once used.
type queue[T any] struct {
	buf    []T
	head   int // index of the first element
	n      int // number of elements
	inline [queueInline]T
}

func (q *queue[T]) len() int { return q.n }

func (q *queue[T]) push(v T) {
	if q.n == len(q.buf) {
		q.grow()
	}
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = v
	q.n++
}

// peek returns the first element; the queue must not be empty.
func (q *queue[T]) peek() T { return q.buf[q.head] }

// pop removes and returns the first element; the queue must not be empty.
func (q *queue[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero // let the garbage collector have it
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > queueShrinkCap {
			q.buf = nil
		}
	}
	return v
}

// clear empties the queue, handing every element to f (if non-nil) in
// order.
func (q *queue[T]) clear(f func(T)) {
	for q.n > 0 {
		v := q.pop()
		if f != nil {
			f(v)
		}
	}
}

func (q *queue[T]) grow() {
	if q.buf == nil {
		q.buf = q.inline[:]
		return
	}
	size := 2 * len(q.buf)
	buf := make([]T, size)
	// Unroll the ring into the front of the new array.
	k := copy(buf, q.buf[q.head:])
	copy(buf[k:], q.buf[:q.head])
	clear(q.buf) // the inline array must not keep the elements alive
	q.buf = buf
	q.head = 0
}
