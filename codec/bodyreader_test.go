package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// bodyReader is a BodyReader over a byte stream that records how each
// body was read and grants reservations up to budget bytes.
type bodyReader struct {
	r        io.Reader
	budget   int
	reserved int
	calls    []string
	failWith error // ReadBody fails with it after copying what it can
}

func (b *bodyReader) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bodyReader) ReserveBody(n int) bool {
	if n > b.budget {
		b.calls = append(b.calls, fmt.Sprintf("refuse %d", n))
		return false
	}
	b.budget -= n
	b.reserved = n
	b.calls = append(b.calls, fmt.Sprintf("reserve %d", n))
	return true
}

func (b *bodyReader) ReadBody(p []byte) error {
	b.calls = append(b.calls, fmt.Sprintf("body %d", len(p)))
	b.budget += b.reserved
	b.reserved = 0
	if b.failWith != nil {
		return b.failWith
	}
	_, err := io.ReadFull(b.r, p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func TestParserBodyReader(t *testing.T) {
	small := bytes.Repeat([]byte{'s'}, minDirectBody-1)
	medium := bytes.Repeat([]byte{'m'}, eagerReadSize)
	large := bytes.Repeat([]byte{'l'}, eagerReadSize+1)
	huge := bytes.Repeat([]byte{'h'}, 3*eagerReadSize)
	var stream bytes.Buffer
	for _, m := range [][]byte{small, medium, large, huge} {
		stream.Write(frame(0, m))
	}
	sizes := watchBuffers(t)
	br := &bodyReader{r: &stream, budget: 2 * eagerReadSize}
	msgs, err := readAll(NewParser(br), 1<<30, nil)
	if err != io.EOF || len(msgs) != 4 {
		t.Fatalf("read %d messages, then %v", len(msgs), err)
	}
	for i, want := range [][]byte{small, medium, large, huge} {
		if !bytes.Equal(msgs[i], want) {
			t.Errorf("message %d differs", i)
		}
	}
	// A small body is read with Read; a body up to eagerReadSize with
	// ReadBody and no reservation; a larger one is reserved first; one
	// past the budget is refused and read as it arrives.
	want := fmt.Sprint([]string{
		fmt.Sprintf("body %d", len(medium)),
		fmt.Sprintf("reserve %d", len(large)), fmt.Sprintf("body %d", len(large)),
		fmt.Sprintf("refuse %d", len(huge)),
	})
	if got := fmt.Sprint(br.calls); got != want {
		t.Errorf("calls %v, want %v", got, want)
	}
	if br.budget != 2*eagerReadSize {
		t.Errorf("budget %d at the end, want all of it back", br.budget)
	}
	// Read through ReadBody, bodies get one buffer of their exact size;
	// the refused one starts at eagerReadSize and grows.
	wantSizes := fmt.Sprint([]int{len(small), len(medium), len(large), eagerReadSize, 2 * eagerReadSize, len(huge)})
	if got := fmt.Sprint(*sizes); got != wantSizes {
		t.Errorf("buffers %v, want %v", got, wantSizes)
	}
}

func TestParserBodyReaderErrors(t *testing.T) {
	reset := errors.New("stream reset")
	for _, tc := range []struct {
		name     string
		failWith error
		check    func(error) bool
	}{
		{"truncated", io.ErrUnexpectedEOF, func(err error) bool {
			return status.Code(err) == codes.Internal && errors.Is(err, io.ErrUnexpectedEOF)
		}},
		{"reader error", reset, func(err error) bool { return err == reset }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := &bodyReader{r: bytes.NewReader(frame(0, make([]byte, 5000))), failWith: tc.failWith}
			_, _, err := NewParser(br).ReadMessage(1<<20, nil)
			if !tc.check(err) {
				t.Fatalf("error %v", err)
			}
		})
	}
}
