// Package cases implements the client side of the gRPC interop test cases
// (https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md)
// on h2rpc, for the interop client (test/interop/client) and the
// in-process tests of test/interop.
//
// Each case makes its calls on the channel of an Env and checks what the
// descriptions say a client asserts; it returns an error saying what
// differed, nil when the case passed.
package cases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

// Sizes the descriptions fix.
const (
	largeReqSize  = 271828
	largeRespSize = 314159
)

var (
	reqSizes  = []int{27182, 8, 1828, 45904}
	respSizes = []int{31415, 9, 2653, 58979}
)

// The metadata of custom_metadata, echoed by the server.
const (
	initialMetadataKey    = "x-grpc-test-echo-initial"
	initialMetadataValue  = "test_initial_metadata_value"
	trailingMetadataKey   = "x-grpc-test-echo-trailing-bin"
	trailingMetadataValue = "\x0a\x0b\x0a\x0b\x0a\x0b"
)

// Compressor is the compressor the compression cases use.
const Compressor = "gzip"

// Env is what a case runs with.
type Env struct {
	// Conn is the channel every case but channel_soak calls on.
	Conn *rpc.ClientConn
	// Dial opens a new channel to the same server with the same options,
	// for channel_soak, which uses one channel per iteration.
	Dial func() (*rpc.ClientConn, error)
	// Soak configures rpc_soak and channel_soak.
	Soak SoakConfig
	// Logf, if set, receives progress lines (soak iterations, and what
	// LenientCompression let pass).
	Logf func(format string, args ...any)
	// LenientCompression is for servers that implement neither the
	// CompressedRequest nor the CompressedResponse feature of the
	// descriptions, such as grpc-go's interop server, which ignores
	// expect_compressed and response_compressed and has no gzip
	// decompressor registered. The four compression cases then still
	// make every call and check every other status and payload, but only
	// log, instead of failing on, what such a server cannot do: refuse
	// the feature probe (an uncompressed request with
	// expect_compressed=true) with INVALID_ARGUMENT, accept a
	// gzip-compressed request (it may answer UNIMPLEMENTED), and set the
	// compressed flag of a response as asked.
	LenientCompression bool
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// Names lists every case, in the order of the descriptions.
var Names = []string{
	"empty_unary",
	"large_unary",
	"client_compressed_unary",
	"server_compressed_unary",
	"client_streaming",
	"client_compressed_streaming",
	"server_streaming",
	"server_compressed_streaming",
	"ping_pong",
	"empty_stream",
	"timeout_on_sleeping_server",
	"cancel_after_begin",
	"cancel_after_first_response",
	"custom_metadata",
	"status_code_and_message",
	"special_status_message",
	"unimplemented_method",
	"unimplemented_service",
	"rpc_soak",
	"channel_soak",
}

var byName = map[string]func(context.Context, *Env) error{
	"empty_unary":                 emptyUnary,
	"large_unary":                 largeUnary,
	"client_compressed_unary":     clientCompressedUnary,
	"server_compressed_unary":     serverCompressedUnary,
	"client_streaming":            clientStreaming,
	"client_compressed_streaming": clientCompressedStreaming,
	"server_streaming":            serverStreaming,
	"server_compressed_streaming": serverCompressedStreaming,
	"ping_pong":                   pingPong,
	"empty_stream":                emptyStream,
	"timeout_on_sleeping_server":  timeoutOnSleepingServer,
	"cancel_after_begin":          cancelAfterBegin,
	"cancel_after_first_response": cancelAfterFirstResponse,
	"custom_metadata":             customMetadata,
	"status_code_and_message":     statusCodeAndMessage,
	"special_status_message":      specialStatusMessage,
	"unimplemented_method":        unimplementedMethod,
	"unimplemented_service":       unimplementedService,
	"rpc_soak":                    rpcSoak,
	"channel_soak":                channelSoak,
	"orca_per_rpc":                orcaPerRPC,
	"orca_oob":                    orcaOOB,
}

// Run runs the case called name. It returns nil when the case passed,
// and an error saying what failed otherwise (also for an unknown name).
func Run(ctx context.Context, name string, env *Env) error {
	f, ok := byName[name]
	if !ok {
		return fmt.Errorf("unsupported test case %q (supported: %s, %s)", name, strings.Join(Names, ", "), strings.Join(ORCANames, ", "))
	}
	if env.Conn == nil && name != "channel_soak" {
		return errors.New("cases: Env.Conn is nil")
	}
	return f(ctx, env)
}

func client(env *Env) testpb.TestServiceClient { return testpb.NewTestServiceClient(env.Conn) }

// newPayload returns a COMPRESSABLE payload of size zeros.
func newPayload(size int) *testpb.Payload {
	return &testpb.Payload{Type: testpb.PayloadType_COMPRESSABLE, Body: make([]byte, size)}
}

// checkPayload checks that p is a COMPRESSABLE payload of size zeros.
func checkPayload(what string, p *testpb.Payload, size int) error {
	if t := p.GetType(); t != testpb.PayloadType_COMPRESSABLE {
		return fmt.Errorf("%s: payload type %v, want COMPRESSABLE", what, t)
	}
	body := p.GetBody()
	if len(body) != size {
		return fmt.Errorf("%s: payload body of %d bytes, want %d", what, len(body), size)
	}
	if i := slices.IndexFunc(body, func(b byte) bool { return b != 0 }); i >= 0 {
		return fmt.Errorf("%s: payload body byte %d is %#x, want zeros", what, i, body[i])
	}
	return nil
}

// wantCode checks that err is a status error with code c.
func wantCode(what string, err error, c codes.Code) error {
	if got := status.Code(err); got != c {
		return fmt.Errorf("%s: got %v (code %v), want code %v", what, err, got, c)
	}
	return nil
}

func boolValue(b bool) *testpb.BoolValue { return &testpb.BoolValue{Value: b} }

func emptyUnary(ctx context.Context, env *Env) error {
	reply, err := client(env).EmptyCall(ctx, &testpb.Empty{})
	if err != nil {
		return fmt.Errorf("EmptyCall: %v", err)
	}
	if !proto.Equal(reply, &testpb.Empty{}) {
		return fmt.Errorf("EmptyCall: got %v, want an empty message", reply)
	}
	return nil
}

func largeUnary(ctx context.Context, env *Env) error {
	reply, err := client(env).UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseSize: largeRespSize,
		Payload:      newPayload(largeReqSize),
	})
	if err != nil {
		return fmt.Errorf("UnaryCall: %v", err)
	}
	return checkPayload("UnaryCall response", reply.GetPayload(), largeRespSize)
}

