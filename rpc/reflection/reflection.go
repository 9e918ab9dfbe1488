// Package reflection serves gRPC server reflection (grpc.reflection.v1
// and grpc.reflection.v1alpha): a client asks which services a server
// serves and for the descriptors of the .proto files that define them,
// so that tools such as grpcurl can list, describe and call services
// without the .proto files.
//
// Register adds both versions to a server:
//
//	srv := rpc.NewServer()
//	echov1.RegisterEchoServer(srv, impl)
//	reflection.Register(srv)
//
// The descriptors come from the global protobuf registry
// (protoregistry.GlobalFiles and GlobalTypes), where generated code
// registers its files, so every service generated with protoc-gen-go and
// protoc-gen-rpc and linked into the binary can be described.
// NewServerV1 and ServerOptions choose other sources.
//
// The API has the shape of grpc-go's google.golang.org/grpc/reflection.
package reflection

import (
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/h2rpc/h2rpc/rpc"
	v1 "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1"
	v1alpha "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1alpha"
)

// ServiceInfoProvider lists the services reflection reports;
// *rpc.Server implements it.
type ServiceInfoProvider interface {
	// GetServiceInfo describes the services by fully qualified name.
	GetServiceInfo() map[string]rpc.ServiceInfo
}

// GRPCServer is a server reflection registers on and describes;
// *rpc.Server implements it.
type GRPCServer interface {
	rpc.ServiceRegistrar
	ServiceInfoProvider
}

var _ GRPCServer = (*rpc.Server)(nil)

// ExtensionResolver finds extensions, by number and by the message they
// extend; *protoregistry.Types implements it.
type ExtensionResolver interface {
	protoregistry.ExtensionTypeResolver
	// RangeExtensionsByMessage calls f for each extension of message
	// until f returns false.
	RangeExtensionsByMessage(message protoreflect.FullName, f func(protoreflect.ExtensionType) bool)
}

// ServerOptions configure a reflection service made by NewServerV1 or
// NewServer.
type ServerOptions struct {
	// Services lists the services that list_services reports, usually
	// the *rpc.Server the reflection service is registered on. Nil
	// reports none.
	Services ServiceInfoProvider
	// DescriptorResolver finds files by name and symbols by fully
	// qualified name. Nil means protoregistry.GlobalFiles.
	DescriptorResolver protodesc.Resolver
	// ExtensionResolver finds extensions. Nil means
	// protoregistry.GlobalTypes.
	ExtensionResolver ExtensionResolver
}

// Register registers the reflection service on s, in both versions,
// grpc.reflection.v1 and grpc.reflection.v1alpha (which older clients
// use), describing s's services with the descriptors of the global
// protobuf registry.
func Register(s GRPCServer) {
	opts := ServerOptions{Services: s}
	v1alpha.RegisterServerReflectionServer(s, NewServer(opts))
	v1.RegisterServerReflectionServer(s, NewServerV1(opts))
}

// RegisterV1 registers only grpc.reflection.v1 on s; Register registers
// both versions.
func RegisterV1(s GRPCServer) {
	v1.RegisterServerReflectionServer(s, NewServerV1(ServerOptions{Services: s}))
}

// NewServerV1 returns a grpc.reflection.v1 service configured by opts,
// for v1.RegisterServerReflectionServer. Use it rather than Register to
// choose the services reported or where descriptors come from.
func NewServerV1(opts ServerOptions) v1.ServerReflectionServer {
	return &serverV1{r: newReflector(opts)}
}

// NewServer returns a grpc.reflection.v1alpha service configured by opts,
// for v1alpha.RegisterServerReflectionServer. It answers as NewServerV1's
// does; v1alpha is the older version of the same protocol.
func NewServer(opts ServerOptions) v1alpha.ServerReflectionServer {
	return &serverV1alpha{r: newReflector(opts)}
}

// serverV1 is the grpc.reflection.v1 service.
type serverV1 struct {
	v1.UnimplementedServerReflectionServer
	r *reflector
}

// ServerReflectionInfo answers each request of the stream, in order.
func (s *serverV1) ServerReflectionInfo(stream v1.ServerReflection_ServerReflectionInfoServer) error {
	return s.r.serve(stream)
}

// serverV1alpha is the grpc.reflection.v1alpha service.
type serverV1alpha struct {
	v1alpha.UnimplementedServerReflectionServer
	r *reflector
}

// ServerReflectionInfo answers each request of the stream, in order.
func (s *serverV1alpha) ServerReflectionInfo(stream v1alpha.ServerReflection_ServerReflectionInfoServer) error {
	return s.r.serve(v1alphaStream{stream})
}
