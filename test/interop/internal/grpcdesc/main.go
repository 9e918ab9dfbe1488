// Command grpcdesc writes grpc-go's grpc.testing descriptors (empty,
// messages and test .proto files) to stdout as a serialized
// google.protobuf.FileDescriptorSet. The wire-compatibility test of our
// own grpc.testing files compares with it; it runs as a separate program
// because the two packages cannot be linked into one binary (they
// register the same proto names).
package main

import (
	"log"
	"os"

	grpctestpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range []protoreflect.FileDescriptor{
		grpctestpb.File_grpc_testing_empty_proto,
		grpctestpb.File_grpc_testing_messages_proto,
		grpctestpb.File_grpc_testing_test_proto,
	} {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	b, err := proto.Marshal(set)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stdout.Write(b); err != nil {
		log.Fatal(err)
	}
}