func clientCompressedUnary(ctx context.Context, env *Env) error {
	tc := client(env)
	req := func(expect bool) *testpb.SimpleRequest {
		return &testpb.SimpleRequest{
			ResponseType:     testpb.PayloadType_COMPRESSABLE,
			ExpectCompressed: boolValue(expect),
			ResponseSize:     largeRespSize,
			Payload:          newPayload(largeReqSize),
		}
	}
	// The feature probe: an uncompressed request that says it is
	// compressed must be refused.
	_, err := tc.UnaryCall(ctx, req(true))
	if err == nil && env.LenientCompression {
		env.logf("feature probe: the server accepted an uncompressed request with expect_compressed=true (no CompressedRequest feature); going on")
	} else if status.Code(err) != codes.InvalidArgument {
		return fmt.Errorf("feature probe (uncompressed request with expect_compressed=true): got %v (code %v), want code InvalidArgument; "+
			"the server does not check that requests arrive compressed", err, status.Code(err))
	}
	reply, err := tc.UnaryCall(ctx, req(true), rpc.UseCompressor(Compressor))
	switch {
	case noDecompressor(env, err):
		env.logf("compressed request: the server cannot decompress %s (%v); going on", Compressor, err)
	case err != nil:
		return fmt.Errorf("compressed request with expect_compressed=true: %v", err)
	default:
		if err := checkPayload("response to the compressed request", reply.GetPayload(), largeRespSize); err != nil {
			return err
		}
	}
	reply, err = tc.UnaryCall(ctx, req(false))
	if err != nil {
		return fmt.Errorf("uncompressed request with expect_compressed=false: %v", err)
	}
	return checkPayload("response to the uncompressed request", reply.GetPayload(), largeRespSize)
}

