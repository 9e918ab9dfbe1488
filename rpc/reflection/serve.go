package reflection

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/h2rpc/h2rpc/rpc/codes"
	v1 "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1"
)

// reflector answers reflection requests, in the v1 messages; the
// v1alpha service converts its messages to and from them.
type reflector struct {
	services   ServiceInfoProvider // nil: no services
	files      protodesc.Resolver
	extensions ExtensionResolver
}

func newReflector(opts ServerOptions) *reflector {
	r := &reflector{
		services:   opts.Services,
		files:      opts.DescriptorResolver,
		extensions: opts.ExtensionResolver,
	}
	if r.files == nil {
		r.files = protoregistry.GlobalFiles
	}
	if r.extensions == nil {
		r.extensions = protoregistry.GlobalTypes
	}
	return r
}

// reflectionStream is a ServerReflectionInfo stream, in v1 messages.
type reflectionStream interface {
	Recv() (*v1.ServerReflectionRequest, error)
	Send(*v1.ServerReflectionResponse) error
}

// serve answers each request of stream, in order, until the client ends
// its side. A request that cannot be answered gets an ErrorResponse and
// the stream goes on.
func (r *reflector) serve(stream reflectionStream) error {
	// sent holds the paths of the files this stream has sent: a file's
	// dependencies go to a client once per stream.
	sent := make(map[string]bool)
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(r.answer(req, sent)); err != nil {
			return err
		}
	}
}

// answer answers req; sent is as in serve.
func (r *reflector) answer(req *v1.ServerReflectionRequest, sent map[string]bool) *v1.ServerReflectionResponse {
	resp := &v1.ServerReflectionResponse{ValidHost: req.GetHost(), OriginalRequest: req}
	var err *requestError
	switch q := req.GetMessageRequest().(type) {
	case *v1.ServerReflectionRequest_FileByFilename:
		resp.MessageResponse, err = r.fileByName(q.FileByFilename, sent)
	case *v1.ServerReflectionRequest_FileContainingSymbol:
		resp.MessageResponse, err = r.fileContainingSymbol(q.FileContainingSymbol, sent)
	case *v1.ServerReflectionRequest_FileContainingExtension:
		resp.MessageResponse, err = r.fileContainingExtension(q.FileContainingExtension, sent)
	case *v1.ServerReflectionRequest_AllExtensionNumbersOfType:
		resp.MessageResponse, err = r.extensionNumbers(q.AllExtensionNumbersOfType)
	case *v1.ServerReflectionRequest_ListServices:
		resp.MessageResponse = r.listServices()
	default:
		err = &requestError{codes.InvalidArgument, "the request asks for nothing this server knows (empty or unknown message_request)"}
	}
	if err != nil {
		resp.MessageResponse = &v1.ServerReflectionResponse_ErrorResponse{ErrorResponse: &v1.ErrorResponse{
			ErrorCode:    int32(err.code),
			ErrorMessage: err.msg,
		}}
	}
	return resp
}

// requestError is why a request could not be answered: the code and
// message of its ErrorResponse.
type requestError struct {
	code codes.Code
	msg  string
}

// lookupError is the requestError of a failed look-up of what: NOT_FOUND
// when the resolver does not know it, INTERNAL when the resolver failed.
func lookupError(what string, err error) *requestError {
	if errors.Is(err, protoregistry.NotFound) {
		return &requestError{codes.NotFound, what + " not found"}
	}
	return &requestError{codes.Internal, fmt.Sprintf("looking up %s: %v", what, err)}
}

func (r *reflector) fileByName(name string, sent map[string]bool) (*v1.ServerReflectionResponse_FileDescriptorResponse, *requestError) {
	if name == "" {
		return nil, &requestError{codes.InvalidArgument, "file_by_filename is empty"}
	}
	fd, err := r.files.FindFileByPath(name)
	if err != nil {
		return nil, lookupError(fmt.Sprintf("file %q", name), err)
	}
	return r.fileWithDependencies(fd, sent, fmt.Sprintf("file %q", name))
}

func (r *reflector) fileContainingSymbol(name string, sent map[string]bool) (*v1.ServerReflectionResponse_FileDescriptorResponse, *requestError) {
	what := fmt.Sprintf("symbol %q", name)
	if !protoreflect.FullName(name).IsValid() {
		return nil, &requestError{codes.InvalidArgument, what + " is not a fully qualified name"}
	}
	d, err := r.files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, lookupError(what, err)
	}
	return r.fileWithDependencies(d.ParentFile(), sent, what)
}

