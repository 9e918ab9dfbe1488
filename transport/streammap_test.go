package transport

import (
	"maps"
	"testing"
)

func TestStreamMap(t *testing.T) {
	var m streamMap
	ss := make([]stream, 8)
	want := map[uint32]*stream{}
	check := func(when string) {
		t.Helper()
		if m.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", when, m.len(), len(want))
		}
		got := maps.Collect(m.all())
		if !maps.Equal(got, want) {
			t.Fatalf("%s: all() = %v, want %v", when, got, want)
		}
		for id := uint32(0); id < 20; id++ {
			if g := m.get(id); g != want[id] {
				t.Fatalf("%s: get(%d) = %p, want %p", when, id, g, want[id])
			}
		}
	}
	check("empty")

	// One stream at a time: no map is ever made.
	for i := range 3 {
		id := uint32(2*i + 1)
		m.set(id, &ss[i])
		want[id] = &ss[i]
		check("one stream")
		m.delete(id)
		delete(want, id)
		check("after delete")
	}
	if m.more != nil {
		t.Fatal("a map was made for streams that never overlapped")
	}

	// Overlapping streams.
	for i, id := range []uint32{7, 9, 11, 13} {
		m.set(id, &ss[i])
		want[id] = &ss[i]
		check("overlapping")
	}
	m.set(9, &ss[5]) // replace one in the map
	want[9] = &ss[5]
	m.set(7, &ss[6]) // and the one in the slot
	want[7] = &ss[6]
	check("replaced")
	m.delete(7) // the slot empties
	delete(want, 7)
	check("slot emptied")
	m.set(15, &ss[7]) // takes the slot
	want[15] = &ss[7]
	check("slot reused")
	m.set(9, &ss[0]) // an id in the map stays there, not also in the slot
	want[9] = &ss[0]
	m.delete(15)
	delete(want, 15)
	m.set(9, &ss[1])
	want[9] = &ss[1]
	check("no duplicates")
	m.delete(0) // no stream has id 0
	m.delete(99)
	check("absent deletes")
	for id := range want {
		m.delete(id)
		delete(want, id)
	}
	check("all deleted")
}
