package rpc

import (
	"bytes"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/codec"
)

// cachedReplyCodec marshals every message to the one encoding it keeps,
// in memory whose capacity is a pool size class, as a cache of encoded
// replies would. It unmarshals as the proto codec does.
type cachedReplyCodec struct{ enc []byte }

func (c *cachedReplyCodec) Name() string                { return "cachedreply" }
func (c *cachedReplyCodec) Marshal(any) ([]byte, error) { return c.enc, nil }
func (c *cachedReplyCodec) Unmarshal(b []byte, v any) error {
	return codec.ProtoCodec{}.Unmarshal(b, v)
}

func TestCodecOwnedEncodingSurvivesManySends(t *testing.T) {
	reply, err := proto.Marshal(wrapperspb.Bytes([]byte("cached reply")))
	if err != nil {
		t.Fatal(err)
	}
	enc := append(make([]byte, 0, 1024), reply...)
	codec.RegisterCodec(&cachedReplyCodec{enc: enc})

	_, addr := startServer(t, &testService{})
	_, c := dial(t, addr)
	ctx := ctxWait(t)
	big := bytes.Repeat([]byte{0xee}, 600) // proto messages in 1 KiB pooled buffers
	const rounds = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for range rounds {
		wg.Add(2)
		go func() {
			defer wg.Done()
			out, err := c.Unary(ctx, wrapperspb.Bytes([]byte("x")), CallContentSubtype("cachedreply"))
			if err == nil && string(out.Value) != "cached reply" {
				t.Errorf("a message arrived as %q", out.Value)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			out, err := c.Unary(ctx, wrapperspb.Bytes(big))
			if err == nil && !bytes.Equal(out.Value, big) {
				t.Errorf("a proto message arrived corrupted")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(enc, reply) {
		t.Fatalf("the codec's cached encoding was overwritten: %x", enc)
	}
}
