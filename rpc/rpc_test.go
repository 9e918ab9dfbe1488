package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

func TestAllCallKinds(t *testing.T) {
	_, addr := startServer(t, &testService{})
	_, c := dial(t, addr)
	ctx := ctxWait(t)

	out, err := c.Unary(ctx, wrapperspb.Bytes([]byte("hello")))
	if err != nil || string(out.Value) != "hello" {
		t.Fatalf("Unary: %v, %v", out, err)
	}

	down, err := c.Download(ctx, wrapperspb.Bytes([]byte("d")))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := down.Recv()
		if err == io.EOF {
			break
		}
		if err != nil || string(m.Value) != "d" {
			t.Fatalf("Download: %v, %v", m, err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("Download: %d messages, want 3", n)
	}

	up, err := c.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		if err := up.Send(wrapperspb.Bytes([]byte(p))); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := up.CloseAndRecv()
	if err != nil || string(sum.Value) != "abc" {
		t.Fatalf("Upload: %v, %v", sum, err)
	}

	bidi, err := c.Bidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		msg := fmt.Sprint("ping ", i)
		if err := bidi.Send(wrapperspb.Bytes([]byte(msg))); err != nil {
			t.Fatal(err)
		}
		m, err := bidi.Recv()
		if err != nil || string(m.Value) != msg {
			t.Fatalf("Bidi round %d: %v, %v", i, m, err)
		}
	}
	bidi.CloseSend()
	if _, err := bidi.Recv(); err != io.EOF {
		t.Fatalf("Bidi end: %v", err)
	}
}

func TestMetadataBothWays(t *testing.T) {
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		SetHeader(ctx, metadata.Pairs("h-text", mdValue(md, "k-text"), "h-bin", mdValue(md, "k-bin")))
		SetTrailer(ctx, metadata.Pairs("t-text", "trailer", "t-bin", "\x00\xff"))
		if ua := mdValue(md, "user-agent"); !strings.Contains(ua, "h2rpc-go") {
			return nil, status.Errorf(codes.InvalidArgument, "user-agent %q", ua)
		}
		return in, nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx := metadata.AppendToOutgoingContext(ctxWait(t), "k-text", "v1", "k-bin", "\x01\x02\xfe")
	var hdr, trl metadata.MD
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), Header(&hdr), Trailer(&trl)); err != nil {
		t.Fatal(err)
	}
	if mdValue(hdr, "h-text") != "v1" || mdValue(hdr, "h-bin") != "\x01\x02\xfe" {
		t.Errorf("header = %v", hdr)
	}
	if mdValue(trl, "t-text") != "trailer" || mdValue(trl, "t-bin") != "\x00\xff" {
		t.Errorf("trailer = %v", trl)
	}
}

func TestStreamHeaderAndTrailer(t *testing.T) {
	svc := &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		s.SendHeader(metadata.Pairs("early", "yes"))
		s.SetTrailer(metadata.Pairs("late", "yes"))
		_, err := s.Recv()
		if err != io.EOF {
			return status.Errorf(codes.Internal, "want EOF, got %v", err)
		}
		return nil
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := s.Header()
	if err != nil || mdValue(hdr, "early") != "yes" {
		t.Fatalf("Header() = %v, %v", hdr, err)
	}
	s.CloseSend()
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv: %v", err)
	}
	if mdValue(s.Trailer(), "late") != "yes" {
		t.Fatalf("Trailer() = %v", s.Trailer())
	}
}

func TestStatusWithDetails(t *testing.T) {
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		st, err := status.New(codes.FailedPrecondition, "quota: 100% used").WithDetails(&errdetails.QuotaFailure{
			Violations: []*errdetails.QuotaFailure_Violation{{Subject: "user:1", Description: "daily limit"}},
		})
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("wrapped: %w", st.Err())
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition {
		t.Fatalf("status %v", st)
	}
	ds := st.Details()
	if len(ds) != 1 {
		t.Fatalf("details %v", ds)
	}
	qf, ok := ds[0].(*errdetails.QuotaFailure)
	if !ok || qf.Violations[0].Subject != "user:1" {
		t.Fatalf("detail %v", ds[0])
	}
}