func serverCompressedUnary(ctx context.Context, env *Env) error {
	tc := client(env)
	for _, compressed := range []bool{true, false} {
		var got bool
		reply, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{
			ResponseType:       testpb.PayloadType_COMPRESSABLE,
			ResponseCompressed: boolValue(compressed),
			ResponseSize:       largeRespSize,
			Payload:            newPayload(largeReqSize),
		}, rpc.ResponseCompressed(&got))
		if err != nil {
			return fmt.Errorf("UnaryCall with response_compressed=%v: %v", compressed, err)
		}
		if got != compressed {
			if !env.LenientCompression {
				return fmt.Errorf("UnaryCall with response_compressed=%v: the response's compressed flag is %v", compressed, got)
			}
			env.logf("UnaryCall with response_compressed=%v: the response's compressed flag is %v (no CompressedResponse feature); going on", compressed, got)
		}
		if err := checkPayload(fmt.Sprintf("response with response_compressed=%v", compressed), reply.GetPayload(), largeRespSize); err != nil {
			return err
		}
	}
	return nil
}

func clientStreaming(ctx context.Context, env *Env) error {
	stream, err := client(env).StreamingInputCall(ctx)
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %v", err)
	}
	sum := 0
	for _, s := range reqSizes {
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: newPayload(s)}); err != nil {
			return fmt.Errorf("StreamingInputCall: sending a request of %d bytes: %v", s, err)
		}
		sum += s
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("StreamingInputCall: CloseAndRecv: %v", err)
	}
	if got := reply.GetAggregatedPayloadSize(); got != int32(sum) {
		return fmt.Errorf("StreamingInputCall: aggregated_payload_size %d, want %d", got, sum)
	}
	return nil
}

func clientCompressedStreaming(ctx context.Context, env *Env) error {
	tc := client(env)
	// The feature probe: an uncompressed message that says it is
	// compressed must be refused.
	probe, err := tc.StreamingInputCall(ctx)
	if err != nil {
		return fmt.Errorf("feature probe: StreamingInputCall: %v", err)
	}
	if err := probe.Send(&testpb.StreamingInputCallRequest{
		ExpectCompressed: boolValue(true),
		Payload:          newPayload(27182),
	}); err != nil && err != io.EOF {
		return fmt.Errorf("feature probe: Send: %v", err)
	}
	_, err = probe.CloseAndRecv()
	if err == nil && env.LenientCompression {
		env.logf("feature probe: the server accepted an uncompressed message with expect_compressed=true (no CompressedRequest feature); going on")
	} else if status.Code(err) != codes.InvalidArgument {
		return fmt.Errorf("feature probe (uncompressed message with expect_compressed=true): got %v (code %v), want code InvalidArgument; "+
			"the server does not check that requests arrive compressed", err, status.Code(err))
	}

	stream, err := tc.StreamingInputCall(ctx, rpc.UseCompressor(Compressor))
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %v", err)
	}
	if err := stream.Send(&testpb.StreamingInputCallRequest{
		ExpectCompressed: boolValue(true),
		Payload:          newPayload(27182),
	}); err != nil && err != io.EOF {
		return fmt.Errorf("sending the compressed message: %v", err)
	}
	if err := rpc.SetMessageCompression(stream.Context(), false); err != nil {
		return err
	}
	if err := stream.Send(&testpb.StreamingInputCallRequest{
		ExpectCompressed: boolValue(false),
		Payload:          newPayload(45904),
	}); err != nil && err != io.EOF {
		return fmt.Errorf("sending the uncompressed message: %v", err)
	}
	reply, err := stream.CloseAndRecv()
	if noDecompressor(env, err) {
		env.logf("compressed stream: the server cannot decompress %s (%v); going on", Compressor, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("CloseAndRecv: %v", err)
	}
	if got := reply.GetAggregatedPayloadSize(); got != 73086 {
		return fmt.Errorf("aggregated_payload_size %d, want 73086", got)
	}
	return nil
}

// noDecompressor reports whether err is a lenient server's refusal of a
// compressed request (UNIMPLEMENTED, as the gRPC compression spec says).
func noDecompressor(env *Env, err error) bool {
	return env.LenientCompression && status.Code(err) == codes.Unimplemented
}

