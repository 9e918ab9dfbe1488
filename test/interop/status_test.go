package interop_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpccodes "google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// grpcGoStatusServer is a one-method service whose handler returns the
// error it is given: code written with grpc-go's status package.
type grpcGoStatusServer interface {
	Fail(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
}

type grpcGoStatusImpl struct{ err error }

func (s grpcGoStatusImpl) Fail(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	return nil, s.err
}

var grpcGoStatusDesc = rpc.ServiceDesc{
	ServiceName: "h2rpc.interop.GrpcGoStatus",
	HandlerType: (*grpcGoStatusServer)(nil),
	Methods: []rpc.MethodDesc{{
		MethodName: "Fail",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ rpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(grpcGoStatusServer).Fail(ctx, in)
		},
	}},
}

func TestHandlerErrorFromGrpcGoStatusKeepsCodeMessageAndDetails(t *testing.T) {
	gs, err := grpcstatus.New(grpccodes.FailedPrecondition, "bucket is locked").
		WithDetails(&errdetails.ErrorInfo{Reason: "LOCKED", Domain: "h2rpc.example"})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer()
	srv.RegisterService(&grpcGoStatusDesc, grpcGoStatusImpl{err: gs.Err()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()
	cc, err := newTestClient(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	err = cc.Invoke(ctx, "/h2rpc.interop.GrpcGoStatus/Fail", wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || st.Message() != "bucket is locked" {
		t.Fatalf("client got %v, want FAILED_PRECONDITION \"bucket is locked\"", err)
	}
	details := st.Details()
	if len(details) != 1 {
		t.Fatalf("details = %v, want one ErrorInfo", details)
	}
	if info, ok := details[0].(*errdetails.ErrorInfo); !ok || info.GetReason() != "LOCKED" || info.GetDomain() != "h2rpc.example" {
		t.Fatalf("detail = %v", details[0])
	}
}