func TestUnknownServiceAndMethod(t *testing.T) {
	_, addr := startServer(t, &testService{})
	cc, _ := dial(t, addr)
	ctx := ctxWait(t)
	err := cc.Invoke(ctx, "/test.v1.Nope/Unary", wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	wantCode(t, err, codes.Unimplemented)
	if !strings.Contains(status.Convert(err).Message(), "unknown service test.v1.Nope") {
		t.Errorf("message %q", status.Convert(err).Message())
	}
	err = cc.Invoke(ctx, "/test.v1.Test/Nope", wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	wantCode(t, err, codes.Unimplemented)
}

func TestHandlerPanicIsInternalAndServerKeepsServing(t *testing.T) {
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if string(in.Value) == "panic" {
			panic("boom")
		}
		return in, nil
	}}
	_, addr := startServer(t, svc, Logger(discardLogger()))
	_, c := dial(t, addr)
	ctx := ctxWait(t)
	_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("panic")))
	wantCode(t, err, codes.Internal)
	if out, err := c.Unary(ctx, wrapperspb.Bytes([]byte("ok"))); err != nil || string(out.Value) != "ok" {
		t.Fatalf("after panic: %v, %v", out, err)
	}
}

func TestDeadlines(t *testing.T) {
	handlerErr := make(chan error, 1)
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, status.Error(codes.Internal, "no deadline on the server")
		}
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.DeadlineExceeded)
	select {
	case err := <-handlerErr:
		if err == nil {
			t.Fatal("handler context not done")
		}
	case <-time.After(longWait):
		t.Fatal("handler never saw the deadline")
	}
	// An already expired deadline fails before anything is sent.
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	_, err = c.Unary(expired, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.DeadlineExceeded)
}

func TestCancellationBothWays(t *testing.T) {
	// Client cancels: the handler's context ends.
	seen := make(chan error, 1)
	started := make(chan struct{}, 1)
	svc := &testService{bidi: func(s BidiStreamingServer[wrapperspb.BytesValue, wrapperspb.BytesValue]) error {
		started <- struct{}{}
		<-s.Context().Done()
		seen <- s.Context().Err()
		return s.Context().Err()
	}, download: func(in *wrapperspb.BytesValue, s ServerStreamingServer[wrapperspb.BytesValue]) error {
		// Server cancels: it ends the RPC with CANCELLED.
		return status.Error(codes.Canceled, "server gave up")
	}}
	_, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Bidi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(wrapperspb.Bytes(nil))
	<-started
	cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("client Recv after cancel: %v", err)
	}
	select {
	case err := <-seen:
		if err != context.Canceled {
			t.Fatalf("handler ctx err %v", err)
		}
	case <-time.After(longWait):
		t.Fatal("handler never saw the cancellation")
	}
	d, err := c.Download(ctxWait(t), wrapperspb.Bytes(nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Recv()
	wantCode(t, err, codes.Canceled)
}

func TestCompression(t *testing.T) {
	lis, _ := listenAt(t, "127.0.0.1:0")
	counted := &countingListener{Listener: lis}
	srv := NewServer()
	srv.RegisterService(&testServiceDesc, &testService{})
	go srv.Serve(counted)
	defer srv.Stop()
	// Request bytes are counted where the server reads them, response
	// bytes where the client reads them: both are complete when the call
	// returns.
	clientSide := &countingListener{}
	_, c := dial(t, lis.Addr().String(), WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, l: clientSide}, nil
	}))
	ctx := ctxWait(t)
	payload := bytes.Repeat([]byte("compressible "), 10000) // 130 KB
	wire := map[string][2]int64{}
	for _, comp := range []string{"", "gzip"} {
		var opts []CallOption
		if comp != "" {
			opts = append(opts, UseCompressor(comp))
		}
		req0, _ := counted.counts()
		resp0, _ := clientSide.counts()
		out, err := c.Unary(ctx, wrapperspb.Bytes(payload), opts...)
		if err != nil || !bytes.Equal(out.Value, payload) {
			t.Fatalf("compressor %q: %d bytes, %v", comp, len(out.GetValue()), err)
		}
		req1, _ := counted.counts()
		resp1, _ := clientSide.counts()
		wire[comp] = [2]int64{req1 - req0, resp1 - resp0}
	}
	// Request and response both shrink: the server answers in kind.
	if plain, gz := wire[""], wire["gzip"]; gz[0]*10 > plain[0] || gz[1]*10 > plain[1] {
		t.Fatalf("bytes on the wire (request, response): plain %v, gzip %v", plain, gz)
	}
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil), UseCompressor("nope"))
	wantCode(t, err, codes.Internal)
}

