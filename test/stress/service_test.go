package stress

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// msg is the one message type of the stress service; rawCodec sends its
// bytes as they are.
type msg struct{ b []byte }

// rawCodec marshals a *msg to its bytes. It copies both ways, so no
// buffer is shared with h2rpc.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return bytes.Clone(v.(*msg).b), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*msg).b = bytes.Clone(data)
	return nil
}
func (rawCodec) Name() string { return "stress" }

func init() { codec.RegisterCodec(rawCodec{}) }

// Payload layout: call id (4 bytes), sequence number (4), control word
// (4), then filler bytes derived from the three. The control word of a
// call's first request says what the handler does.
const hdrLen = 12

// Control word: the low byte is the action, byte 1 an error code, byte 2
// a count of responses (server streaming), byte 3 a size class.
const (
	actNormal = iota
	actError  // return the code in byte 1 at once
	actStall  // block until the call ends
)

func ctlWord(action, code, n, sizeClass uint8) uint32 {
	return uint32(action) | uint32(code)<<8 | uint32(n)<<16 | uint32(sizeClass)<<24
}

// payload makes the seq-th message of call id, size bytes long (at least
// hdrLen).
func payload(id, seq, ctl uint32, size int) []byte {
	size = max(size, hdrLen)
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, id)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ctl)
	x := id*2654435761 ^ seq*40503
	for i := hdrLen; i < size; i++ {
		b[i] = byte(x + uint32(i)*7)
	}
	return b
}

// checkPayload verifies a message of call id with sequence number seq.
func checkPayload(b []byte, id, seq uint32) error {
	if len(b) < hdrLen {
		return fmt.Errorf("message of %d bytes, shorter than its header", len(b))
	}
	gid, gseq := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if gid != id || gseq != seq {
		return fmt.Errorf("message (call %d, seq %d), want (call %d, seq %d)", gid, gseq, id, seq)
	}
	x := id*2654435761 ^ seq*40503
	for i := hdrLen; i < len(b); i++ {
		if b[i] != byte(x+uint32(i)*7) {
			return fmt.Errorf("message (call %d, seq %d) of %d bytes: byte %d corrupted", id, seq, len(b), i)
		}
	}
	return nil
}

// respSize is the size of server-streamed responses of a size class.
func respSize(class uint8, i int) int {
	switch class % 4 {
	case 0:
		return hdrLen + i
	case 1:
		return 1000 + 37*i
	case 2:
		return 20<<10 + 1000*i
	default:
		return 300<<10 + i // a few large responses
	}
}

const serviceName = "stress.v1.Stress"

// act applies the control word of a call's first request.
func act(ctx context.Context, ctl uint32) error {
	switch ctl & 0xff {
	case actError:
		return status.Error(codes.Code((ctl>>8)&0xff), "stress: early error")
	case actStall:
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}

// seenByServer holds the ids of the calls whose first request reached a
// handler in the current run (runs are sequential; each clears it).
var seenByServer sync.Map

// saw records that a handler got the first request b.
func saw(b []byte) {
	if len(b) >= hdrLen {
		seenByServer.Store(binary.BigEndian.Uint32(b), true)
	}
}

func ctlOf(b []byte) uint32 {
	if len(b) < hdrLen {
		return 0
	}
	return binary.BigEndian.Uint32(b[8:])
}

var serviceDesc = rpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []rpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ rpc.UnaryServerInterceptor) (any, error) {
			in := new(msg)
			if err := dec(in); err != nil {
				return nil, err
			}
			saw(in.b)
			if err := act(ctx, ctlOf(in.b)); err != nil {
				return nil, err
			}
			return in, nil // echo
		},
	}},
	Streams: []rpc.StreamDesc{
		{StreamName: "ServerStream", ServerStreams: true, Handler: func(_ any, ss rpc.ServerStream) error {
			in := new(msg)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			saw(in.b)
			ctl := ctlOf(in.b)
			if err := act(ss.Context(), ctl); err != nil {
				return err
			}
			id := binary.BigEndian.Uint32(in.b)
			for i := range int(ctl >> 16 & 0xff) {
				if err := ss.SendMsg(&msg{payload(id, uint32(i), 0, respSize(uint8(ctl>>24), i))}); err != nil {
					return err
				}
			}
			return nil
		}},
		{StreamName: "ClientStream", ClientStreams: true, Handler: func(_ any, ss rpc.ServerStream) error {
			var id uint32
			n := 0
			for ; ; n++ {
				in := new(msg)
				err := ss.RecvMsg(in)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if n == 0 {
					saw(in.b)
					id = binary.BigEndian.Uint32(in.b)
					if err := act(ss.Context(), ctlOf(in.b)); err != nil {
						return err
					}
				}
				if err := checkPayload(in.b, id, uint32(n)); err != nil {
					return status.Error(codes.DataLoss, "stress: server received "+err.Error())
				}
			}
			out := make([]byte, 8)
			binary.BigEndian.PutUint32(out, id)
			binary.BigEndian.PutUint32(out[4:], uint32(n))
			return ss.SendMsg(&msg{out})
		}},
		{StreamName: "Bidi", ClientStreams: true, ServerStreams: true, Handler: func(_ any, ss rpc.ServerStream) error {
			for n := 0; ; n++ {
				in := new(msg)
				err := ss.RecvMsg(in)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if n == 0 {
					saw(in.b)
					if err := act(ss.Context(), ctlOf(in.b)); err != nil {
						return err
					}
				}
				if err := ss.SendMsg(in); err != nil {
					return err
				}
			}
		}},
	},
}
