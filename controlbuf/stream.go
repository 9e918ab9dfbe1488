package controlbuf

import "github.com/h2rpc/h2rpc/flowcontrol"

// streamState is where a stream stands in loopy's scheduling.
type streamState uint8

const (
	// stateNew: a client stream whose opening HEADERS loopy has not seen.
	stateNew streamState = iota
	// stateHeld: a client stream whose opening HEADERS waits for the peer's
	// SETTINGS_MAX_CONCURRENT_STREAMS to admit it; later items queue
	// behind it.
	stateHeld
	// stateEmpty: open, nothing queued.
	stateEmpty
	// stateActive: something queued that can be written now; the stream
	// is on the round-robin list.
	stateActive
	// stateWaitingQuota: the next item is data and the stream's send
	// window is used up; a stream WINDOW_UPDATE or SETTINGS brings it back.
	stateWaitingQuota
	// stateClosed: cleaned up; items that still arrive are dropped.
	stateClosed
)

// Stream is loopy's view of one stream: its queued items, its send window
// and its place in the round-robin. The transport creates it and hands it
// to loopy with the stream's first item; from then on only the loopy
// goroutine touches it.
type Stream struct {
	id    uint32 // 0 until loopy assigns it on a client
	state streamState
	items queue[Item] // HeaderFrame and DataFrame, in the order put
	// sent is how many bytes of the DataFrame at the head of items were
	// already written (Prefix, then Data).
	sent int
	out  flowcontrol.StreamOut
	wq   *flowcontrol.WriteQuota
	// window holds the stream's receive window refunds not yet written
	// (Buffer.AddStreamWindow); producers touch it, atomically.
	window pendingWindow
	// peerWindow holds the peer's WINDOW_UPDATEs for the stream not yet
	// applied (Buffer.AddPeerStreamWindow); the reader adds, atomically.
	peerWindow peerWindow

	// prev and next link the stream into loopy's active list.
	prev, next *Stream
}

// NewStream returns a client stream. Its id is assigned by loopy when it
// writes the opening HeaderFrame (the one with an Opener). wq, if
// non-nil, is replenished with every DATA byte loopy writes.
func NewStream(wq *flowcontrol.WriteQuota) *Stream {
	s := &Stream{wq: wq}
	s.window.due = windowUpdateDue{w: &s.window, s: s}
	s.peerWindow.due = peerWindowDue{w: &s.peerWindow, s: s}
	return s
}

// NewServerStream returns a stream the peer opened with id; it is handed to
// loopy with a RegisterStream item. wq is as for NewStream.
func NewServerStream(id uint32, wq *flowcontrol.WriteQuota) *Stream {
	s := &Stream{id: id, wq: wq}
	s.window.due = windowUpdateDue{w: &s.window, s: s}
	s.peerWindow.due = peerWindowDue{w: &s.peerWindow, s: s}
	return s
}

// Init makes s, a Stream the transport keeps inside its own stream
// struct rather than allocating, what NewStream(wq) returns (id 0) or
// NewServerStream(id, wq) returns. It must be called before s is handed
// to loopy, and never after.
func (s *Stream) Init(id uint32, wq *flowcontrol.WriteQuota) {
	s.id, s.wq = id, wq
	s.window.due = windowUpdateDue{w: &s.window, s: s}
	s.peerWindow.due = peerWindowDue{w: &s.peerWindow, s: s}
}

// streamList is an intrusive doubly linked list of streams (loopy's
// round-robin of active streams): adding and removing allocate nothing.
type streamList struct {
	head, tail *Stream
}

func (l *streamList) pushBack(s *Stream) {
	s.next = nil
	s.prev = l.tail
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *streamList) remove(s *Stream) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}
