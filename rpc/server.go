package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/rpc/tap"
	"github.com/h2rpc/h2rpc/transport"
)

// ErrServerStopped is returned by Serve when it is called after Stop or
// GracefulStop. A Serve that is running when the server stops returns nil,
// as in grpc-go.
var ErrServerStopped = errors.New("rpc: the server has been stopped")

// Server serves registered services over HTTP/2 connections accepted from
// listeners. It is safe for concurrent use.
type Server struct {
	opts      serverOptions
	unaryInt  UnaryServerInterceptor
	streamInt StreamServerInterceptor
	tapHook   func(context.Context, *transport.ServerStream) (context.Context, error) // InTapHandle's; nil without

	mu       sync.Mutex
	services map[string]*service // by service name
	lis      map[net.Listener]struct{}
	// conns holds one entry per accepted connection, keyed by the conn
	// Accept returned (never by a TLS wrapper of it), from Accept until
	// serveConn returns. The value is nil while the TLS handshake and
	// HTTP/2 setup run, then the connection's transport.
	conns    map[net.Conn]transport.ServerTransport
	serving  bool
	stopped  bool
	draining bool

	handlers sync.WaitGroup // running handler goroutines
	connWG   sync.WaitGroup // connection goroutines
	done     chan struct{}  // closed by Stop/GracefulStop
}

// service is a registered service.
type service struct {
	impl    any
	methods map[string]*MethodDesc
	streams map[string]*StreamDesc
	info    ServiceInfo // what GetServiceInfo reports
}

// NewServer returns a Server with opts; register services, then Serve.
func NewServer(opts ...ServerOption) *Server {
	s := &Server{
		opts:     defaultServerOptions(),
		services: make(map[string]*service),
		lis:      make(map[net.Listener]struct{}),
		conns:    make(map[net.Conn]transport.ServerTransport),
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o.apply(&s.opts)
	}
	s.unaryInt = chainUnaryServer(s.opts.unaryInts)
	s.streamInt = chainStreamServer(s.opts.streamInts)
	s.tapHook = s.inTap()
	return s
}

// RegisterService registers impl under desc; *Server is the
// ServiceRegistrar generated Register functions and third-party services
// register through. It panics, with a message naming the problem, if impl
// does not implement desc.HandlerType, if the service is registered
// twice, or if it is called once Serve has started: these are programming
// errors, which grpc-go answers with log.Fatalf (the program exits); a
// panic says the same and can be recovered by a test.
func (s *Server) RegisterService(desc *ServiceDesc, impl any) {
	if impl != nil && desc.HandlerType != nil {
		ht := reflect.TypeOf(desc.HandlerType).Elem()
		if !reflect.TypeOf(impl).Implements(ht) {
			panic(fmt.Sprintf("rpc: RegisterService: %T does not implement %v", impl, ht))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		panic(fmt.Sprintf("rpc: RegisterService(%q) after Serve", desc.ServiceName))
	}
	if _, dup := s.services[desc.ServiceName]; dup {
		panic(fmt.Sprintf("rpc: service %q registered twice", desc.ServiceName))
	}
	svc := &service{
		impl:    impl,
		methods: make(map[string]*MethodDesc, len(desc.Methods)),
		streams: make(map[string]*StreamDesc, len(desc.Streams)),
		info:    newServiceInfo(desc),
	}
	for i := range desc.Methods {
		svc.methods[desc.Methods[i].MethodName] = &desc.Methods[i]
	}
	for i := range desc.Streams {
		svc.streams[desc.Streams[i].StreamName] = &desc.Streams[i]
	}
	s.services[desc.ServiceName] = svc
}

// ServiceInfo describes a registered service, as Server.GetServiceInfo
// reports it.
type ServiceInfo struct {
	// Methods are the service's methods: the unary ones, then the
	// streaming ones, each in the order of its ServiceDesc.
	Methods []MethodInfo
	// Metadata is the ServiceDesc's Metadata: for generated services, the
	// name of the .proto file that defines the service, such as
	// "echo/v1/echo.proto".
	Metadata any
}

// MethodInfo describes a method of a registered service.
type MethodInfo struct {
	// Name is the method's name without the service, such as "Unary".
	Name string
	// IsClientStream says whether the client sends a stream of messages.
	IsClientStream bool
	// IsServerStream says whether the server sends a stream of messages.
	IsServerStream bool
}

// newServiceInfo describes desc's service.
func newServiceInfo(desc *ServiceDesc) ServiceInfo {
	ms := make([]MethodInfo, 0, len(desc.Methods)+len(desc.Streams))
	for _, m := range desc.Methods {
		ms = append(ms, MethodInfo{Name: m.MethodName})
	}
	for _, sd := range desc.Streams {
		ms = append(ms, MethodInfo{Name: sd.StreamName, IsClientStream: sd.ClientStreams, IsServerStream: sd.ServerStreams})
	}
	return ServiceInfo{Methods: ms, Metadata: desc.Metadata}
}

// GetServiceInfo describes the registered services, by fully qualified
// name. Reflection (package rpc/reflection) builds its answers from it.
// The result is the caller's to change.
func (s *Server) GetServiceInfo() map[string]ServiceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ServiceInfo, len(s.services))
	for name, svc := range s.services {
		out[name] = ServiceInfo{Methods: slices.Clone(svc.info.Methods), Metadata: svc.info.Metadata}
	}
	return out
}

