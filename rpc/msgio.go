package rpc

import (
	"io"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/transport"
)

// errEOF is the clean end of a stream's messages.
var errEOF = io.EOF

// sendMsg encodes m (prefix and payload in pooled buffers) and hands it to
// write, which queues it for the connection's writer; the buffers go back
// to the pool once written.
func sendMsg(c codec.Codec, comp codec.Compressor, m any, maxSend int, write func(prefix, data []byte, opts transport.WriteOptions) error) error {
	prefix, data, release, err := codec.Encode(c, comp, m, maxSend)
	if err != nil {
		return err
	}
	if err := write(prefix, data, transport.WriteOptions{OnDone: release}); err != nil {
		// Nothing was queued: the buffers are ours again.
		release()
		return err
	}
	return nil
}

// msgReader reads the messages of one stream.
type msgReader struct {
	p codec.Parser
}

func (r *msgReader) init(src io.Reader) { r.p.Reset(src) }

// recv reads one message into m (m nil: read and drop it). It returns
// errEOF at a clean end of the stream.
func (r *msgReader) recv(c codec.Codec, comp codec.Compressor, m any, maxRecv int) error {
	data, release, err := r.p.ReadMessage(maxRecv, comp)
	if err != nil {
		return err
	}
	defer release()
	if m == nil {
		return nil
	}
	return codec.Decode(c, data, m)
}
