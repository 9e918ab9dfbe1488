package echov1_test

// The generated client and server code of echo.v1.Echo, run against an
// in-memory connection: the client stubs call into the ServiceDesc that
// RegisterEchoServer registers, messages cross as protobuf bytes, and each
// stream's handler runs on its own goroutine.

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memConn is a ServiceRegistrar and a ClientConnInterface in one: calls
// go straight to the service registered on it.
type memConn struct {
	desc        *rpc.ServiceDesc
	impl        any
	interceptor rpc.UnaryServerInterceptor
	// streamErr, when set, ends every stream with this error before the
	// handler runs, as a server does that rejects the call.
	streamErr error

	mu    sync.Mutex
	calls []call
}

// call records what a stub passed to Invoke or NewStream.
type call struct {
	method string
	opts   int
	desc   *rpc.StreamDesc
}

func (c *memConn) RegisterService(desc *rpc.ServiceDesc, impl any) {
	if !reflect.TypeOf(impl).Implements(reflect.TypeOf(desc.HandlerType).Elem()) {
		panic("implementation does not implement the HandlerType")
	}
	c.desc, c.impl = desc, impl
}

func (c *memConn) record(cl call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, cl)
}

func (c *memConn) lastCall() call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[len(c.calls)-1]
}

// transcode copies message from into to through its wire encoding.
func transcode(from, to any) error {
	b, err := proto.Marshal(from.(proto.Message))
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, to.(proto.Message))
}

func (c *memConn) Invoke(ctx context.Context, method string, args, reply any, opts ...rpc.CallOption) error {
	c.record(call{method: method, opts: len(opts)})
	for _, md := range c.desc.Methods {
		if method != "/"+c.desc.ServiceName+"/"+md.MethodName {
			continue
		}
		res, err := md.Handler(c.impl, ctx, func(m any) error { return transcode(args, m) }, c.interceptor)
		if err != nil {
			return err
		}
		return transcode(res, reply)
	}
	return status.Errorf(codes.Unimplemented, "unknown method %s", method)
}

func (c *memConn) NewStream(ctx context.Context, desc *rpc.StreamDesc, method string, opts ...rpc.CallOption) (rpc.ClientStream, error) {
	c.record(call{method: method, opts: len(opts), desc: desc})
	for i := range c.desc.Streams {
		sd := &c.desc.Streams[i]
		if method != "/"+c.desc.ServiceName+"/"+sd.StreamName {
			continue
		}
		ctx, cancel := context.WithCancel(ctx)
		p := &pipe{
			ctx:      ctx,
			cancel:   cancel,
			toServer: make(chan []byte),
			toClient: make(chan []byte),
			done:     make(chan struct{}),
		}
		go func() {
			err := c.streamErr
			if err == nil {
				err = sd.Handler(c.impl, serverEnd{p})
			}
			p.status = err
			close(p.toClient)
			close(p.done)
		}()
		return clientEnd{p}, nil
	}
	return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
}

// pipe connects the two ends of an in-memory stream.
type pipe struct {
	ctx       context.Context
	cancel    context.CancelFunc
	toServer  chan []byte
	toClient  chan []byte // closed when the handler has returned
	done      chan struct{}
	closeOnce sync.Once
	status    error // the handler's error, set before toClient closes
}

func send(ctx context.Context, ch chan<- []byte, done <-chan struct{}, m any) error {
	b, err := proto.Marshal(m.(proto.Message))
	if err != nil {
		return err
	}
	select {
	case ch <- b:
		return nil
	case <-done:
		return io.EOF
	case <-ctx.Done():
		return ctx.Err()
	}
}

type clientEnd struct{ p *pipe }

func (e clientEnd) Header() (metadata.MD, error) { return nil, nil }
func (e clientEnd) Trailer() metadata.MD         { return nil }
func (e clientEnd) Context() context.Context     { return e.p.ctx }

func (e clientEnd) CloseSend() error {
	e.p.closeOnce.Do(func() { close(e.p.toServer) })
	return nil
}

func (e clientEnd) SendMsg(m any) error { return send(e.p.ctx, e.p.toServer, e.p.done, m) }