// Serve accepts connections on lis until Stop or GracefulStop, serving each
// on its own goroutines. It returns nil once the server is stopped (so
// "if err := s.Serve(lis); err != nil" does not fire during a graceful
// drain), ErrServerStopped if the server was stopped before Serve was
// called, or the listener's error. lis is closed when Serve returns.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		lis.Close()
		return ErrServerStopped
	}
	s.serving = true
	s.lis[lis] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lis, lis)
		s.mu.Unlock()
		lis.Close()
	}()

	var tempDelay time.Duration
	for {
		conn, err := lis.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			var ne interface{ Temporary() bool }
			if errors.As(err, &ne) && ne.Temporary() {
				// Back off on resource exhaustion (EMFILE and the like).
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				s.opts.logger.Warn("rpc: accept failed; retrying", "err", err, "delay", tempDelay)
				select {
				case <-time.After(tempDelay):
				case <-s.done:
					return nil
				}
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		tempDelay = 0
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.conns[conn] = nil
		s.connWG.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

// serveConn runs one connection: the credentials' handshake, HTTP/2
// transport, streams.
// raw is the conn Accept returned; it keys the connection's one entry in
// s.conns for the connection's whole life, also when TLS wraps it.
func (s *Server) serveConn(raw net.Conn) {
	defer s.connWG.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, raw)
		s.mu.Unlock()
	}()
	conn := raw
	connDeadline := time.Now().Add(s.opts.connTimeout)
	conn.SetDeadline(connDeadline)
	var authInfo credentials.AuthInfo
	if creds := s.opts.creds; creds != nil {
		// The deadline bounds the handshake; Stop closes raw to end it.
		c, ai, err := creds.ServerHandshake(conn)
		if err != nil {
			s.opts.logger.Debug("rpc: handshake failed", "protocol", creds.Info().SecurityProtocol, "remote", conn.RemoteAddr(), "err", err)
			conn.Close()
			return
		}
		conn, authInfo = c, ai
	}
	st, err := transport.NewServerTransport(conn, transport.ServerConfig{
		MaxConcurrentStreams:  s.opts.maxStreams,
		Keepalive:             s.opts.keepalive,
		KeepalivePolicy:       s.opts.keepalivePolicy,
		InitialWindowSize:     s.opts.windowSize,
		InitialConnWindowSize: s.opts.connWindowSize,
		ReadBufferSize:        s.opts.readBufferSize,
		WriteBufferSize:       s.opts.writeBufferSize,
		WriteQuota:            s.opts.writeQuota,
		TCPKeepalive:          s.opts.tcpKeepalive,
		ConnWriteBudget:       s.opts.connWriteBudget,
		MaxHeaderListSize:     s.opts.maxHeaderListSize,
		PrefaceTimeout:        s.prefaceTimeout(connDeadline),
		HeaderBlockTimeout:    s.opts.headerBlockTimeout,
		Logger:                s.opts.logger,
		InTapHandle:           s.tapHook,
		AuthInfo:              authInfo,
	})
	if err != nil {
		s.opts.logger.Debug("rpc: HTTP/2 setup failed", "remote", conn.RemoteAddr(), "err", err)
		return
	}
	// The transport owns the read deadline: it clears it once the
	// client's SETTINGS arrived.
	conn.SetWriteDeadline(time.Time{})
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		st.Close(ErrServerStopped)
		return
	}
	s.conns[raw] = st
	if s.draining {
		st.Drain("server_stopping")
	}
	s.mu.Unlock()
	st.HandleStreams(context.Background(), func(ss *transport.ServerStream) {
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			s.handleStream(st, ss)
		}()
	})
}