func (r *reflector) fileContainingExtension(ext *v1.ExtensionRequest, sent map[string]bool) (*v1.ServerReflectionResponse_FileDescriptorResponse, *requestError) {
	msg, num := protoreflect.FullName(ext.GetContainingType()), protoreflect.FieldNumber(ext.GetExtensionNumber())
	what := fmt.Sprintf("extension %d of %q", num, msg)
	if !msg.IsValid() {
		return nil, &requestError{codes.InvalidArgument, fmt.Sprintf("containing_type %q is not a fully qualified name", msg)}
	}
	if !num.IsValid() {
		return nil, &requestError{codes.InvalidArgument, fmt.Sprintf("extension_number %d is not a valid field number", num)}
	}
	xt, err := r.extensions.FindExtensionByNumber(msg, num)
	if err != nil {
		return nil, lookupError(what, err)
	}
	return r.fileWithDependencies(xt.TypeDescriptor().ParentFile(), sent, what)
}

func (r *reflector) extensionNumbers(name string) (*v1.ServerReflectionResponse_AllExtensionNumbersResponse, *requestError) {
	what := fmt.Sprintf("message type %q", name)
	if !protoreflect.FullName(name).IsValid() {
		return nil, &requestError{codes.InvalidArgument, what + " is not a fully qualified name"}
	}
	var nums []int32
	r.extensions.RangeExtensionsByMessage(protoreflect.FullName(name), func(xt protoreflect.ExtensionType) bool {
		nums = append(nums, int32(xt.TypeDescriptor().Number()))
		return true
	})
	if len(nums) == 0 {
		// No extensions: tell an unknown type from one without any.
		d, err := r.files.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, lookupError(what, err)
		}
		if _, ok := d.(protoreflect.MessageDescriptor); !ok {
			return nil, &requestError{codes.InvalidArgument, fmt.Sprintf("%q is not a message type", name)}
		}
	}
	slices.Sort(nums)
	return &v1.ServerReflectionResponse_AllExtensionNumbersResponse{AllExtensionNumbersResponse: &v1.ExtensionNumberResponse{
		BaseTypeName:    name,
		ExtensionNumber: nums,
	}}, nil
}

func (r *reflector) listServices() *v1.ServerReflectionResponse_ListServicesResponse {
	var names []string
	if r.services != nil {
		for name := range r.services.GetServiceInfo() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	list := make([]*v1.ServiceResponse, len(names))
	for i, name := range names {
		list[i] = &v1.ServiceResponse{Name: name}
	}
	return &v1.ServerReflectionResponse_ListServicesResponse{ListServicesResponse: &v1.ListServiceResponse{Service: list}}
}

// fileWithDependencies answers with fd, which was looked up as what, and
// those of its transitive dependencies that the stream has not sent yet
// (sent), breadth first; it adds them to sent. fd itself is always
// sent: the client asked for it. A file the stream sent went out with
// its dependencies, so the walk does not go through it again; a
// dependency the resolver does not have (a placeholder) is left out.
func (r *reflector) fileWithDependencies(fd protoreflect.FileDescriptor, sent map[string]bool, what string) (*v1.ServerReflectionResponse_FileDescriptorResponse, *requestError) {
	if fd.IsPlaceholder() {
		return nil, &requestError{codes.NotFound, what + " not found (only its name is known)"}
	}
	var out [][]byte
	var paths []string // of the files in out
	queued := map[string]bool{fd.Path(): true}
	for queue := []protoreflect.FileDescriptor{fd}; len(queue) > 0; queue = queue[1:] {
		f := queue[0]
		if f != fd && sent[f.Path()] {
			continue
		}
		b, err := proto.Marshal(protodesc.ToFileDescriptorProto(f))
		if err != nil {
			return nil, &requestError{codes.Internal, fmt.Sprintf("encoding the descriptor of %q: %v", f.Path(), err)}
		}
		out = append(out, b)
		paths = append(paths, f.Path())
		imports := f.Imports()
		for i := range imports.Len() {
			dep := imports.Get(i).FileDescriptor
			if !dep.IsPlaceholder() && !queued[dep.Path()] {
				queued[dep.Path()] = true
				queue = append(queue, dep)
			}
		}
	}
	// Marked only once every file is encoded: a failure sends nothing.
	for _, p := range paths {
		sent[p] = true
	}
	return &v1.ServerReflectionResponse_FileDescriptorResponse{FileDescriptorResponse: &v1.FileDescriptorResponse{
		FileDescriptorProto: out,
	}}, nil
}