// recvAll receives the responses of a server stream until it ends,
// checking each against the sizes in want and, when compressed is not
// nil, its compressed flag.
func recvAll(env *Env, stream rpc.ServerStreamingClient[testpb.StreamingOutputCallResponse], want []int, compressed []bool) error {
	for i := 0; ; i++ {
		reply, err := stream.Recv()
		if err == io.EOF {
			if i != len(want) {
				return fmt.Errorf("got %d responses, want %d", i, len(want))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("response %d: %v", i, err)
		}
		if i >= len(want) {
			return fmt.Errorf("got more than the %d responses asked for", len(want))
		}
		if err := checkPayload(fmt.Sprintf("response %d", i), reply.GetPayload(), want[i]); err != nil {
			return err
		}
		if compressed != nil {
			if got := rpc.RecvCompressed(stream.Context()); got != compressed[i] {
				if !env.LenientCompression {
					return fmt.Errorf("response %d: compressed flag %v, want %v", i, got, compressed[i])
				}
				env.logf("response %d: compressed flag %v, want %v (no CompressedResponse feature); going on", i, got, compressed[i])
			}
		}
	}
}

func serverStreaming(ctx context.Context, env *Env) error {
	req := &testpb.StreamingOutputCallRequest{ResponseType: testpb.PayloadType_COMPRESSABLE}
	for _, s := range respSizes {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: int32(s)})
	}
	stream, err := client(env).StreamingOutputCall(ctx, req)
	if err != nil {
		return fmt.Errorf("StreamingOutputCall: %v", err)
	}
	if err := recvAll(env, stream, respSizes, nil); err != nil {
		return fmt.Errorf("StreamingOutputCall: %v", err)
	}
	return nil
}

func serverCompressedStreaming(ctx context.Context, env *Env) error {
	stream, err := client(env).StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{
			{Compressed: boolValue(true), Size: 31415},
			{Compressed: boolValue(false), Size: 92653},
		},
	})
	if err != nil {
		return fmt.Errorf("StreamingOutputCall: %v", err)
	}
	if err := recvAll(env, stream, []int{31415, 92653}, []bool{true, false}); err != nil {
		return fmt.Errorf("StreamingOutputCall: %v", err)
	}
	return nil
}

func pingPong(ctx context.Context, env *Env) error {
	stream, err := client(env).FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %v", err)
	}
	for i := range reqSizes {
		req := &testpb.StreamingOutputCallRequest{
			ResponseType:       testpb.PayloadType_COMPRESSABLE,
			ResponseParameters: []*testpb.ResponseParameters{{Size: int32(respSizes[i])}},
			Payload:            newPayload(reqSizes[i]),
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("FullDuplexCall: sending request %d: %v", i, err)
		}
		reply, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("FullDuplexCall: receiving response %d: %v", i, err)
		}
		if err := checkPayload(fmt.Sprintf("FullDuplexCall response %d", i), reply.GetPayload(), respSizes[i]); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall: CloseSend: %v", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("FullDuplexCall: after CloseSend got %v, want the end of the stream (io.EOF)", err)
	}
	return nil
}

func emptyStream(ctx context.Context, env *Env) error {
	stream, err := client(env).FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall: CloseSend: %v", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("FullDuplexCall: got %v, want the end of the stream (io.EOF) with no response", err)
	}
	return nil
}

func timeoutOnSleepingServer(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	stream, err := client(env).FullDuplexCall(ctx)
	if err != nil {
		// The deadline may pass before the stream is open.
		return wantCode("FullDuplexCall", err, codes.DeadlineExceeded)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		Payload:      newPayload(27182),
	}); err != nil && err != io.EOF {
		return wantCode("FullDuplexCall: Send", err, codes.DeadlineExceeded)
	}
	_, err = stream.Recv()
	return wantCode("FullDuplexCall: Recv", err, codes.DeadlineExceeded)
}

func cancelAfterBegin(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, metadata.Pairs("key1", "value1", "key2", "value2")))
	defer cancel()
	stream, err := client(env).StreamingInputCall(ctx)
	if err != nil {
		return fmt.Errorf("StreamingInputCall: %v", err)
	}
	cancel()
	_, err = stream.CloseAndRecv()
	return wantCode("StreamingInputCall cancelled before any message: CloseAndRecv", err, codes.Canceled)
}

func cancelAfterFirstResponse(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client(env).FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %v", err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{
		ResponseType:       testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{{Size: 31415}},
		Payload:            newPayload(27182),
	}); err != nil {
		return fmt.Errorf("FullDuplexCall: Send: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		return fmt.Errorf("FullDuplexCall: first Recv: %v", err)
	}
	cancel()
	_, err = stream.Recv()
	return wantCode("FullDuplexCall: Recv after cancelling", err, codes.Canceled)
}

