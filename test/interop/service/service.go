// Package service implements grpc.testing.TestService on h2rpc, as the gRPC
// interop test descriptions
// (https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md)
// define the server's features: payloads of the requested size
// (COMPRESSABLE: zeros), echo of the x-grpc-test-echo-initial header and
// x-grpc-test-echo-trailing-bin trailer, EchoStatus, compressed responses
// on request (response_compressed, ResponseParameters.compressed), checks
// of compressed requests (expect_compressed), response intervals,
// UnimplementedCall left unimplemented, and, with RegisterWithMetrics,
// the backend metrics (ORCA) of the orca_per_rpc and orca_oob cases.
//
// The interop server (test/interop/server) serves it; the in-process tests
// of test/interop use it directly.
package service

import (
	"context"
	"io"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/orca"
	"github.com/h2rpc/h2rpc/rpc/status"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// The metadata the server echoes, and the compressor it uses when asked to
// compress a response.
const (
	InitialMetadataKey  = "x-grpc-test-echo-initial"
	TrailingMetadataKey = "x-grpc-test-echo-trailing-bin"
	ResponseCompressor  = "gzip"
)

// TestServer implements grpc.testing.TestService. UnimplementedCall is
// left to the embedded UnimplementedTestServiceServer, so it fails with
// UNIMPLEMENTED.
type TestServer struct {
	testpb.UnimplementedTestServiceServer

	// metrics are the server's backend metrics, which FullDuplexCall
	// records from orca_oob_report; nil when the server does not report
	// them (Register rather than RegisterWithMetrics).
	metrics orca.ServerMetricsRecorder
}

var _ testpb.TestServiceServer = (*TestServer)(nil)

// Register registers a TestServer on s. The UnimplementedService is never
// registered, so calls to it fail with UNIMPLEMENTED.
func Register(s rpc.ServiceRegistrar) {
	testpb.RegisterTestServiceServer(s, &TestServer{})
}

// EmptyCall answers with an empty message.
func (*TestServer) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if err := echoMetadata(ctx, true); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

// UnaryCall answers with the requested payload, compressed when asked, or
// with the requested status.
func (*TestServer) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return unary(ctx, in)
}

// CacheableUnaryCall is UnaryCall.
func (*TestServer) CacheableUnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return unary(ctx, in)
}

func unary(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	// The response's encoding must be chosen before the echoed header
	// goes out.
	compress := in.GetResponseCompressed().GetValue()
	if compress {
		chooseCompressor(ctx)
	}
	if err := rpc.SetMessageCompression(ctx, compress); err != nil {
		return nil, err
	}
	if err := echoMetadata(ctx, true); err != nil {
		return nil, err
	}
	if err := checkCompressed(ctx, in.GetExpectCompressed()); err != nil {
		return nil, err
	}
	if err := echoStatus(in.GetResponseStatus()); err != nil {
		return nil, err
	}
	pl, err := newPayload(in.GetResponseType(), in.GetResponseSize())
	if err != nil {
		return nil, err
	}
	recordCallMetrics(ctx, in)
	return &testpb.SimpleResponse{Payload: pl}, nil
}

// StreamingOutputCall sends one response per response_parameters entry.
func (*TestServer) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream rpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	ctx := stream.Context()
	if wantsCompression(in) {
		chooseCompressor(ctx)
	}
	if err := echoMetadata(ctx, false); err != nil {
		return err
	}
	if err := echoStatus(in.GetResponseStatus()); err != nil {
		return err
	}
	return respond(stream, in)
}

// StreamingInputCall answers with the total size of the payloads received.
func (*TestServer) StreamingInputCall(stream rpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	ctx := stream.Context()
	if err := echoMetadata(ctx, false); err != nil {
		return err
	}
	var sum int
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(sum)})
		}
		if err != nil {
			return err
		}
		if err := checkCompressed(ctx, in.GetExpectCompressed()); err != nil {
			return err
		}
		sum += len(in.GetPayload().GetBody())
	}
}

