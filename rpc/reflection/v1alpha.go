package reflection

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	v1 "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1"
	v1alpha "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1alpha"
)

// v1alphaStream is a grpc.reflection.v1alpha stream seen in v1 messages.
// The two versions' messages have the same fields and numbers, so a
// message converts by going through its wire encoding.
type v1alphaStream struct {
	v1alpha.ServerReflection_ServerReflectionInfoServer
}

// Recv receives a v1alpha request as a v1 request.
func (s v1alphaStream) Recv() (*v1.ServerReflectionRequest, error) {
	in, err := s.ServerReflection_ServerReflectionInfoServer.Recv()
	if err != nil {
		return nil, err
	}
	out := new(v1.ServerReflectionRequest)
	if err := convert(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Send sends a v1 response as a v1alpha response.
func (s v1alphaStream) Send(resp *v1.ServerReflectionResponse) error {
	out := new(v1alpha.ServerReflectionResponse)
	if err := convert(resp, out); err != nil {
		return err
	}
	return s.ServerReflection_ServerReflectionInfoServer.Send(out)
}

// convert copies from into to, a message of the other version.
func convert(from, to proto.Message) error {
	b, err := proto.Marshal(from)
	if err != nil {
		return fmt.Errorf("reflection: converting %s: %w", from.ProtoReflect().Descriptor().FullName(), err)
	}
	if err := proto.Unmarshal(b, to); err != nil {
		return fmt.Errorf("reflection: converting to %s: %w", to.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}
