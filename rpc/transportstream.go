package rpc

import (
	"context"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// ServerTransportStream is the part of a server-side RPC that SetHeader,
// SendHeader, SetTrailer and Method reach through a context: every
// handler's and server interceptor's context carries one. Tests of
// handler code can put a fake one in a context with
// NewContextWithServerTransportStream; interceptors can wrap the one
// they find to watch or change what the handler sets.
type ServerTransportStream interface {
	// Method is the full method name, "/package.Service/Method".
	Method() string
	// SetHeader adds header metadata, sent with the first response
	// message, by SendHeader or with the status. It fails once the
	// headers were sent.
	SetHeader(md metadata.MD) error
	// SendHeader sends the header metadata now, with md added. It fails
	// if the headers were sent already.
	SendHeader(md metadata.MD) error
	// SetTrailer adds trailer metadata, sent with the status. It fails
	// once the status was sent.
	SetTrailer(md metadata.MD) error
}

// transportStreamKey keys the ServerTransportStream of a context.
type transportStreamKey struct{}

// NewContextWithServerTransportStream returns a copy of ctx carrying sts,
// which SetHeader, SendHeader, SetTrailer and Method on the new context
// (and on contexts derived from it) then use.
func NewContextWithServerTransportStream(ctx context.Context, sts ServerTransportStream) context.Context {
	return context.WithValue(ctx, transportStreamKey{}, sts)
}

// ServerTransportStreamFromContext returns the ServerTransportStream ctx
// carries, or nil if ctx is not the context of a server-side RPC (nor one
// made by NewContextWithServerTransportStream).
func ServerTransportStreamFromContext(ctx context.Context) ServerTransportStream {
	sts, _ := ctx.Value(transportStreamKey{}).(ServerTransportStream)
	return sts
}

// transportStream is the ServerTransportStream of a handler's context:
// the serverStream itself under another method set (its SetTrailer
// returns an error, ServerStream's does not), so that handing it out
// costs no allocation.
type transportStream serverStream

var _ ServerTransportStream = (*transportStream)(nil)

// Method is the RPC's full method name.
func (ts *transportStream) Method() string { return ts.s.Method() }

// SetHeader adds header metadata.
func (ts *transportStream) SetHeader(md metadata.MD) error {
	return (*serverStream)(ts).SetHeader(md)
}

// SendHeader sends the header metadata now.
func (ts *transportStream) SendHeader(md metadata.MD) error {
	return (*serverStream)(ts).SendHeader(md)
}

// SetTrailer adds trailer metadata.
func (ts *transportStream) SetTrailer(md metadata.MD) error { return ts.s.SetTrailer(md) }