func (e clientEnd) RecvMsg(m any) error {
	select {
	case b, ok := <-e.p.toClient:
		if !ok {
			e.p.cancel()
			if e.p.status != nil {
				return e.p.status
			}
			return io.EOF
		}
		return proto.Unmarshal(b, m.(proto.Message))
	case <-e.p.ctx.Done():
		return e.p.ctx.Err()
	}
}

type serverEnd struct{ p *pipe }

func (e serverEnd) SetHeader(metadata.MD) error  { return nil }
func (e serverEnd) SendHeader(metadata.MD) error { return nil }
func (e serverEnd) SetTrailer(metadata.MD)       {}
func (e serverEnd) Context() context.Context     { return e.p.ctx }
func (e serverEnd) SendMsg(m any) error          { return send(e.p.ctx, e.p.toClient, nil, m) }

func (e serverEnd) RecvMsg(m any) error {
	select {
	case b, ok := <-e.p.toServer:
		if !ok {
			return io.EOF
		}
		return proto.Unmarshal(b, m.(proto.Message))
	case <-e.p.ctx.Done():
		return e.p.ctx.Err()
	}
}

func newClient(t *testing.T, srv echov1.EchoServer) (echov1.EchoClient, *memConn) {
	t.Helper()
	conn := &memConn{}
	echov1.RegisterEchoServer(conn, srv)
	if conn.desc != &echov1.Echo_ServiceDesc {
		t.Fatal("RegisterEchoServer did not register &Echo_ServiceDesc")
	}
	return echov1.NewEchoClient(conn), conn
}

// checkCall checks the last call of conn: its full method name, and that
// the stub added one call option, rpc.StaticMethod(), to the caller's.
func checkCall(t *testing.T, conn *memConn, method string, callerOpts int) call {
	t.Helper()
	cl := conn.lastCall()
	if cl.method != method {
		t.Errorf("the stub called method %q, want %q", cl.method, method)
	}
	if cl.opts != callerOpts+1 {
		t.Errorf("the stub passed %d call options for the caller's %d; want the caller's and rpc.StaticMethod()", cl.opts, callerOpts)
	}
	return cl
}

