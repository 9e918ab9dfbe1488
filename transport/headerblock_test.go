package transport

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHeaderBlockOverLimitHoldsBoundedMemory decodes a block of about 1
// MiB, far over the list limit but under the hard cap, fragment by
// fragment: it fails only its stream, and the memory held while and after
// it is decoded stays bounded by the limit, not by the block's size.
func TestHeaderBlockOverLimitHoldsBoundedMemory(t *testing.T) {
	const limit = DefaultMaxHeaderListSize
	var enc bytes.Buffer
	e := hpack.NewEncoder(&enc)
	// Indexed fields, which the decoder must add to its dynamic table
	// even past the limit, and fields never indexed, alternately.
	for i, f := range padFields(9000, 128) {
		f.Sensitive = i%2 == 1
		e.WriteField(f)
	}
	block := enc.Bytes()
	if len(block) < 800<<10 || len(block) > minEncodedCap {
		t.Fatalf("test block of %d bytes, want about 1 MiB and under the cap %d", len(block), minEncodedCap)
	}

	hb := newHeaderBlock(limit)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	var held uint64
	hb.start(1, false)
	const frag = 16384
	for off := 0; off < len(block); off += frag {
		end := min(off+frag, len(block))
		done, err := hb.add(block[off:end], end == len(block))
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", end, len(block), err)
		}
		if done != (end == len(block)) {
			t.Fatalf("block done %v after %d of %d bytes", done, end, len(block))
		}
		if off%(128<<10) == 0 {
			h := heap()
			held = max(held, h-min(base, h))
		}
	}
	h := heap()
	held = max(held, h-min(base, h))
	if err := hb.blockError(); !errors.Is(err, errHeaderListTooLarge) {
		t.Errorf("block error %v, want errHeaderListTooLarge", err)
	}
	hb.release()
	// The fields kept are at most the limit's worth (strings and slice),
	// and the HPACK decoder holds its dynamic table and a buffer for a
	// field cut by a frame's end, into which it copies the next frame:
	// a few frames' worth, however large the block.
	const bound = 4*limit + 4*maxReadFrameSize
	t.Logf("%d-byte block over a %d-byte limit: at most %d bytes held", len(block), limit, held)
	if held > bound {
		t.Errorf("%d bytes held while decoding a %d-byte block, want at most %d", held, len(block), bound)
	}
	runtime.KeepAlive(block)
}
