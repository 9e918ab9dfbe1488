// Package reflectcheck holds the end-to-end checks of h2rpc's server
// reflection against gRPC's own tools: grpc-go's reflection client and
// grpcurl explore our interop server (test/interop/server) with no
// .proto files.
//
// Our server runs as a separate process: grpc-go's reflection and
// grpc.testing packages register the same .proto files as ours in the
// global protobuf registry, and the protobuf runtime panics when one
// binary links both. So the tests here import no h2rpc package.
package reflectcheck
