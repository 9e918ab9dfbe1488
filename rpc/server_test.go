package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/codes"
)

// connCount is the number of entries in srv's connection table.
func connCount(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.conns)
}

// waitConnCount waits until srv's connection table has n entries, and
// fails the test if that does not happen within longWait.
func waitConnCount(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(longWait)
	for connCount(srv) != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d connections, want %d", connCount(srv), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveTLS starts a TLS server of svc and returns it, its address, the
// channel Serve's result arrives on, and the client TLS config.
func serveTLS(t *testing.T, svc *testService) (*Server, string, <-chan error, *tls.Config) {
	t.Helper()
	cert, pool := testcert.New(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(serverTLS(&tls.Config{Certificates: []tls.Certificate{cert}}), Logger(discardLogger()))
	srv.RegisterService(&testServiceDesc, svc)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String(), served, &tls.Config{RootCAs: pool}
}

func TestTLSConnectionsLeaveNoEntryInTheServer(t *testing.T) {
	srv, addr, _, ccfg := serveTLS(t, &testService{})
	const n = 5
	for i := range n {
		cc, err := newTestClient(addr, clientTLS(ccfg))
		if err != nil {
			t.Fatal(err)
		}
		c := &testClient{cc: cc}
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte{byte(i)})); err != nil {
			t.Fatalf("RPC %d: %v", i, err)
		}
		cc.Close()
	}
	waitConnCount(t, srv, 0)
}

func TestGracefulStopOverTLSFinishesInFlightRPC(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if string(in.Value) == "slow" {
			close(started)
			<-release
		}
		return in, nil
	}}
	srv, addr, served, ccfg := serveTLS(t, svc)
	// Runs before srv.Stop's cleanup, so a failing test does not leave
	// the handler blocked.
	releaseHandler := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHandler)
	_, c := dial(t, addr, clientTLS(ccfg))
	ctx := ctxWait(t)
	result := make(chan error, 1)
	go func() {
		out, err := c.Unary(ctx, wrapperspb.Bytes([]byte("slow")))
		if err == nil && string(out.Value) != "slow" {
			err = errors.New("wrong reply " + string(out.Value))
		}
		result <- err
	}()
	<-started

	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	// Serve returns once the stop began: the listener is closed.
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v during GracefulStop, want nil", err)
	}
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with an RPC in flight")
	case err := <-result:
		t.Fatalf("in-flight RPC ended before its handler returned: %v", err)
	case <-time.After(shortWait):
	}
	// New RPCs are refused: no new connection is accepted.
	_, fresh := dial(t, addr, clientTLS(ccfg))
	_, err := fresh.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)

	releaseHandler()
	if err := <-result; err != nil {
		t.Fatalf("in-flight RPC over TLS: %v, want OK", err)
	}
	select {
	case <-stopped:
	case <-time.After(longWait):
		t.Fatal("GracefulStop never returned")
	}
	if n := connCount(srv); n != 0 {
		t.Fatalf("%d connections left after GracefulStop", n)
	}
}

func TestStopClosesConnectionsInTLSHandshake(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := "Stop"
		if graceful {
			name = "GracefulStop"
		}
		t.Run(name, func(t *testing.T) {
			srv, addr, served, _ := serveTLS(t, &testService{})
			// A client that connects and never sends its ClientHello: the
			// server sits in the handshake.
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			waitConnCount(t, srv, 1)

			stopped := make(chan struct{})
			go func() {
				if graceful {
					srv.GracefulStop()
				} else {
					srv.Stop()
				}
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-time.After(longWait):
				t.Fatal("stop never returned with a connection in its TLS handshake")
			}
			if err := <-served; err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
			if n := connCount(srv); n != 0 {
				t.Fatalf("%d connections left after stop", n)
			}
			// The server closed its side.
			raw.SetReadDeadline(time.Now().Add(longWait))
			_, err = raw.Read(make([]byte, 1))
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatal("the server did not close a connection in its TLS handshake")
			}
			if err == nil {
				t.Fatal("the server sent bytes to a client that never sent its ClientHello")
			}
		})
	}
}

func TestServeReturnsNilWhenStopped(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := "Stop"
		if graceful {
			name = "GracefulStop"
		}
		t.Run(name, func(t *testing.T) {
			lis, addr := listenAt(t, "127.0.0.1:0")
			srv := NewServer()
			srv.RegisterService(&testServiceDesc, &testService{})
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			// One RPC: Serve is accepting.
			_, c := dial(t, addr)
			if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
				t.Fatal(err)
			}
			if graceful {
				srv.GracefulStop()
			} else {
				srv.Stop()
			}
			if err := <-served; err != nil {
				t.Fatalf("Serve returned %v after %s, want nil", err, name)
			}
		})
	}
}

func TestServeAfterStopReturnsErrServerStopped(t *testing.T) {
	srv := NewServer()
	srv.Stop()
	lis, _ := listenAt(t, "127.0.0.1:0")
	if err := srv.Serve(lis); !errors.Is(err, ErrServerStopped) {
		t.Fatalf("Serve after Stop: %v, want ErrServerStopped", err)
	}
	// Serve closed the listener.
	if _, err := lis.Accept(); err == nil {
		t.Fatal("the listener is still open")
	}
}
