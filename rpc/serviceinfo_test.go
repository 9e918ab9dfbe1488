package rpc

import (
	"reflect"
	"testing"
)

// TestGetServiceInfoDescribesMethodsStreamKindsAndProtoFile checks that
// GetServiceInfo reports what grpc-go's does: every method, unary ones
// then streaming ones in the order of the ServiceDesc, with which sides
// stream, and the ServiceDesc's Metadata (the .proto file name), which
// reflection needs to find a service's descriptor.
func TestGetServiceInfoDescribesMethodsStreamKindsAndProtoFile(t *testing.T) {
	srv := NewServer()
	desc := testServiceDesc
	desc.Metadata = "test/v1/test.proto"
	srv.RegisterService(&desc, &testService{})
	srv.RegisterService(&cardinalityDesc, nil)

	got := srv.GetServiceInfo()
	want := map[string]ServiceInfo{
		"test.v1.Test": {
			Methods: []MethodInfo{
				{Name: "Unary"},
				{Name: "Download", IsServerStream: true},
				{Name: "Upload", IsClientStream: true},
				{Name: "Bidi", IsClientStream: true, IsServerStream: true},
			},
			Metadata: "test/v1/test.proto",
		},
		"test.v1.Cardinality": {
			Methods: []MethodInfo{
				{Name: "Zero", IsClientStream: true, IsServerStream: true},
				{Name: "Two", IsClientStream: true, IsServerStream: true},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetServiceInfo() = %+v\nwant %+v", got, want)
	}

	// The result is the caller's: changing it changes nothing for the
	// next caller.
	got["test.v1.Test"].Methods[0].Name = "Changed"
	if again := srv.GetServiceInfo(); !reflect.DeepEqual(again, want) {
		t.Errorf("after the caller changed its result, GetServiceInfo() = %+v\nwant %+v", again, want)
	}
}
