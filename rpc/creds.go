package rpc

import (
	"errors"
	"strings"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// ErrNoTransportSecurity is wrapped by NewClient's error when no
// WithTransportCredentials option was given: plaintext is never chosen
// silently, as in grpc-go.
var ErrNoTransportSecurity = errors.New("rpc: no transport security set (use rpc.WithTransportCredentials(insecure.NewCredentials()) explicitly or set credentials)")

// ErrCredentialsRequireTransportSecurity is wrapped by NewClient's error
// when a WithPerRPCCredentials option requires transport security and the
// transport credentials are insecure (as grpc-go refuses such a channel).
var ErrCredentialsRequireTransportSecurity = errors.New("rpc: the per-RPC credentials require transport security (use rpc.WithTransportCredentials with credentials that provide it, such as credentials.NewTLS)")

// checkCredentials checks the channel's credentials options.
func (o *dialOptions) checkCredentials() error {
	if o.creds == nil {
		return ErrNoTransportSecurity
	}
	if o.creds.Info().SecurityProtocol == "insecure" {
		for _, c := range o.perRPCCreds {
			if c.RequireTransportSecurity() {
				return ErrCredentialsRequireTransportSecurity
			}
		}
	}
	return nil
}

// onTransport runs, for one attempt of the call about to open a stream
// on t, what the call's options ask of the connection: the Peer option
// is filled, and per-RPC credentials add their metadata to the request
// (balancerMD, from the pick, is kept). An error fails the attempt before
// anything is sent. Calls with neither option pay two nil checks.
func (cs *clientStream) onTransport(cc *ClientConn, t transport.ClientTransport, balancerMD metadata.MD) error {
	if p := cs.ci.peer; p != nil {
		p.Addr, p.LocalAddr, p.AuthInfo = t.RemoteAddr(), t.LocalAddr(), t.AuthInfo()
	}
	if len(cc.dopts.perRPCCreds) == 0 && cs.ci.creds == nil {
		return nil
	}
	ai := t.AuthInfo()
	ctx := credentials.NewContextWithRequestInfo(cs.ctx, credentials.RequestInfo{Method: cs.hdr.Method, AuthInfo: ai})
	// The uri names the connection's authority (an address's
	// ServerName may differ from the channel's), as in grpc-go.
	authority := cc.authority
	if a, ok := t.(interface{ Authority() string }); ok {
		authority = a.Authority()
	}
	uri := credsURI(authority, cs.hdr.Method)
	md, _ := metadata.FromOutgoingContext(cs.ctx)
	md = metadata.Join(md, balancerMD)
	add := func(c credentials.PerRPCCredentials) error {
		if c.RequireTransportSecurity() {
			if err := credentials.CheckSecurityLevel(ai, credentials.PrivacyAndIntegrity); err != nil {
				return status.Errorf(codes.Unauthenticated, "rpc: cannot send per-RPC credentials that require transport security on an insecure connection: %v", err)
			}
		}
		kv, err := c.GetRequestMetadata(ctx, uri)
		if err != nil {
			return credsError(err)
		}
		for k, v := range kv {
			k = strings.ToLower(k)
			md[k] = append(md[k], v)
		}
		return nil
	}
	for _, c := range cc.dopts.perRPCCreds {
		if err := add(c); err != nil {
			return err
		}
	}
	if cs.ci.creds != nil {
		if err := add(cs.ci.creds); err != nil {
			return err
		}
	}
	cs.hdr.Metadata = md
	return nil
}

// credsURI is the uri given to GetRequestMetadata, as grpc-go builds it:
// "https://" + the authority without a default port + the service path.
func credsURI(authority, method string) string {
	host := strings.TrimSuffix(authority, ":443")
	i := strings.LastIndexByte(method, '/')
	if i < 0 {
		i = len(method)
	}
	return "https://" + host + method[:i]
}

// credsError is the call's error when GetRequestMetadata fails, as in
// grpc-go: a status error keeps its status (but for the codes
// controlPlaneErr turns INTERNAL); any other error is UNAUTHENTICATED.
// It is never nil.
func credsError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return status.Errorf(codes.Unauthenticated, "rpc: per-RPC credentials failed: %v", err)
	}
	return controlPlaneErr(st, "per-RPC credentials")
}
