package interop_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"testing"

	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	grpcmetadata "google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/oauth"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/peer"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// mtlsSetup is a CA, a server certificate for 127.0.0.1 and a client
// certificate with a SPIFFE ID.
type mtlsSetup struct {
	ca         *testcert.CA
	server     tls.Certificate
	client     tls.Certificate
	spiffeID   string
	serverConf *tls.Config // requires and verifies client certificates
	clientConf *tls.Config
}

func newMTLSSetup(t *testing.T) *mtlsSetup {
	ca := testcert.NewCA(t, "interop CA")
	id := &url.URL{Scheme: "spiffe", Host: "example.org", Path: "/client"}
	s := &mtlsSetup{
		ca:       ca,
		server:   ca.Server(),
		client:   ca.Issue(testcert.Leaf{CommonName: "interop-client", Client: true, URIs: []*url.URL{id}}),
		spiffeID: id.String(),
	}
	s.serverConf = &tls.Config{Certificates: []tls.Certificate{s.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	s.clientConf = &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{s.client}}
	return s
}

// grpcToken is grpc-go PerRPCCredentials sending a bearer token.
type grpcToken string

func (g grpcToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(g)}, nil
}

func (grpcToken) RequireTransportSecurity() bool { return true }

// TestH2rpcClientGrpcGoServerMTLSAndToken: our client, with a client
// certificate and a bearer token, calls a grpc-go server that requires
// mTLS; the server sees the client's verified certificate, SPIFFE ID and
// token, and our client's rpc.Peer sees the server's TLSInfo.
func TestH2rpcClientGrpcGoServerMTLSAndToken(t *testing.T) {
	m := newMTLSSetup(t)
	handler := func(_ any, stream grpc.ServerStream) error {
		ctx := stream.Context()
		p, ok := grpcpeer.FromContext(ctx)
		if !ok {
			return grpcstatus.Error(grpccodes.Internal, "no peer")
		}
		ti, ok := p.AuthInfo.(grpccreds.TLSInfo)
		if !ok || len(ti.State.VerifiedChains) == 0 {
			return grpcstatus.Errorf(grpccodes.Unauthenticated, "no verified client certificate (%T)", p.AuthInfo)
		}
		md, _ := grpcmetadata.FromIncomingContext(ctx)
		in := new(wrapperspb.BytesValue)
		if err := stream.RecvMsg(in); err != nil {
			return err
		}
		spiffe := ""
		if ti.SPIFFEID != nil {
			spiffe = ti.SPIFFEID.String()
		}
		auth := md.Get("authorization")
		return stream.SendMsg(wrapperspb.Bytes([]byte(ti.State.VerifiedChains[0][0].Subject.CommonName + "|" + spiffe + "|" + auth[0])))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(grpccreds.NewTLS(m.serverConf)), grpc.UnknownServiceHandler(handler))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	defer func() {
		gs.Stop()
		<-served
	}()

	cc, err := newTestClient(lis.Addr().String(), clientTLSOption(m.clientConf), rpc.WithPerRPCCredentials(oauth.NewStaticToken("t0ken")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	out := new(wrapperspb.BytesValue)
	var server peer.Peer
	if err := cc.Invoke(ctx, "/h2rpc.interop.Creds/Who", wrapperspb.Bytes(nil), out, rpc.Peer(&server)); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if want := "interop-client|" + m.spiffeID + "|Bearer t0ken"; string(out.Value) != want {
		t.Errorf("grpc-go server saw %q, want %q", out.Value, want)
	}
	if ti, ok := server.AuthInfo.(credentials.TLSInfo); !ok || ti.State.PeerCertificates[0].SerialNumber.Cmp(m.server.Leaf.SerialNumber) != 0 {
		t.Errorf("rpc.Peer AuthInfo %v, want the server's certificate", server.AuthInfo)
	}

	// Without a client certificate the grpc-go server refuses us.
	noCert, err := newTestClient(lis.Addr().String(), clientTLSOption(&tls.Config{RootCAs: m.ca.Pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	err = noCert.Invoke(ctx, "/h2rpc.interop.Creds/Who", wrapperspb.Bytes(nil), out)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("call without a client certificate: %v, want UNAVAILABLE", err)
	}
}

// whoServer is our service for grpc-go's client: it answers with what it
// learned of the caller.
type whoServer interface{ who() }

type whoImpl struct{}

func (whoImpl) who() {}

var whoDesc = rpc.ServiceDesc{
	ServiceName: "h2rpc.interop.Creds",
	HandlerType: (*whoServer)(nil),
	Methods: []rpc.MethodDesc{{
		MethodName: "Who",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ rpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			p, ok := peer.FromContext(ctx)
			if !ok {
				return nil, status.Error(codes.Internal, "no peer")
			}
			ti, ok := p.AuthInfo.(credentials.TLSInfo)
			if !ok || len(ti.State.VerifiedChains) == 0 {
				return nil, status.Errorf(codes.Unauthenticated, "no verified client certificate (%T)", p.AuthInfo)
			}
			spiffe := ""
			if ti.SPIFFEID != nil {
				spiffe = ti.SPIFFEID.String()
			}
			md, _ := metadata.FromIncomingContext(ctx)
			auth := md.Get("authorization")
			if len(auth) != 1 {
				return nil, status.Error(codes.Unauthenticated, "no token")
			}
			return wrapperspb.Bytes([]byte(ti.State.VerifiedChains[0][0].Subject.CommonName + "|" + spiffe + "|" + auth[0])), nil
		},
	}},
}

// TestGrpcGoClientH2rpcServerMTLSAndToken: grpc-go's client, with a
// client certificate and a bearer token, calls our server that requires
// mTLS; our handler sees the verified certificate, SPIFFE ID and token
// through peer.FromContext and the metadata.
func TestGrpcGoClientH2rpcServerMTLSAndToken(t *testing.T) {
	m := newMTLSSetup(t)
	addr := startServerWith(t, func(s *rpc.Server) { s.RegisterService(&whoDesc, whoImpl{}) }, serverTLSOption(m.serverConf))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.NewTLS(m.clientConf)), grpc.WithPerRPCCredentials(grpcToken("t0ken")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	out := new(wrapperspb.BytesValue)
	var server grpcpeer.Peer
	if err := cc.Invoke(ctx, "/h2rpc.interop.Creds/Who", wrapperspb.Bytes(nil), out, grpc.Peer(&server)); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if want := "interop-client|" + m.spiffeID + "|Bearer t0ken"; string(out.Value) != want {
		t.Errorf("our server saw %q, want %q", out.Value, want)
	}
	if ti, ok := server.AuthInfo.(grpccreds.TLSInfo); !ok || ti.State.NegotiatedProtocol != "h2" {
		t.Errorf("grpc-go's peer AuthInfo %v", server.AuthInfo)
	}

	// grpc-go without a client certificate is refused by our server.
	noCert, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.NewTLS(&tls.Config{RootCAs: m.ca.Pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	err = noCert.Invoke(ctx, "/h2rpc.interop.Creds/Who", wrapperspb.Bytes(nil), out)
	if grpcstatus.Code(err) != grpccodes.Unavailable {
		t.Errorf("grpc-go call without a client certificate: %v, want UNAVAILABLE", err)
	}
}

// startServerWith starts our server with register's services and opts.
func startServerWith(t *testing.T, register func(*rpc.Server), opts ...rpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(opts...)
	register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}
