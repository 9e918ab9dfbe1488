package reflection

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	orcaservicev3 "github.com/h2rpc/h2rpc/proto/xds/service/orca/v3"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	v1 "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1"
	v1alpha "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1alpha"
)

// orcaProto links proto/xds/service/orca/v3, whose orca.proto imports two
// files, into the test binary, so that the global registry has it.
var orcaProto = orcaservicev3.File_xds_service_orca_v3_orca_proto

// clientStream is a v1 ServerReflectionInfo stream of our client.
type clientStream = rpc.BidiStreamingClient[v1.ServerReflectionRequest, v1.ServerReflectionResponse]

// openStream starts a v1 ServerReflectionInfo stream to addr.
func openStream(t *testing.T, addr string) clientStream {
	t.Helper()
	stream, err := v1.NewServerReflectionClient(newTestClient(t, addr)).ServerReflectionInfo(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.CloseSend() })
	return stream
}

// ask sends req on stream and returns the answer, which must echo req.
func ask(t *testing.T, stream clientStream, req *v1.ServerReflectionRequest) *v1.ServerReflectionResponse {
	t.Helper()
	if err := stream.Send(req); err != nil {
		t.Fatalf("Send(%v): %v", req, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv after %v: %v", req, err)
	}
	if !proto.Equal(resp.GetOriginalRequest(), req) {
		t.Errorf("original_request = %v, want %v", resp.GetOriginalRequest(), req)
	}
	if resp.GetValidHost() != req.GetHost() {
		t.Errorf("valid_host = %q, want %q", resp.GetValidHost(), req.GetHost())
	}
	return resp
}

// fileNames are the names of the files of a file_descriptor_response, in
// order; it fails the test when resp is something else.
func fileNames(t *testing.T, resp *v1.ServerReflectionResponse) []string {
	t.Helper()
	fdr := resp.GetFileDescriptorResponse()
	if fdr == nil {
		t.Fatalf("response %v, want a file_descriptor_response", resp)
	}
	var names []string
	for _, b := range fdr.GetFileDescriptorProto() {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatalf("file_descriptor_proto does not decode: %v", err)
		}
		names = append(names, fd.GetName())
	}
	return names
}

func byFilename(name string) *v1.ServerReflectionRequest {
	return &v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_FileByFilename{FileByFilename: name}}
}

func bySymbol(name string) *v1.ServerReflectionRequest {
	return &v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}}
}

func byExtension(msg string, num int32) *v1.ServerReflectionRequest {
	return &v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_FileContainingExtension{
		FileContainingExtension: &v1.ExtensionRequest{ContainingType: msg, ExtensionNumber: num},
	}}
}

func extensionNumbers(msg string) *v1.ServerReflectionRequest {
	return &v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_AllExtensionNumbersOfType{AllExtensionNumbersOfType: msg}}
}

func listServices() *v1.ServerReflectionRequest {
	return &v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_ListServices{ListServices: "*"}}
}

