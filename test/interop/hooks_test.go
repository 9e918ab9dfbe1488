package interop_test

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	grpctap "google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/rpc/tap"
)

// hooksMethod is the method the hooks tests call; both servers serve it
// with their UnknownServiceHandler.
const hooksMethod = "/h2rpc.interop.Hooks/Echo"

// hookRun is what one server's hooks saw and answered, for a grpc-go
// client's calls.
type hookRun struct {
	addr  string
	mu    sync.Mutex
	md    map[string][]string // the handler's incoming metadata
	codes map[string]string   // per tenant: the client's status code and message
}

// tenantOf returns the single "tenant" value of a request's metadata,
// which both servers' tap hooks decide on: tenant "over" is refused with
// RESOURCE_EXHAUSTED, tenant "unknown" with a plain error, the others
// admitted.
func tenantOf(vals []string) string {
	if len(vals) != 1 {
		return ""
	}
	return vals[0]
}

// grpcGoCalls calls hooksMethod on addr with a grpc-go client, once per
// tenant, and records the outcomes in r.
func grpcGoCalls(t *testing.T, r *hookRun) {
	t.Helper()
	cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	r.codes = map[string]string{}
	for _, tenant := range []string{"ok", "over", "unknown"} {
		ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
		ctx = grpcmetadata.AppendToOutgoingContext(ctx, "tenant", tenant, "k", "v")
		err := cc.Invoke(ctx, hooksMethod, wrapperspb.Bytes([]byte("x")), new(wrapperspb.BytesValue))
		cancel()
		st := grpcstatus.Convert(err)
		r.codes[tenant] = st.Code().String() + ": " + st.Message()
	}
}

// TestServerHooksMatchGrpcGo: a grpc-go client sees the same from our
// server as from a grpc-go server with the same hooks: the unknown
// service handler's incoming metadata holds the same keys (":authority"
// the dialed address, content-type, user-agent; grpc-accept-encoding,
// which grpc-go shows too, is left out on purpose: our client refuses to
// forward grpc- keys), and an InTapHandle refusal ends the call with the
// same status: the error's own, PERMISSION_DENIED for a plain error.
func TestServerHooksMatchGrpcGo(t *testing.T) {
	// grpc-go's server.
	var grpcRun hookRun
	{
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer(
			grpc.InTapHandle(func(ctx context.Context, info *grpctap.Info) (context.Context, error) {
				switch tenantOf(info.Header.Get("tenant")) {
				case "over":
					return nil, grpcstatus.Error(grpccodes.ResourceExhausted, "over quota")
				case "unknown":
					return nil, errors.New("who are you")
				}
				return ctx, nil
			}),
			grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
				md, _ := grpcmetadata.FromIncomingContext(stream.Context())
				grpcRun.mu.Lock()
				grpcRun.md = md
				grpcRun.mu.Unlock()
				in := new(wrapperspb.BytesValue)
				if err := stream.RecvMsg(in); err != nil {
					return err
				}
				return stream.SendMsg(in)
			}))
		served := make(chan error, 1)
		go func() { served <- gs.Serve(lis) }()
		defer func() {
			gs.Stop()
			<-served
		}()
		grpcRun.addr = lis.Addr().String()
		grpcGoCalls(t, &grpcRun)
	}

	// Ours.
	var ourRun hookRun
	{
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := rpc.NewServer(
			rpc.InTapHandle(func(ctx context.Context, info *tap.Info) (context.Context, error) {
				switch tenantOf(info.Header.Get("tenant")) {
				case "over":
					return nil, status.Error(codes.ResourceExhausted, "over quota")
				case "unknown":
					return nil, errors.New("who are you")
				}
				return ctx, nil
			}),
			rpc.UnknownServiceHandler(func(_ any, stream rpc.ServerStream) error {
				md, _ := metadata.FromIncomingContext(stream.Context())
				ourRun.mu.Lock()
				ourRun.md = md
				ourRun.mu.Unlock()
				in := new(wrapperspb.BytesValue)
				if err := stream.RecvMsg(in); err != nil {
					return err
				}
				return stream.SendMsg(in)
			}))
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		defer func() {
			srv.Stop()
			<-served
		}()
		ourRun.addr = lis.Addr().String()
		grpcGoCalls(t, &ourRun)
	}

	keys := func(md map[string][]string) []string {
		var ks []string
		for k := range md {
			if k != "grpc-accept-encoding" {
				ks = append(ks, k)
			}
		}
		sort.Strings(ks)
		return ks
	}
	if g, o := strings.Join(keys(grpcRun.md), " "), strings.Join(keys(ourRun.md), " "); g != o {
		t.Errorf("incoming metadata keys: grpc-go %q, ours %q", g, o)
	}
	for _, r := range []*hookRun{&grpcRun, &ourRun} {
		if a := r.md[":authority"]; len(a) != 1 || a[0] != r.addr {
			t.Errorf("server at %s: :authority %q, want the dialed address", r.addr, a)
		}
	}
	for _, k := range []string{"content-type", "user-agent", "k"} {
		if g, o := strings.Join(grpcRun.md[k], ","), strings.Join(ourRun.md[k], ","); g != o {
			t.Errorf("%s: grpc-go %q, ours %q", k, g, o)
		}
	}
	for _, tenant := range []string{"ok", "over", "unknown"} {
		if g, o := grpcRun.codes[tenant], ourRun.codes[tenant]; g != o {
			t.Errorf("tenant %s: grpc-go's server gives %q, ours %q", tenant, g, o)
		}
	}
	if want := "PermissionDenied: who are you"; ourRun.codes["unknown"] != want {
		t.Errorf("a plain tap error: %q, want %q", ourRun.codes["unknown"], want)
	}
}