func TestUnary(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	res, err := client.Unary(context.Background(), &echov1.EchoRequest{Message: "hi", Payload: []byte{1, 2}}, rpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if res.GetMessage() != "hi" || string(res.GetPayload()) != "\x01\x02" {
		t.Errorf("Unary returned %v", res)
	}
	checkCall(t, conn, "/echo.v1.Echo/Unary", 1)
}

func TestUnaryInterceptor(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	var info *rpc.UnaryServerInfo
	conn.interceptor = func(ctx context.Context, req any, i *rpc.UnaryServerInfo, handler rpc.UnaryHandler) (any, error) {
		info = i
		req.(*echov1.EchoRequest).Message += " (intercepted)"
		return handler(ctx, req)
	}
	res, err := client.Unary(context.Background(), &echov1.EchoRequest{Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetMessage() != "hi (intercepted)" {
		t.Errorf("Unary returned %q; the interceptor's request did not reach the handler", res.GetMessage())
	}
	if info == nil || info.FullMethod != echov1.Echo_Unary_FullMethodName || info.Server != conn.impl {
		t.Errorf("the interceptor got info %+v; want FullMethod %q and the registered server", info, echov1.Echo_Unary_FullMethodName)
	}
}

func TestExpand(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	stream, err := client.Expand(context.Background(), &echov1.ExpandRequest{Message: "x", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, res.GetSequence())
	}
	if !slices.Equal(seqs, []uint64{0, 1, 2}) {
		t.Errorf("Expand sent sequence numbers %v, want [0 1 2]", seqs)
	}
	cl := checkCall(t, conn, "/echo.v1.Echo/Expand", 0)
	if cl.desc != &echov1.Echo_ServiceDesc.Streams[0] {
		t.Errorf("Expand passed StreamDesc %+v, not &Echo_ServiceDesc.Streams[0]", cl.desc)
	}
}

func TestCollect(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	stream, err := client.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		if err := stream.Send(&echov1.EchoRequest{Message: m, Payload: []byte("12")}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	want := &echov1.CollectResponse{Count: 2, Messages: []string{"a", "b"}, PayloadBytes: 4}
	if !proto.Equal(res, want) {
		t.Errorf("Collect returned %v, want %v", res, want)
	}
	cl := checkCall(t, conn, "/echo.v1.Echo/Collect", 0)
	if cl.desc != &echov1.Echo_ServiceDesc.Streams[1] {
		t.Errorf("Collect passed StreamDesc %+v, not &Echo_ServiceDesc.Streams[1]", cl.desc)
	}
}

func TestChat(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	stream, err := client.Chat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"a", "b", "c"} {
		if err := stream.Send(&echov1.EchoRequest{Message: m}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if res.GetMessage() != m || res.GetSequence() != uint64(i) {
			t.Errorf("Chat answered %q with %v", m, res)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after CloseSend returned %v, want io.EOF", err)
	}
	cl := checkCall(t, conn, "/echo.v1.Echo/Chat", 0)
	if cl.desc != &echov1.Echo_ServiceDesc.Streams[2] {
		t.Errorf("Chat passed StreamDesc %+v, not &Echo_ServiceDesc.Streams[2]", cl.desc)
	}
}

// unimplemented implements no method.
type unimplemented struct {
	echov1.UnimplementedEchoServer
}

func TestUnimplemented(t *testing.T) {
	client, _ := newClient(t, unimplemented{})
	ctx := context.Background()
	check := func(method string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("%s returned %v, want code Unimplemented", method, err)
		}
	}

	_, err := client.Unary(ctx, &echov1.EchoRequest{})
	check("Unary", err)

	expand, err := client.Expand(ctx, &echov1.ExpandRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = expand.Recv()
	check("Expand's Recv", err)

	collect, err := client.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = collect.CloseAndRecv()
	check("Collect's CloseAndRecv", err)

	chat, err := client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chat.Recv()
	check("Chat's Recv", err)
}

// TestExpandRejected checks the stub of a server-streaming method when the
// stream ends before the request is sent: SendMsg returns io.EOF, and the
// stub returns the stream, whose Recv returns the status.
func TestExpandRejected(t *testing.T) {
	client, conn := newClient(t, echov1.Service{})
	conn.streamErr = status.Error(codes.PermissionDenied, "no")
	stream, err := client.Expand(context.Background(), &echov1.ExpandRequest{Count: 1})
	if err != nil {
		t.Fatalf("Expand returned %v; want the stream, whose Recv returns the status", err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Recv returned %v, want code PermissionDenied", err)
	}
}

func TestRegisterNilEmbeddedPanics(t *testing.T) {
	type byPointer struct {
		*echov1.UnimplementedEchoServer
	}
	defer func() {
		if recover() == nil {
			t.Error("RegisterEchoServer accepted a nil *UnimplementedEchoServer embedded by pointer")
		}
	}()
	echov1.RegisterEchoServer(&memConn{}, byPointer{})
}

func TestServiceDesc(t *testing.T) {
	d := echov1.Echo_ServiceDesc
	if d.ServiceName != "echo.v1.Echo" || d.Metadata != "echo/v1/echo.proto" {
		t.Errorf("ServiceName %q, Metadata %v", d.ServiceName, d.Metadata)
	}
	if _, ok := d.HandlerType.(*echov1.EchoServer); !ok {
		t.Errorf("HandlerType is %T, want *EchoServer", d.HandlerType)
	}
	if len(d.Methods) != 1 || d.Methods[0].MethodName != "Unary" {
		t.Errorf("Methods = %+v, want Unary only", d.Methods)
	}
	type shape struct {
		name           string
		server, client bool
	}
	var got []shape
	for _, s := range d.Streams {
		got = append(got, shape{s.StreamName, s.ServerStreams, s.ClientStreams})
	}
	want := []shape{{"Expand", true, false}, {"Collect", false, true}, {"Chat", true, true}}
	if !slices.Equal(got, want) {
		t.Errorf("Streams = %+v, want %+v", got, want)
	}
	for name, got := range map[string]string{
		"/echo.v1.Echo/Unary":   echov1.Echo_Unary_FullMethodName,
		"/echo.v1.Echo/Expand":  echov1.Echo_Expand_FullMethodName,
		"/echo.v1.Echo/Collect": echov1.Echo_Collect_FullMethodName,
		"/echo.v1.Echo/Chat":    echov1.Echo_Chat_FullMethodName,
	} {
		if got != name {
			t.Errorf("full method name constant %q, want %q", got, name)
		}
	}
}