// prefaceTimeout is the transport's limit for the client preface and
// SETTINGS: PrefaceTimeout, but no later than the connection's deadline.
func (s *Server) prefaceTimeout(connDeadline time.Time) time.Duration {
	d := s.opts.prefaceTimeout
	if d <= 0 {
		d = transport.DefaultPrefaceTimeout
	}
	return max(min(d, time.Until(connDeadline)), time.Millisecond)
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// handleStream dispatches a stream to its method.
func (s *Server) handleStream(st transport.ServerTransport, ss *transport.ServerStream) {
	service, method, ok := splitMethod(ss.Method())
	if !ok {
		ss.WriteStatus(status.Newf(codes.Unimplemented, "malformed method name: %q", ss.Method()))
		return
	}
	s.mu.Lock()
	svc := s.services[service]
	s.mu.Unlock()
	if svc != nil {
		if md, ok := svc.methods[method]; ok {
			s.processUnary(ss, svc, md)
			return
		}
		if sd, ok := svc.streams[method]; ok {
			s.processStream(ss, svc.impl, sd)
			return
		}
	}
	// An unknown service, or an unknown method of a known one.
	if sd := s.opts.unknownStream; sd != nil {
		s.processStream(ss, nil, sd)
		return
	}
	if svc != nil {
		ss.WriteStatus(status.Newf(codes.Unimplemented, "unknown method %s for service %s", method, service))
		return
	}
	ss.WriteStatus(status.Newf(codes.Unimplemented, "unknown service %s", service))
}

// inTap adapts the InTapHandle option to the transport's hook; nil
// without one.
func (s *Server) inTap() func(ctx context.Context, ss *transport.ServerStream) (context.Context, error) {
	h := s.opts.inTap
	if h == nil {
		return nil
	}
	return func(ctx context.Context, ss *transport.ServerStream) (tctx context.Context, err error) {
		// The hook runs on the connection's reader goroutine: a panic
		// in it (on metadata a client chose) would end the process. It
		// refuses that RPC with INTERNAL instead, as a handler's panic
		// fails only its own RPC.
		defer func() {
			if r := recover(); r != nil {
				s.opts.logger.Error("rpc: InTapHandle panicked", "method", ss.Method(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				tctx, err = nil, status.Errorf(codes.Internal, "rpc: InTapHandle panicked: %v", r)
			}
		}()
		tctx, err = h(ctx, &tap.Info{FullMethodName: ss.Method(), Header: ss.IncomingMD()})
		if err == nil && tctx == nil {
			// A hook that admits with a nil context: the stream's own.
			return ctx, nil
		}
		return tctx, err
	}
}

// splitMethod splits "/package.Service/Method".
func splitMethod(full string) (service, method string, ok bool) {
	if !strings.HasPrefix(full, "/") {
		return "", "", false
	}
	i := strings.LastIndexByte(full, '/')
	if i <= 0 || i == len(full)-1 {
		return "", "", false
	}
	return full[1:i], full[i+1:], true
}

// Stop closes all listeners and connections at once; open RPCs fail and
// their handlers' contexts are cancelled. It returns once the connections
// are closed; with WaitForHandlers(true) it also waits for every handler
// to return (grpc-go semantics).
func (s *Server) Stop() {
	s.stop(false)
}

// GracefulStop stops accepting connections, sends GOAWAY on every
// connection so clients open no new streams, and waits for the RPCs in
// flight to finish and their handlers to return. A Stop from another
// goroutine closes the connections at once (the way to end a drain that
// takes too long); GracefulStop still returns only once the handlers
// have, as in grpc-go.
func (s *Server) GracefulStop() {
	s.stop(true)
}

func (s *Server) stop(graceful bool) {
	s.mu.Lock()
	first := !s.stopped
	if first {
		s.stopped = true
		close(s.done)
	}
	s.mu.Unlock()
	if first {
		s.notifyStopping()
	}
	s.mu.Lock()
	s.draining = graceful
	for l := range s.lis {
		l.Close()
	}
	for raw, st := range s.conns {
		switch {
		case st == nil:
			raw.Close() // still in its TLS handshake or HTTP/2 setup
		case graceful:
			st.Drain("server_stopping")
		default:
			st.Close(ErrServerStopped)
		}
	}
	s.mu.Unlock()
	s.connWG.Wait()
	if graceful || s.opts.waitForHandlers {
		s.handlers.Wait()
	}
}

// StopNotifier is implemented by a service implementation that wants to
// know when its server begins to stop. The server calls ServerStopping
// once, at the start of the first Stop or GracefulStop, before it sends
// GOAWAY or closes connections. The health server (rpc/health) uses it to
// turn every service NOT_SERVING, so that health watchers see it while
// the RPCs in flight finish.
type StopNotifier interface {
	ServerStopping()
}

// notifyStopping calls ServerStopping on the registered implementations
// that have it, once per service they are registered for.
func (s *Server) notifyStopping() {
	s.mu.Lock()
	var notify []StopNotifier
	for _, svc := range s.services {
		if n, ok := svc.impl.(StopNotifier); ok {
			notify = append(notify, n)
		}
	}
	s.mu.Unlock()
	for _, n := range notify {
		n.ServerStopping()
	}
}
