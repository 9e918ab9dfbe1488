package rpc

import (
	"context"
	"fmt"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// NewSubConnStream opens a stream on sc's current READY transport,
// bypassing the channel's picker: it is for balancers and their helpers
// (such as ORCA's out-of-band listener) that talk to one backend. sc must
// be a subchannel of a ClientConn of this package. The channel's
// interceptors, method config and retries do not apply; its default call
// options, codecs and compressors do, and so do opts. When sc is not
// READY the stream fails at once with UNAVAILABLE, whatever the
// wait-for-ready option says.
func NewSubConnStream(ctx context.Context, sc balancer.SubConn, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error) {
	s, ok := sc.(*subConn)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "rpc: NewSubConnStream: %T is not a subchannel of this package's ClientConn", sc)
	}
	t := s.readyTransport()
	if t == nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("rpc: subchannel %v is not READY", s))
	}
	cs, err := newClientStream(ctx, desc, s.cc, t, method, s.cc.dopts.callOptions, opts...)
	if err != nil {
		return nil, err
	}
	return cs, nil
}
