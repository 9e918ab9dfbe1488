package reflectcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// grpcurl runs grpcurl with args against nothing but reflection (no
// .proto file is given) and returns its standard output; it fails the
// test when grpcurl fails.
func grpcurl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, grpcurlBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("grpcurl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// payload is a grpc.testing.Payload as grpcurl prints it in JSON.
type payload struct {
	Body []byte `json:"body"` // base64 in JSON, as encoding/json decodes []byte
}

// TestGrpcurlListsDescribesAndCallsOurServer runs grpcurl against our
// interop server with no .proto files: list, describe, a unary call and
// a server-streaming call, all through reflection.
func TestGrpcurlListsDescribesAndCallsOurServer(t *testing.T) {
	grpcurlBin(t) // skip before starting a server when grpcurl cannot be had
	addr := startServer(t)

	t.Run("list", func(t *testing.T) {
		services := strings.Fields(grpcurl(t, "-plaintext", addr, "list"))
		for _, want := range wantServices {
			if !slices.Contains(services, want) {
				t.Errorf("grpcurl list = %q, lacks %s", services, want)
			}
		}
		methods := strings.Fields(grpcurl(t, "-plaintext", addr, "list", "grpc.testing.TestService"))
		for _, want := range []string{"grpc.testing.TestService.UnaryCall", "grpc.testing.TestService.StreamingOutputCall", "grpc.testing.TestService.FullDuplexCall"} {
			if !slices.Contains(methods, want) {
				t.Errorf("grpcurl list grpc.testing.TestService = %q, lacks %s", methods, want)
			}
		}
	})

	t.Run("describe", func(t *testing.T) {
		out := grpcurl(t, "-plaintext", addr, "describe", "grpc.testing.TestService")
		for _, want := range []string{
			"grpc.testing.TestService is a service:",
			"rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse );",
			"rpc StreamingOutputCall ( .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );",
			"rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("grpcurl describe grpc.testing.TestService lacks %q:\n%s", want, out)
			}
		}
		// A message of a dependency (messages.proto), through the files
		// reflection sent.
		out = grpcurl(t, "-plaintext", addr, "describe", "grpc.testing.SimpleRequest")
		if !strings.Contains(out, "grpc.testing.SimpleRequest is a message:") || !strings.Contains(out, "int32 response_size = 2;") {
			t.Errorf("grpcurl describe grpc.testing.SimpleRequest:\n%s", out)
		}
	})

	t.Run("unary call", func(t *testing.T) {
		out := grpcurl(t, "-plaintext", "-d", `{"response_size": 3, "payload": {"body": "aGk="}}`,
			addr, "grpc.testing.TestService/UnaryCall")
		var resp struct{ Payload payload }
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("grpcurl printed %q, not one JSON object: %v", out, err)
		}
		if !bytes.Equal(resp.Payload.Body, make([]byte, 3)) {
			t.Errorf("UnaryCall through grpcurl: payload body %q, want 3 zero bytes; output:\n%s", resp.Payload.Body, out)
		}
	})

	t.Run("server-streaming call", func(t *testing.T) {
		out := grpcurl(t, "-plaintext", "-d", `{"response_parameters": [{"size": 1}, {"size": 2}, {"size": 3}]}`,
			addr, "grpc.testing.TestService/StreamingOutputCall")
		var sizes []int
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var resp struct{ Payload payload }
			err := dec.Decode(&resp)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("grpcurl printed %q, not a series of JSON objects: %v", out, err)
			}
			sizes = append(sizes, len(resp.Payload.Body))
		}
		if !slices.Equal(sizes, []int{1, 2, 3}) {
			t.Errorf("StreamingOutputCall through grpcurl: payload sizes %v, want [1 2 3]; output:\n%s", sizes, out)
		}
	})
}
