// Package rpc is what h2rpc users touch: ClientConn to call services,
// Server to serve them, service descriptors that generated code fills in,
// typed stream helpers, interceptors, and call and server options.
//
// The API follows grpc-go's concepts and names where they are good, so
// moving a service over is mostly an import change.
package rpc

import (
	"context"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// ServiceDesc describes a service: generated code declares one per service
// and passes it to ServiceRegistrar.RegisterService.
type ServiceDesc struct {
	// ServiceName is the fully qualified name, "package.Service".
	ServiceName string
	// HandlerType is a pointer to the service's server interface; the
	// implementation passed to RegisterService must implement it.
	HandlerType any
	// Methods are the unary methods.
	Methods []MethodDesc
	// Streams are the streaming methods.
	Streams []StreamDesc
	// Metadata is the .proto file the service comes from.
	Metadata any
}

// MethodDesc describes a unary method.
type MethodDesc struct {
	// MethodName is the method's name without the service.
	MethodName string
	// Handler decodes the request with dec and calls the implementation,
	// through interceptor when it is not nil.
	Handler MethodHandler
}

// MethodHandler runs a unary method on srv.
type MethodHandler func(srv any, ctx context.Context, dec func(any) error, interceptor UnaryServerInterceptor) (any, error)

// StreamDesc describes a streaming method.
type StreamDesc struct {
	// StreamName is the method's name without the service.
	StreamName string
	// Handler runs the method on the server.
	Handler StreamHandler
	// ServerStreams and ClientStreams say which sides send many messages.
	ServerStreams bool
	ClientStreams bool
}

// StreamHandler runs a streaming method on srv.
type StreamHandler func(srv any, stream ServerStream) error

// ServiceRegistrar registers services: generated Register functions and
// packages that provide services (health, reflection) take one. *Server
// implements it; a type of the user's own may too, to wrap a Server (to
// record or filter what is registered) or to serve the services another
// way.
type ServiceRegistrar interface {
	// RegisterService registers impl, which must implement
	// desc.HandlerType, under desc.
	RegisterService(desc *ServiceDesc, impl any)
}

// ClientConnInterface is what generated client stubs call; *ClientConn
// implements it.
type ClientConnInterface interface {
	// Invoke performs a unary RPC and fills reply.
	Invoke(ctx context.Context, method string, args, reply any, opts ...CallOption) error
	// NewStream begins a streaming RPC.
	NewStream(ctx context.Context, desc *StreamDesc, method string, opts ...CallOption) (ClientStream, error)
}

// ClientStream is the client side of a streaming RPC.
type ClientStream interface {
	// Header waits for and returns the server's header metadata.
	Header() (metadata.MD, error)
	// Trailer returns the trailer metadata once the RPC has ended
	// (RecvMsg returned a non-nil error).
	Trailer() metadata.MD
	// CloseSend closes the sending side.
	CloseSend() error
	// Context is the stream's context.
	Context() context.Context
	// SendMsg sends a message. It returns io.EOF when the stream ended,
	// whose status RecvMsg then reports.
	SendMsg(m any) error
	// RecvMsg receives a message into m. It returns io.EOF when the
	// stream ended with OK, and the status error otherwise.
	RecvMsg(m any) error
}

// ServerStream is the server side of a streaming RPC.
type ServerStream interface {
	// SetHeader adds header metadata, sent with the first message or by
	// SendHeader.
	SetHeader(metadata.MD) error
	// SendHeader sends the header metadata now.
	SendHeader(metadata.MD) error
	// SetTrailer adds trailer metadata, sent with the status.
	SetTrailer(metadata.MD)
	// Context is the RPC's context: deadline, cancellation, metadata.
	Context() context.Context
	// SendMsg sends a message.
	SendMsg(m any) error
	// RecvMsg receives a message into m; io.EOF when the client is done.
	RecvMsg(m any) error
}

// UnaryServerInfo describes a unary RPC to server interceptors.
type UnaryServerInfo struct {
	// Server is the service implementation.
	Server any
	// FullMethod is "/package.Service/Method".
	FullMethod string
}

// UnaryHandler is the handler a unary server interceptor calls on.
type UnaryHandler func(ctx context.Context, req any) (any, error)

// UnaryServerInterceptor intercepts unary RPCs on the server.
type UnaryServerInterceptor func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error)

// StreamServerInfo describes a streaming RPC to server interceptors.
type StreamServerInfo struct {
	// FullMethod is "/package.Service/Method".
	FullMethod string
	// IsClientStream and IsServerStream say which sides stream.
	IsClientStream bool
	IsServerStream bool
}

// StreamServerInterceptor intercepts streaming RPCs on the server.
type StreamServerInterceptor func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error

// UnaryInvoker is what a unary client interceptor calls to go on.
type UnaryInvoker func(ctx context.Context, method string, req, reply any, cc *ClientConn, opts ...CallOption) error

// UnaryClientInterceptor intercepts unary RPCs on the client.
type UnaryClientInterceptor func(ctx context.Context, method string, req, reply any, cc *ClientConn, invoker UnaryInvoker, opts ...CallOption) error

// Streamer is what a stream client interceptor calls to go on.
type Streamer func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (ClientStream, error)

// StreamClientInterceptor intercepts streaming RPCs on the client.
type StreamClientInterceptor func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, streamer Streamer, opts ...CallOption) (ClientStream, error)
