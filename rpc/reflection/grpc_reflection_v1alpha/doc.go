// Package grpc_reflection_v1alpha holds the messages and the h2rpc client and
// server code of gRPC's server reflection service, grpc.reflection.v1alpha,
// generated from proto/grpc/reflection/v1alpha/reflection.proto. It has the
// name and shape of grpc-go's google.golang.org/grpc/reflection/grpc_reflection_v1alpha.
//
// Servers register the service with package rpc/reflection rather than
// implementing it. This package registers grpc/reflection/v1alpha/reflection.proto
// in the global protobuf registry, as grpc-go's does: one binary must not
// link both.
package grpc_reflection_v1alpha
