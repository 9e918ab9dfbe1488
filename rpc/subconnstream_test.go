package rpc

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/balancer"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver"
)

// scStreamPolicy is a test policy: one subchannel over all addresses,
// handed to the test on scStreamSubConns once created.
const scStreamPolicy = "test_subconn_stream"

var scStreamSubConns = make(chan balancer.SubConn, 1)

type scStreamBuilder struct{}

func init() { balancer.Register(scStreamBuilder{}) }

func (scStreamBuilder) Name() string { return scStreamPolicy }
func (scStreamBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &scStreamBalancer{cc: cc}
}

type scStreamBalancer struct {
	cc balancer.ClientConn
	sc balancer.SubConn
}

func (b *scStreamBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if b.sc != nil {
		return nil
	}
	var err error
	b.sc, err = b.cc.NewSubConn(s.ResolverState.Addresses, balancer.NewSubConnOptions{StateListener: b.listen})
	if err != nil {
		return err
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: errPicker{balancer.ErrNoSubConnAvailable}})
	b.sc.Connect()
	scStreamSubConns <- b.sc
	return nil
}

func (b *scStreamBalancer) listen(st balancer.SubConnState) {
	if st.ConnectivityState == connectivity.Ready {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: donePicker{b.sc}})
	}
}

func (b *scStreamBalancer) ResolverError(error) {}
func (b *scStreamBalancer) ExitIdle()           {}
func (b *scStreamBalancer) Close()              {}

// foreignSubConn is a SubConn of no channel of this package.
type foreignSubConn struct{}

func (foreignSubConn) Connect()                      {}
func (foreignSubConn) Shutdown()                     {}
func (foreignSubConn) Addresses() []resolver.Address { return nil }

// scStreamClient dials addr with the test policy, counting the calls
// that reach the channel's stream interceptor, and returns the
// subchannel.
func scStreamClient(t *testing.T, addr string, intercepted *atomic.Int32) (*testClient, balancer.SubConn) {
	t.Helper()
	sc := `{"loadBalancingConfig": [{"` + scStreamPolicy + `": {}}]}`
	_, cc, c := manualClient(t, &resolver.State{Addresses: []resolver.Address{{Addr: addr}}, ServiceConfig: parseSC(t, sc)},
		WithStreamInterceptor(func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, streamer Streamer, opts ...CallOption) (ClientStream, error) {
			intercepted.Add(1)
			return streamer(ctx, desc, cc, method, opts...)
		}))
	cc.Connect()
	select {
	case s := <-scStreamSubConns:
		return c, s
	case <-ctxWait(t).Done():
		t.Fatal("the balancer made no subchannel")
		return nil, nil
	}
}

func TestNewSubConnStreamOnReadySubConn(t *testing.T) {
	_, addr := startServer(t, &testService{})
	var intercepted atomic.Int32
	c, sc := scStreamClient(t, addr, &intercepted)
	ctx := ctxWait(t)
	// A wait-for-ready call through the picker: the subchannel is READY
	// once it returns.
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	before := intercepted.Load()
	s, err := NewSubConnStream(ctx, sc, &StreamDesc{}, "/test.v1.Test/Unary")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(wrapperspb.Bytes([]byte("hi"))); err != nil {
		t.Fatal(err)
	}
	out := new(wrapperspb.BytesValue)
	if err := s.RecvMsg(out); err != nil {
		t.Fatal(err)
	}
	if string(out.Value) != "hi" {
		t.Errorf("got %q, want the echo %q", out.Value, "hi")
	}
	if n := intercepted.Load() - before; n != 0 {
		t.Errorf("the channel's stream interceptor ran %d times for NewSubConnStream", n)
	}
}

func TestNewSubConnStreamNotReadyIsUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nobody listens: the subchannel never gets READY
	var intercepted atomic.Int32
	_, sc := scStreamClient(t, addr, &intercepted)
	_, err = NewSubConnStream(ctxWait(t), sc, &StreamDesc{}, "/test.v1.Test/Unary", WaitForReady(true))
	wantCode(t, err, codes.Unavailable)
}

func TestNewSubConnStreamForeignSubConn(t *testing.T) {
	_, err := NewSubConnStream(ctxWait(t), foreignSubConn{}, &StreamDesc{}, "/test.v1.Test/Unary")
	if err == nil {
		t.Fatal("NewSubConnStream on a foreign SubConn: no error")
	}
	wantCode(t, err, codes.InvalidArgument)
}
