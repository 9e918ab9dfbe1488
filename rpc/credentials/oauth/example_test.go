package oauth_test

import (
	"context"
	"crypto/tls"
	"log"
	"time"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/credentials"
	"github.com/h2rpc/h2rpc/rpc/credentials/oauth"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Every call of the channel sends "authorization: Bearer <token>"; the
// channel must use TLS.
func ExampleNewStaticToken() {
	cc, err := rpc.NewClient("api.example.com:443",
		rpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})),
		rpc.WithPerRPCCredentials(oauth.NewStaticToken("my-token")))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	// Or for one call only: rpc.PerRPCCredentials(oauth.NewStaticToken(...)).
}

// Tokens that expire: fetched when needed, reused until shortly before
// they expire, refreshed by one call while the others wait for it.
func ExampleNewTokenSource() {
	fetch := oauth.TokenSourceFunc(func(ctx context.Context) (string, time.Time, error) {
		// Ask the identity provider; here a fixed token valid an hour.
		return "short-lived", time.Now().Add(time.Hour), nil
	})
	cc, err := rpc.NewClient("api.example.com:443",
		rpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})),
		rpc.WithPerRPCCredentials(oauth.NewTokenSource(fetch)))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
}

// On the server, the token is in the incoming metadata of the handler's
// (or an interceptor's) context.
func Example_server() {
	authorize := func(ctx context.Context) bool {
		md, _ := metadata.FromIncomingContext(ctx)
		v := md.Get("authorization")
		return len(v) == 1 && v[0] == "Bearer my-token"
	}
	_ = rpc.UnaryInterceptor(func(ctx context.Context, req any, info *rpc.UnaryServerInfo, h rpc.UnaryHandler) (any, error) {
		if !authorize(ctx) {
			return nil, status.Error(codes.Unauthenticated, "a valid bearer token is required")
		}
		return h(ctx, req)
	})
}