// checkEchoedMetadata checks the metadata custom_metadata expects back.
func checkEchoedMetadata(what string, header, trailer metadata.MD) error {
	if v := header.Get(initialMetadataKey); len(v) != 1 || v[0] != initialMetadataValue {
		return fmt.Errorf("%s: header %s = %q, want exactly [%q]", what, initialMetadataKey, v, initialMetadataValue)
	}
	if v := trailer.Get(trailingMetadataKey); len(v) != 1 || v[0] != trailingMetadataValue {
		return fmt.Errorf("%s: trailer %s = %q, want exactly [%q]", what, trailingMetadataKey, v, trailingMetadataValue)
	}
	return nil
}

func customMetadata(ctx context.Context, env *Env) error {
	tc := client(env)
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(
		initialMetadataKey, initialMetadataValue,
		trailingMetadataKey, trailingMetadataValue,
	))

	var header, trailer metadata.MD
	reply, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseType: testpb.PayloadType_COMPRESSABLE,
		ResponseSize: 1,
		Payload:      newPayload(1),
	}, rpc.Header(&header), rpc.Trailer(&trailer))
	if err != nil {
		return fmt.Errorf("UnaryCall: %v", err)
	}
	if err := checkPayload("UnaryCall response", reply.GetPayload(), 1); err != nil {
		return err
	}
	if err := checkEchoedMetadata("UnaryCall", header, trailer); err != nil {
		return err
	}

	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %v", err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{
		ResponseType:       testpb.PayloadType_COMPRESSABLE,
		ResponseParameters: []*testpb.ResponseParameters{{Size: 1}},
		Payload:            newPayload(1),
	}); err != nil {
		return fmt.Errorf("FullDuplexCall: Send: %v", err)
	}
	streamHeader, err := stream.Header()
	if err != nil {
		return fmt.Errorf("FullDuplexCall: Header: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		return fmt.Errorf("FullDuplexCall: Recv: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall: CloseSend: %v", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		return fmt.Errorf("FullDuplexCall: got %v, want the end of the stream (io.EOF)", err)
	}
	return checkEchoedMetadata("FullDuplexCall", streamHeader, stream.Trailer())
}

// wantStatus checks that err is a status with code c and message msg.
func wantStatus(what string, err error, c codes.Code, msg string) error {
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != c || st.Message() != msg {
		return fmt.Errorf("%s: got %v, want status code %v with message %q", what, err, c, msg)
	}
	return nil
}

func statusCodeAndMessage(ctx context.Context, env *Env) error {
	const (
		code = codes.Unknown // 2
		msg  = "test status message"
	)
	tc := client(env)
	echo := &testpb.EchoStatus{Code: int32(code), Message: msg}
	_, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: echo})
	if err := wantStatus("UnaryCall", err, code, msg); err != nil {
		return err
	}
	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		return fmt.Errorf("FullDuplexCall: %v", err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: echo}); err != nil && err != io.EOF {
		return fmt.Errorf("FullDuplexCall: Send: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("FullDuplexCall: CloseSend: %v", err)
	}
	_, err = stream.Recv()
	return wantStatus("FullDuplexCall", err, code, msg)
}

func specialStatusMessage(ctx context.Context, env *Env) error {
	const (
		code = codes.Unknown // 2
		msg  = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
	)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := client(env).UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseStatus: &testpb.EchoStatus{Code: int32(code), Message: msg},
	})
	return wantStatus("UnaryCall", err, code, msg)
}

func unimplementedMethod(ctx context.Context, env *Env) error {
	_, err := client(env).UnimplementedCall(ctx, &testpb.Empty{})
	return wantCode("TestService/UnimplementedCall", err, codes.Unimplemented)
}

func unimplementedService(ctx context.Context, env *Env) error {
	_, err := testpb.NewUnimplementedServiceClient(env.Conn).UnimplementedCall(ctx, &testpb.Empty{})
	return wantCode("UnimplementedService/UnimplementedCall", err, codes.Unimplemented)
}

// errorsJoin joins the messages of errs on separate lines.
func errorsJoin(errs []string) string {
	var b bytes.Buffer
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e)
	}
	return b.String()
}
