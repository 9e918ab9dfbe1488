package flowcontrol

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzInFlow drives an InFlow with random OnData, OnRead, RequestMessage
// and SetLimit calls and checks it against a model of the peer: the
// peer's window is the initial limit plus every increment returned minus
// every byte sent. Each op is five bytes: the op code and a big-endian
// argument.
func FuzzInFlow(f *testing.F) {
	op := func(code byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{code}, n)
	}
	join := func(ops ...[]byte) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o...)
		}
		return b
	}
	f.Add(uint32(DefaultWindowSize), join(op(0, 1000), op(1, 1000), op(2, 1<<20), op(0, 1<<20), op(1, 1<<20)))
	f.Add(uint32(100), join(op(0, 100), op(4, 1), op(1, 30), op(3, 1000), op(0, 1000), op(1, 1000)))
	f.Add(MaxWindowSize, join(op(0, 5), op(2, 0xffffffff), op(3, 0xffffffff), op(4, 10)))
	f.Add(uint32(0), join(op(2, 10), op(0, 10), op(1, 10), op(3, 4)))

	f.Fuzz(func(t *testing.T, limit uint32, ops []byte) {
		fl := NewInFlow(limit)
		var (
			window   = int64(min(limit, MaxWindowSize)) // the peer's view
			buffered int64                              // received, not read
			incs     int64                              // sum of increments returned
			reads    int64                              // sum of bytes read
			granted  int64                              // bound on extra window handed out
		)
		addInc := func(what string, inc uint32) {
			if inc > MaxWindowSize {
				t.Fatalf("%s returned increment %d > MaxWindowSize", what, inc)
			}
			incs += int64(inc)
			window += int64(inc)
		}
		for len(ops) >= 5 {
			code, n := ops[0]%5, binary.BigEndian.Uint32(ops[1:5])
			ops = ops[5:]
			switch code {
			case 0: // the peer sends within its window
				if window > 0 {
					n %= uint32(window) + 1
				} else {
					n = 0
				}
				fallthrough
			case 4: // the peer sends whatever it likes
				err := fl.OnData(n)
				if int64(n) > window {
					if !errors.Is(err, ErrFlowControl) {
						t.Fatalf("OnData(%d) with window %d = %v, want ErrFlowControl", n, window, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("OnData(%d) with window %d = %v", n, window, err)
				}
				window -= int64(n)
				buffered += int64(n)
			case 1: // the application reads
				read := min(int64(n), buffered)
				buffered -= read
				reads += read
				addInc("OnRead", fl.OnRead(n))
			case 2:
				addInc("RequestMessage", fl.RequestMessage(n))
				granted += int64(n)
				if want := min(int64(n), int64(MaxWindowSize)); window < want {
					t.Fatalf("after RequestMessage(%d) window = %d, want at least %d", n, window, want)
				}
			case 3:
				old := fl.Limit()
				addInc("SetLimit", fl.SetLimit(n))
				if l := fl.Limit(); l > old {
					granted += int64(l - old)
				} else if l != old {
					t.Fatalf("SetLimit(%d) lowered the limit from %d to %d", n, old, l)
				}
			}
			if window < 0 || window > int64(MaxWindowSize) {
				t.Fatalf("peer window %d out of [0, %d]", window, MaxWindowSize)
			}
			if incs > reads+granted {
				t.Fatalf("window updates total %d > consumed %d + granted %d", incs, reads, granted)
			}
			if l := fl.Limit(); l > MaxWindowSize {
				t.Fatalf("Limit() = %d > MaxWindowSize", l)
			}
		}
	})
}
