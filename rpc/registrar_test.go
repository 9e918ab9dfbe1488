package rpc_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// recordingRegistrar is a user's ServiceRegistrar: it records the
// services registered through it and passes them on to a Server.
type recordingRegistrar struct {
	srv   rpc.ServiceRegistrar
	mu    sync.Mutex
	names []string
}

func (r *recordingRegistrar) RegisterService(desc *rpc.ServiceDesc, impl any) {
	r.mu.Lock()
	r.names = append(r.names, desc.ServiceName)
	r.mu.Unlock()
	r.srv.RegisterService(desc, impl)
}

// TestGeneratedRegisterTakesAnyServiceRegistrar: generated Register
// functions take an rpc.ServiceRegistrar, so a wrapper of the user's own
// sees each registration and the server behind it serves the service.
func TestGeneratedRegisterTakesAnyServiceRegistrar(t *testing.T) {
	srv := rpc.NewServer()
	rec := &recordingRegistrar{srv: srv}
	echov1.RegisterEchoServer(rec, echo{})
	if len(rec.names) != 1 || rec.names[0] != "echo.v1.Echo" {
		t.Fatalf("registered %q, want [echo.v1.Echo]", rec.names)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()
	cc, err := newExampleClient(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "caller", "test")
	resp, err := echov1.NewEchoClient(cc).Unary(ctx, &echov1.EchoRequest{Message: "hi"})
	if err != nil || resp.GetMessage() != "hi" {
		t.Fatalf("Unary = %v, %v", resp, err)
	}
}

// notEcho implements nothing of echo.v1.Echo.
type notEcho struct{}

// TestRegisterServiceMisusePanics: registering an implementation of the
// wrong type, a service twice, or after Serve started are programming
// errors: grpc-go stops the program (log.Fatalf), we panic with a message
// that names the problem.
func TestRegisterServiceMisusePanics(t *testing.T) {
	panics := func(t *testing.T, want string, f func()) {
		t.Helper()
		defer func() {
			t.Helper()
			r := recover()
			if msg, _ := r.(string); !strings.Contains(msg, want) {
				t.Errorf("panic %v, want one saying %q", r, want)
			}
		}()
		f()
	}
	t.Run("wrong type", func(t *testing.T) {
		panics(t, "does not implement", func() {
			rpc.NewServer().RegisterService(&echov1.Echo_ServiceDesc, notEcho{})
		})
	})
	t.Run("twice", func(t *testing.T) {
		srv := rpc.NewServer()
		echov1.RegisterEchoServer(srv, echo{})
		panics(t, "registered twice", func() { echov1.RegisterEchoServer(srv, echo{}) })
	})
	t.Run("after Serve", func(t *testing.T) {
		srv := rpc.NewServer()
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		defer func() {
			srv.Stop()
			<-served
		}()
		// An answered call shows Serve has started.
		cc, err := newExampleClient(lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cc.Invoke(ctx, "/no.Such/Method", &echov1.EchoRequest{}, &echov1.EchoResponse{}); status.Code(err) != codes.Unimplemented {
			t.Fatalf("call to an empty server: %v, want UNIMPLEMENTED", err)
		}
		panics(t, "after Serve", func() { echov1.RegisterEchoServer(srv, echo{}) })
	})
}