// countingListener counts the bytes its connections read and write.
type countingListener struct {
	net.Listener
	in, out atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

func (l *countingListener) counts() (in, out int64) { return l.in.Load(), l.out.Load() }

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.out.Add(int64(n))
	return n, err
}

func TestServerRefusesUnknownEncoding(t *testing.T) {
	_, addr := startServer(t, &testService{})
	ctx := ctxWait(t)
	ct, err := transport.NewClientTransport(ctx, addr, transport.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close(nil)
	s, err := ct.NewStream(ctx, &transport.CallHdr{Method: "/test.v1.Test/Unary", SendCompress: "snappy"})
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte{1, 0, 0, 0, 1}, []byte{0}, transport.WriteOptions{Last: true})
	wantCode(t, s.Status().Err(), codes.Unimplemented)
}

func TestMessageSizes(t *testing.T) {
	_, addr := startServer(t, &testService{}, MaxRecvMsgSize(32<<20), MaxSendMsgSize(32<<20))
	_, c := dial(t, addr, WithDefaultCallOptions(MaxCallRecvMsgSize(32<<20)))
	ctx := ctxWait(t)
	for _, n := range []int{0, 1, 1 << 10, 64 << 10, 1 << 20, 16 << 20} {
		p := bytes.Repeat([]byte{7}, n)
		out, err := c.Unary(ctx, wrapperspb.Bytes(p))
		if err != nil || len(out.Value) != n {
			t.Fatalf("%d bytes: got %d, %v", n, len(out.GetValue()), err)
		}
	}
}

func TestSizeLimits(t *testing.T) {
	_, addr := startServer(t, &testService{}, MaxRecvMsgSize(1<<20))
	_, c := dial(t, addr)
	ctx := ctxWait(t)
	// Over the server's receive limit.
	_, err := c.Unary(ctx, wrapperspb.Bytes(make([]byte, 2<<20)))
	wantCode(t, err, codes.ResourceExhausted)
	// Over the client's send limit.
	_, err = c.Unary(ctx, wrapperspb.Bytes(make([]byte, 2<<10)), MaxCallSendMsgSize(1<<10))
	wantCode(t, err, codes.ResourceExhausted)
	// Over the client's receive limit (default 4 MiB would allow it).
	_, err = c.Unary(ctx, wrapperspb.Bytes(make([]byte, 600<<10)), MaxCallRecvMsgSize(512<<10))
	wantCode(t, err, codes.ResourceExhausted)
	// The connection still works.
	if _, err := c.Unary(ctx, wrapperspb.Bytes([]byte("ok"))); err != nil {
		t.Fatal(err)
	}
}

func TestInterceptorOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	sInt := func(name string) UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *UnaryServerInfo, h UnaryHandler) (any, error) {
			note("server " + name + " before")
			r, err := h(ctx, req)
			note("server " + name + " after")
			return r, err
		}
	}
	cInt := func(name string) UnaryClientInterceptor {
		return func(ctx context.Context, method string, req, reply any, cc *ClientConn, inv UnaryInvoker, opts ...CallOption) error {
			note("client " + name + " before")
			err := inv(ctx, method, req, reply, cc, opts...)
			note("client " + name + " after")
			return err
		}
	}
	_, addr := startServer(t, &testService{}, ChainUnaryInterceptor(sInt("1"), sInt("2")), UnaryInterceptor(sInt("3")))
	_, c := dial(t, addr, WithChainUnaryInterceptor(cInt("1"), cInt("2")), WithUnaryInterceptor(cInt("3")))
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"client 1 before", "client 2 before", "client 3 before",
		"server 1 before", "server 2 before", "server 3 before",
		"server 3 after", "server 2 after", "server 1 after",
		"client 3 after", "client 2 after", "client 1 after",
	}
	if !slices.Equal(order, want) {
		t.Fatalf("order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
}

func TestStreamInterceptors(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	sInt := func(name string) StreamServerInterceptor {
		return func(srv any, ss ServerStream, info *StreamServerInfo, h StreamHandler) error {
			note("server " + name + " " + info.FullMethod)
			return h(srv, ss)
		}
	}
	cInt := func(name string) StreamClientInterceptor {
		return func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, streamer Streamer, opts ...CallOption) (ClientStream, error) {
			note("client " + name + " " + method)
			return streamer(ctx, desc, cc, method, opts...)
		}
	}
	_, addr := startServer(t, &testService{}, ChainStreamInterceptor(sInt("1"), sInt("2")))
	_, c := dial(t, addr, WithChainStreamInterceptor(cInt("1"), cInt("2")))
	s, err := c.Bidi(ctxWait(t))
	if err != nil {
		t.Fatal(err)
	}
	s.CloseSend()
	if _, err := s.Recv(); err != io.EOF {
		t.Fatal(err)
	}
	want := []string{"client 1 /test.v1.Test/Bidi", "client 2 /test.v1.Test/Bidi", "server 1 /test.v1.Test/Bidi", "server 2 /test.v1.Test/Bidi"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %q, want %q", order, want)
	}
}

func TestGracefulStopFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	svc := &testService{unary: func(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
		started <- struct{}{}
		<-release
		return in, nil
	}}
	srv, addr := startServer(t, svc)
	_, c := dial(t, addr)
	ctx := ctxWait(t)
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() {
			out, err := c.Unary(ctx, wrapperspb.Bytes([]byte{byte(i)}))
			if err == nil && (len(out.Value) != 1 || out.Value[0] != byte(i)) {
				err = fmt.Errorf("wrong reply %v", out.Value)
			}
			errs <- err
		}()
	}
	for range n {
		<-started
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with RPCs in flight")
	case <-time.After(shortWait):
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("in-flight RPC: %v", err)
		}
	}
	select {
	case <-stopped:
	case <-time.After(longWait):
		t.Fatal("GracefulStop never returned")
	}
	// New RPCs fail: nothing listens any more.
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
}

func TestReconnectAfterServerRestart(t *testing.T) {
	lis, addr := listenAt(t, "127.0.0.1:0")
	srv := NewServer()
	srv.RegisterService(&testServiceDesc, &testService{})
	go srv.Serve(lis)
	cc, c := dial(t, addr, WithBackoff(BackoffConfig{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond}))
	ctx := ctxWait(t)
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// The channel goes idle or fails; a fail-fast call fails UNAVAILABLE.
	_, err := c.Unary(ctx, wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	// A wait-for-ready call waits for the server to come back.
	lis2, _ := listenAt(t, addr)
	srv2 := NewServer()
	srv2.RegisterService(&testServiceDesc, &testService{})
	go srv2.Serve(lis2)
	defer srv2.Stop()
	if _, err := c.Unary(ctx, wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
		t.Fatalf("after restart: %v (state %v)", err, cc.State())
	}
}

func TestClosedClientConn(t *testing.T) {
	_, addr := startServer(t, &testService{})
	cc, c := dial(t, addr)
	if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil)); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	_, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Canceled)
	if cc.State() != Shutdown {
		t.Fatalf("state %v", cc.State())
	}
}

func TestServerStreamingWithoutRequestIsUnimplemented(t *testing.T) {
	_, addr := startServer(t, &testService{})
	cc, _ := dial(t, addr)
	s, err := cc.NewStream(ctxWait(t), &testServiceDesc.Streams[0], "/test.v1.Test/Download")
	if err != nil {
		t.Fatal(err)
	}
	s.CloseSend()
	err = s.RecvMsg(new(wrapperspb.BytesValue))
	wantCode(t, err, codes.Unimplemented)
}
