package transport

import "iter"

// streamMap holds a connection's open streams by id. The first stream
// sits in a slot of its own and a map is made only when streams overlap:
// a connection that runs one call at a time (the common case for many
// mostly idle connections) never allocates a map, which would stay
// allocated for the connection's lifetime once its first stream came
// and went. Guarded by the connection's mu.
type streamMap struct {
	id   uint32 // id of the stream in slot; 0 when empty (no stream has id 0)
	slot *stream
	more map[uint32]*stream // nil until two streams are open at once
}

// get returns the stream with id, or nil.
func (m *streamMap) get(id uint32) *stream {
	if id == m.id && id != 0 {
		return m.slot
	}
	return m.more[id]
}

// set adds s under id (or replaces the stream with that id).
func (m *streamMap) set(id uint32, s *stream) {
	if id == m.id {
		m.slot = s
		return
	}
	if m.id == 0 {
		if _, ok := m.more[id]; !ok {
			m.id, m.slot = id, s
			return
		}
	}
	if m.more == nil {
		m.more = make(map[uint32]*stream)
	}
	m.more[id] = s
}

// delete removes the stream with id, if any.
func (m *streamMap) delete(id uint32) {
	if id == m.id && id != 0 {
		m.id, m.slot = 0, nil
		return
	}
	delete(m.more, id)
}

// len returns the number of streams.
func (m *streamMap) len() int {
	n := len(m.more)
	if m.id != 0 {
		n++
	}
	return n
}

// all yields every stream with its id, in no particular order. The map
// must not change during the iteration.
func (m *streamMap) all() iter.Seq2[uint32, *stream] {
	return func(yield func(uint32, *stream) bool) {
		if m.id != 0 && !yield(m.id, m.slot) {
			return
		}
		for id, s := range m.more {
			if !yield(id, s) {
				return
			}
		}
	}
}
