package reflectcheck

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// wantServices are services our interop server must list; it may serve
// others too.
var wantServices = []string{
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
	"grpc.testing.TestService",
}

// dialGrpcGo returns a grpc-go client of addr, closed when the test ends.
func dialGrpcGo(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	t.Cleanup(cancel)
	return ctx
}

// checkTestServiceFiles checks the answer to file_containing_symbol
// grpc.testing.TestService: test.proto first, then its dependencies, all
// of which build into descriptors in which TestService has its methods
// with the right stream kinds.
func checkTestServiceFiles(t *testing.T, encoded [][]byte) {
	t.Helper()
	set := new(descriptorpb.FileDescriptorSet)
	for _, b := range encoded {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatalf("file_descriptor_proto does not decode: %v", err)
		}
		set.File = append(set.File, fd)
	}
	if len(set.File) == 0 || set.File[0].GetName() != "grpc/testing/test.proto" {
		t.Fatalf("file_containing_symbol grpc.testing.TestService sent %d files, not test.proto first", len(set.File))
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("the files sent do not build (a dependency missing?): %v", err)
	}
	d, err := files.FindDescriptorByName("grpc.testing.TestService")
	if err != nil {
		t.Fatal(err)
	}
	methods := d.(protoreflect.ServiceDescriptor).Methods()
	for name, streams := range map[protoreflect.Name][2]bool{
		"UnaryCall":           {false, false},
		"StreamingOutputCall": {false, true},
		"StreamingInputCall":  {true, false},
		"FullDuplexCall":      {true, true},
	} {
		m := methods.ByName(name)
		if m == nil {
			t.Errorf("grpc.testing.TestService has no method %s", name)
			continue
		}
		if got := [2]bool{m.IsStreamingClient(), m.IsStreamingServer()}; got != streams {
			t.Errorf("%s streams (client, server) = %v, want %v", name, got, streams)
		}
	}
}

// TestGrpcGoReflectionClientV1ExploresOurServer drives grpc-go's
// grpc.reflection.v1 client against our interop server: it lists the
// services and gets the files of grpc.testing.TestService, and an unknown
// symbol is NOT_FOUND on the same stream.
func TestGrpcGoReflectionClientV1ExploresOurServer(t *testing.T) {
	stream, err := reflectionv1.NewServerReflectionClient(dialGrpcGo(t, startServer(t))).ServerReflectionInfo(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	ask := func(req *reflectionv1.ServerReflectionRequest) *reflectionv1.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	var names []string
	for _, s := range ask(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{},
	}).GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range wantServices {
		if !slices.Contains(names, want) {
			t.Errorf("list_services = %q, lacks %s", names, want)
		}
	}

	checkTestServiceFiles(t, ask(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.TestService"},
	}).GetFileDescriptorResponse().GetFileDescriptorProto())

	e := ask(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.NoSuchService"},
	}).GetErrorResponse()
	if e.GetErrorCode() != 5 { // NOT_FOUND
		t.Errorf("file_containing_symbol grpc.testing.NoSuchService: error_response %v, want code 5 (NOT_FOUND)", e)
	}
}

// TestGrpcGoReflectionClientV1alphaExploresOurServer is
// TestGrpcGoReflectionClientV1ExploresOurServer with the v1alpha client,
// which older tools use.
func TestGrpcGoReflectionClientV1alphaExploresOurServer(t *testing.T) {
	stream, err := reflectionv1alpha.NewServerReflectionClient(dialGrpcGo(t, startServer(t))).ServerReflectionInfo(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	ask := func(req *reflectionv1alpha.ServerReflectionRequest) *reflectionv1alpha.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	var names []string
	for _, s := range ask(&reflectionv1alpha.ServerReflectionRequest{
		MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{},
	}).GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range wantServices {
		if !slices.Contains(names, want) {
			t.Errorf("list_services = %q, lacks %s", names, want)
		}
	}

	checkTestServiceFiles(t, ask(&reflectionv1alpha.ServerReflectionRequest{
		MessageRequest: &reflectionv1alpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.TestService"},
	}).GetFileDescriptorResponse().GetFileDescriptorProto())
}
