package rpc

// Typed stream interfaces and their implementations, used by generated
// code: one pair per streaming kind. Req is the request message type and
// Res the response message type.

// ServerStreamingClient is the client side of a server-streaming RPC.
type ServerStreamingClient[Res any] interface {
	// Recv receives the next response; io.EOF ends the stream cleanly.
	Recv() (*Res, error)
	ClientStream
}

// ServerStreamingServer is the server side of a server-streaming RPC.
type ServerStreamingServer[Res any] interface {
	// Send sends a response.
	Send(*Res) error
	ServerStream
}

// ClientStreamingClient is the client side of a client-streaming RPC.
type ClientStreamingClient[Req any, Res any] interface {
	// Send sends a request.
	Send(*Req) error
	// CloseAndRecv closes the sending side and waits for the response.
	CloseAndRecv() (*Res, error)
	ClientStream
}

// ClientStreamingServer is the server side of a client-streaming RPC.
type ClientStreamingServer[Req any, Res any] interface {
	// Recv receives the next request; io.EOF when the client is done.
	Recv() (*Req, error)
	// SendAndClose sends the response; the handler then returns nil.
	SendAndClose(*Res) error
	ServerStream
}

// BidiStreamingClient is the client side of a bidirectional-streaming RPC.
type BidiStreamingClient[Req any, Res any] interface {
	// Send sends a request.
	Send(*Req) error
	// Recv receives the next response; io.EOF ends the stream cleanly.
	Recv() (*Res, error)
	ClientStream
}

// BidiStreamingServer is the server side of a bidirectional-streaming RPC.
type BidiStreamingServer[Req any, Res any] interface {
	// Recv receives the next request; io.EOF when the client is done.
	Recv() (*Req, error)
	// Send sends a response.
	Send(*Res) error
	ServerStream
}

// GenericClientStream implements the typed client stream interfaces on a
// ClientStream.
type GenericClientStream[Req any, Res any] struct {
	ClientStream
}

var (
	_ ServerStreamingClient[string]      = (*GenericClientStream[int, string])(nil)
	_ ClientStreamingClient[int, string] = (*GenericClientStream[int, string])(nil)
	_ BidiStreamingClient[int, string]   = (*GenericClientStream[int, string])(nil)
	_ ServerStreamingServer[string]      = (*GenericServerStream[int, string])(nil)
	_ ClientStreamingServer[int, string] = (*GenericServerStream[int, string])(nil)
	_ BidiStreamingServer[int, string]   = (*GenericServerStream[int, string])(nil)
)

// Send sends a request.
func (x *GenericClientStream[Req, Res]) Send(m *Req) error { return x.ClientStream.SendMsg(m) }

// Recv receives the next response.
func (x *GenericClientStream[Req, Res]) Recv() (*Res, error) {
	m := new(Res)
	if err := x.ClientStream.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

// CloseAndRecv closes the sending side and receives the single response.
func (x *GenericClientStream[Req, Res]) CloseAndRecv() (*Res, error) {
	if err := x.ClientStream.CloseSend(); err != nil {
		return nil, err
	}
	m := new(Res)
	if err := x.ClientStream.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

// GenericServerStream implements the typed server stream interfaces on a
// ServerStream.
type GenericServerStream[Req any, Res any] struct {
	ServerStream
}

// Send sends a response.
func (x *GenericServerStream[Req, Res]) Send(m *Res) error { return x.ServerStream.SendMsg(m) }

// SendAndClose sends the single response of a client-streaming RPC.
func (x *GenericServerStream[Req, Res]) SendAndClose(m *Res) error { return x.ServerStream.SendMsg(m) }

// Recv receives the next request.
func (x *GenericServerStream[Req, Res]) Recv() (*Req, error) {
	m := new(Req)
	if err := x.ServerStream.RecvMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}