// FullDuplexCall answers each request at once, recording its
// orca_oob_report first.
func (s *TestServer) FullDuplexCall(stream rpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	ctx := stream.Context()
	// The echoed header goes out at once, as other servers do: a client
	// may wait for it before sending anything.
	if err := echoMetadata(ctx, true); err != nil {
		return err
	}
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(in.GetResponseStatus()); err != nil {
			return err
		}
		s.recordServerMetrics(in)
		if wantsCompression(in) {
			chooseCompressor(ctx)
		}
		if err := respond(stream, in); err != nil {
			return err
		}
	}
}

// HalfDuplexCall receives every request, then sends the responses of each
// in order.
func (*TestServer) HalfDuplexCall(stream rpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	ctx := stream.Context()
	var reqs []*testpb.StreamingOutputCallRequest
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, in)
	}
	for _, in := range reqs {
		if wantsCompression(in) {
			chooseCompressor(ctx)
		}
	}
	if err := echoMetadata(ctx, false); err != nil {
		return err
	}
	for _, in := range reqs {
		if err := echoStatus(in.GetResponseStatus()); err != nil {
			return err
		}
		if err := respond(stream, in); err != nil {
			return err
		}
	}
	return nil
}

// respond sends the responses in's response_parameters ask for, each after
// its interval and compressed when asked.
func respond(stream rpc.ServerStreamingServer[testpb.StreamingOutputCallResponse], in *testpb.StreamingOutputCallRequest) error {
	ctx := stream.Context()
	for _, p := range in.GetResponseParameters() {
		if us := p.GetIntervalUs(); us > 0 {
			t := time.NewTimer(time.Duration(us) * time.Microsecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		pl, err := newPayload(in.GetResponseType(), p.GetSize())
		if err != nil {
			return err
		}
		if err := rpc.SetMessageCompression(ctx, p.GetCompressed().GetValue()); err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: pl}); err != nil {
			return err
		}
	}
	return nil
}

// wantsCompression reports whether a response of in is to be compressed.
func wantsCompression(in *testpb.StreamingOutputCallRequest) bool {
	for _, p := range in.GetResponseParameters() {
		if p.GetCompressed().GetValue() {
			return true
		}
	}
	return false
}

// chooseCompressor makes the responses of ctx's RPC use ResponseCompressor
// when the client accepts it and the headers are not sent yet. Otherwise
// the responses go uncompressed: the interop descriptions let a server
// that cannot compress ignore the request.
func chooseCompressor(ctx context.Context) {
	_ = rpc.SetSendCompressor(ctx, ResponseCompressor)
}

// echoMetadata echoes the initial metadata as a header (sent now when
// sendNow, else with the first response) and the trailing metadata as a
// trailer.
func echoMetadata(ctx context.Context, sendNow bool) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(InitialMetadataKey); len(v) > 0 {
		h := metadata.Pairs(InitialMetadataKey, v[0])
		var err error
		if sendNow {
			err = rpc.SendHeader(ctx, h)
		} else {
			err = rpc.SetHeader(ctx, h)
		}
		if err != nil {
			return err
		}
	}
	if v := md.Get(TrailingMetadataKey); len(v) > 0 {
		if err := rpc.SetTrailer(ctx, metadata.Pairs(TrailingMetadataKey, v[0])); err != nil {
			return err
		}
	}
	return nil
}

// checkCompressed fails with INVALID_ARGUMENT when the request message
// just received was expected compressed and was not.
func checkCompressed(ctx context.Context, expect *testpb.BoolValue) error {
	if expect.GetValue() && !rpc.RecvCompressed(ctx) {
		return status.Error(codes.InvalidArgument, "expected a compressed request message (expect_compressed is true), got an uncompressed one")
	}
	return nil
}

// echoStatus returns the error of a requested status, nil for none or OK.
func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

// newPayload returns a payload of type t with a body of size zeros.
func newPayload(t testpb.PayloadType, size int32) (*testpb.Payload, error) {
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "requested a payload of negative size %d", size)
	}
	if t != testpb.PayloadType_COMPRESSABLE {
		return nil, status.Errorf(codes.InvalidArgument, "unsupported payload type %v", t)
	}
	return &testpb.Payload{Type: t, Body: make([]byte, size)}, nil
}