// serviceNames are the names of a list_services_response.
func serviceNames(t *testing.T, resp *v1.ServerReflectionResponse) []string {
	t.Helper()
	list := resp.GetListServicesResponse()
	if list == nil {
		t.Fatalf("response %v, want a list_services_response", resp)
	}
	var names []string
	for _, s := range list.GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// startEcho serves echo.v1.Echo and reflection (Register).
func startEcho(t *testing.T) string {
	return startServer(t, func(s *rpc.Server) {
		echov1.RegisterEchoServer(s, echov1.Service{})
		Register(s)
	})
}

// TestListServicesReportsEveryRegisteredServiceAndReflectionItself
// checks list_services: every service of the server, the reflection
// services included (as grpc-go reports them), sorted.
func TestListServicesReportsEveryRegisteredServiceAndReflectionItself(t *testing.T) {
	stream := openStream(t, startEcho(t))
	got := serviceNames(t, ask(t, stream, listServices()))
	want := []string{"echo.v1.Echo", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
	if !slices.Equal(got, want) {
		t.Errorf("list_services = %q, want %q", got, want)
	}
}

// TestFileByFilenameSendsEachDependencyOncePerStream checks that a file
// comes with its transitive dependencies, that a dependency the stream
// already sent is not sent again, that the file asked for always is, and
// that a new stream starts afresh.
func TestFileByFilenameSendsEachDependencyOncePerStream(t *testing.T) {
	addr := startEcho(t)
	stream := openStream(t, addr)
	orca := orcaProto.Path()
	report := "xds/data/orca/v3/orca_load_report.proto"
	all := []string{orca, report, "google/protobuf/duration.proto"}

	if got := fileNames(t, ask(t, stream, byFilename(orca))); !slices.Equal(got, all) {
		t.Errorf("first file_by_filename %q sent %q, want %q", orca, got, all)
	}
	// orca_load_report.proto went out as a dependency; asked for, it
	// comes again, alone.
	if got, want := fileNames(t, ask(t, stream, byFilename(report))), []string{report}; !slices.Equal(got, want) {
		t.Errorf("file_by_filename of a sent dependency sent %q, want %q", got, want)
	}
	if got, want := fileNames(t, ask(t, stream, bySymbol("xds.service.orca.v3.OpenRcaService"))), []string{orca}; !slices.Equal(got, want) {
		t.Errorf("file_containing_symbol of a sent file sent %q, want %q", got, want)
	}

	// Another stream has sent nothing yet.
	if got := fileNames(t, ask(t, openStream(t, addr), byFilename(orca))); !slices.Equal(got, all) {
		t.Errorf("file_by_filename %q on a new stream sent %q, want %q", orca, got, all)
	}
}

// TestFileDescriptorsAreTheRegisteredFiles checks that the descriptor
// sent for a file is the registered one, whole.
func TestFileDescriptorsAreTheRegisteredFiles(t *testing.T) {
	resp := ask(t, openStream(t, startEcho(t)), bySymbol("echo.v1.Echo"))
	files := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) != 1 {
		t.Fatalf("file_containing_symbol echo.v1.Echo sent %d files, want 1 (echo.proto imports nothing)", len(files))
	}
	got := new(descriptorpb.FileDescriptorProto)
	if err := proto.Unmarshal(files[0], got); err != nil {
		t.Fatal(err)
	}
	if want := protodesc.ToFileDescriptorProto(echov1.File_echo_v1_echo_proto); !proto.Equal(got, want) {
		t.Errorf("file_containing_symbol echo.v1.Echo sent\n%v\nwant\n%v", got, want)
	}
}

// testFiles are four proto2 files with every kind of symbol, extensions
// and a diamond of imports: top.proto imports svc.proto, which imports
// base.proto and ext.proto, and ext.proto imports base.proto.
const testFiles = `
file {
  name: "reflecttest/base.proto" package: "reflecttest" syntax: "proto2"
  message_type {
    name: "Base"
    field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 json_name: "id" }
    field { name: "text" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 json_name: "text" }
    nested_type { name: "Inner" }
    oneof_decl { name: "choice" }
    extension_range { start: 100 end: 201 }
  }
  enum_type { name: "Color" value { name: "RED" number: 0 } value { name: "GREEN" number: 1 } }
}
file {
  name: "reflecttest/ext.proto" package: "reflecttest.ext" syntax: "proto2"
  dependency: "reflecttest/base.proto"
  extension { name: "size" number: 150 label: LABEL_OPTIONAL type: TYPE_INT32 extendee: ".reflecttest.Base" json_name: "size" }
  extension { name: "label" number: 100 label: LABEL_OPTIONAL type: TYPE_STRING extendee: ".reflecttest.Base" json_name: "label" }
}
file {
  name: "reflecttest/svc.proto" package: "reflecttest.svc" syntax: "proto2"
  dependency: "reflecttest/base.proto"
  dependency: "reflecttest/ext.proto"
  message_type {
    name: "Holder"
    field { name: "base" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".reflecttest.Base" json_name: "base" }
    field { name: "color" number: 2 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".reflecttest.Color" json_name: "color" }
  }
  service {
    name: "Things"
    method { name: "Get" input_type: ".reflecttest.svc.Holder" output_type: ".reflecttest.Base" }
  }
}
file {
  name: "reflecttest/top.proto" package: "reflecttest.top" syntax: "proto2"
  dependency: "reflecttest/svc.proto"
  message_type {
    name: "Top"
    field { name: "holder" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".reflecttest.svc.Holder" json_name: "holder" }
  }
}
`

// startTestFiles serves reflection (NewServerV1 and NewServer) over
// testFiles, with their extensions, instead of the global registry.
func startTestFiles(t *testing.T) string {
	t.Helper()
	set := new(descriptorpb.FileDescriptorSet)
	if err := prototext.Unmarshal([]byte(testFiles), set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	types := new(protoregistry.Types)
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Extensions().Len() {
			if err = types.RegisterExtension(dynamicpb.NewExtensionType(fd.Extensions().Get(i))); err != nil {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(s *rpc.Server) {
		opts := ServerOptions{Services: s, DescriptorResolver: files, ExtensionResolver: types}
		v1.RegisterServerReflectionServer(s, NewServerV1(opts))
		v1alpha.RegisterServerReflectionServer(s, NewServer(opts))
	})
}

// TestFileContainingSymbolFindsEveryKindOfSymbol checks that
// file_containing_symbol finds the file of a service, a method, a
// message, a nested message, a field, a oneof, an enum, an enum value and
// an extension, from the options' resolvers.
func TestFileContainingSymbolFindsEveryKindOfSymbol(t *testing.T) {
	addr := startTestFiles(t)
	for symbol, file := range map[string]string{
		"reflecttest.svc.Things":      "reflecttest/svc.proto",
		"reflecttest.svc.Things.Get":  "reflecttest/svc.proto",
		"reflecttest.svc.Holder":      "reflecttest/svc.proto",
		"reflecttest.svc.Holder.base": "reflecttest/svc.proto",
		"reflecttest.Base":            "reflecttest/base.proto",
		"reflecttest.Base.Inner":      "reflecttest/base.proto",
		"reflecttest.Base.id":         "reflecttest/base.proto",
		"reflecttest.Base.choice":     "reflecttest/base.proto",
		"reflecttest.Color":           "reflecttest/base.proto",
		"reflecttest.GREEN":           "reflecttest/base.proto", // enum values are siblings of their enum
		"reflecttest.ext.size":        "reflecttest/ext.proto",
	} {
		got := fileNames(t, ask(t, openStream(t, addr), bySymbol(symbol)))
		if len(got) == 0 || got[0] != file {
			t.Errorf("file_containing_symbol %q sent %q, want %q first", symbol, got, file)
		}
	}
}

// TestExtensionsAreFoundByNumberAndListed checks
// file_containing_extension and all_extension_numbers_of_type, and that
// the transitive dependencies, through a diamond of imports, each go out
// once.
func TestExtensionsAreFoundByNumberAndListed(t *testing.T) {
	stream := openStream(t, startTestFiles(t))

	if got, want := fileNames(t, ask(t, stream, bySymbol("reflecttest.top.Top"))),
		[]string{"reflecttest/top.proto", "reflecttest/svc.proto", "reflecttest/base.proto", "reflecttest/ext.proto"}; !slices.Equal(got, want) {
		t.Errorf("file_containing_symbol reflecttest.top.Top sent %q, want %q", got, want)
	}
	if got, want := fileNames(t, ask(t, stream, byExtension("reflecttest.Base", 150))), []string{"reflecttest/ext.proto"}; !slices.Equal(got, want) {
		t.Errorf("file_containing_extension reflecttest.Base 150 sent %q, want %q", got, want)
	}

	resp := ask(t, stream, extensionNumbers("reflecttest.Base")).GetAllExtensionNumbersResponse()
	if resp.GetBaseTypeName() != "reflecttest.Base" || !slices.Equal(resp.GetExtensionNumber(), []int32{100, 150}) {
		t.Errorf("all_extension_numbers_of_type reflecttest.Base = %v, want base_type_name reflecttest.Base, numbers [100 150]", resp)
	}
	// A known message without extensions has none; it is no error.
	resp = ask(t, stream, extensionNumbers("reflecttest.svc.Holder")).GetAllExtensionNumbersResponse()
	if resp.GetBaseTypeName() != "reflecttest.svc.Holder" || len(resp.GetExtensionNumber()) != 0 {
		t.Errorf("all_extension_numbers_of_type reflecttest.svc.Holder = %v, want no numbers", resp)
	}
}

// TestBadRequestsGetAnErrorResponseAndTheStreamGoesOn checks the
// ErrorResponse of each kind of request that cannot be answered:
// NOT_FOUND for names nobody registered, INVALID_ARGUMENT for malformed
// requests; the stream answers the next request.
func TestBadRequestsGetAnErrorResponseAndTheStreamGoesOn(t *testing.T) {
	stream := openStream(t, startTestFiles(t))
	for _, c := range []struct {
		req  *v1.ServerReflectionRequest
		code codes.Code
	}{
		{byFilename("no/such.proto"), codes.NotFound},
		{bySymbol("reflecttest.NoSuch"), codes.NotFound},
		{bySymbol("reflecttest.svc.Things.NoSuch"), codes.NotFound},
		{byExtension("reflecttest.Base", 101), codes.NotFound},
		{byExtension("reflecttest.NoSuch", 100), codes.NotFound},
		{extensionNumbers("reflecttest.NoSuch"), codes.NotFound},
		{&v1.ServerReflectionRequest{Host: "example.com"}, codes.InvalidArgument},
		{byFilename(""), codes.InvalidArgument},
		{bySymbol(""), codes.InvalidArgument},
		{bySymbol("reflecttest..Base"), codes.InvalidArgument},
		{byExtension("reflecttest.Base", 0), codes.InvalidArgument},
		{byExtension("", 100), codes.InvalidArgument},
		{extensionNumbers("reflecttest.Color"), codes.InvalidArgument},
	} {
		resp := ask(t, stream, c.req)
		e := resp.GetErrorResponse()
		if e == nil {
			t.Errorf("request %v: response %v, want an error_response", c.req, resp)
			continue
		}
		if codes.Code(e.GetErrorCode()) != c.code || e.GetErrorMessage() == "" {
			t.Errorf("request %v: error_response %v, want code %v (%d) and a message", c.req, e, c.code, c.code)
		}
	}
	if got := serviceNames(t, ask(t, stream, listServices())); !slices.Contains(got, "grpc.reflection.v1.ServerReflection") {
		t.Errorf("list_services after the errors = %q, want the reflection service among them", got)
	}
}

// TestV1alphaAnswersAsV1 checks that the v1alpha service answers in its
// own messages what v1 answers.
func TestV1alphaAnswersAsV1(t *testing.T) {
	stream, err := v1alpha.NewServerReflectionClient(newTestClient(t, startEcho(t))).ServerReflectionInfo(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	ask := func(req *v1alpha.ServerReflectionRequest) *v1alpha.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(resp.GetOriginalRequest(), req) || resp.GetValidHost() != req.GetHost() {
			t.Errorf("response to %v echoes %v for host %q", req, resp.GetOriginalRequest(), resp.GetValidHost())
		}
		return resp
	}

	var names []string
	for _, s := range ask(&v1alpha.ServerReflectionRequest{
		Host:           "localhost",
		MessageRequest: &v1alpha.ServerReflectionRequest_ListServices{},
	}).GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if want := []string{"echo.v1.Echo", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}; !slices.Equal(names, want) {
		t.Errorf("v1alpha list_services = %q, want %q", names, want)
	}

	files := ask(&v1alpha.ServerReflectionRequest{
		MessageRequest: &v1alpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "echo.v1.Echo.Chat"},
	}).GetFileDescriptorResponse().GetFileDescriptorProto()
	fd := new(descriptorpb.FileDescriptorProto)
	if len(files) != 1 || proto.Unmarshal(files[0], fd) != nil || fd.GetName() != "echo/v1/echo.proto" {
		t.Errorf("v1alpha file_containing_symbol echo.v1.Echo.Chat sent %d files, the first %q; want echo/v1/echo.proto", len(files), fd.GetName())
	}

	e := ask(&v1alpha.ServerReflectionRequest{
		MessageRequest: &v1alpha.ServerReflectionRequest_FileByFilename{FileByFilename: "no/such.proto"},
	}).GetErrorResponse()
	if codes.Code(e.GetErrorCode()) != codes.NotFound || !strings.Contains(e.GetErrorMessage(), "no/such.proto") {
		t.Errorf("v1alpha file_by_filename no/such.proto: error_response %v, want NOT_FOUND naming the file", e)
	}
}

// TestServicesOptionChoosesWhatIsListed checks ServerOptions.Services:
// nil lists no service, and a provider of one's own lists its services.
func TestServicesOptionChoosesWhatIsListed(t *testing.T) {
	addr := startServer(t, func(s *rpc.Server) {
		v1.RegisterServerReflectionServer(s, NewServerV1(ServerOptions{}))
		v1alpha.RegisterServerReflectionServer(s, NewServer(ServerOptions{Services: onlyEcho{}}))
	})
	if got := serviceNames(t, ask(t, openStream(t, addr), listServices())); len(got) != 0 {
		t.Errorf("list_services without ServerOptions.Services = %q, want none", got)
	}
	stream, err := v1alpha.NewServerReflectionClient(newTestClient(t, addr)).ServerReflectionInfo(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&v1alpha.ServerReflectionRequest{MessageRequest: &v1alpha.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetListServicesResponse().GetService(); len(got) != 1 || got[0].GetName() != "echo.v1.Echo" {
		t.Errorf("list_services with a provider of echo.v1.Echo only = %v, want echo.v1.Echo", got)
	}
}

// onlyEcho reports echo.v1.Echo alone.
type onlyEcho struct{}

func (onlyEcho) GetServiceInfo() map[string]rpc.ServiceInfo {
	return map[string]rpc.ServiceInfo{"echo.v1.Echo": {}}
}
