package rpc

import (
	"crypto/tls"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/codes"
)

func TestTLS(t *testing.T) {
	cert, pool := testcert.New(t)
	_, addr := startServer(t, &testService{}, serverTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	_, c := dial(t, addr, clientTLS(&tls.Config{RootCAs: pool}))
	out, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("secret")))
	if err != nil || string(out.Value) != "secret" {
		t.Fatalf("over TLS: %v, %v", out, err)
	}
	// A plaintext client cannot talk to the TLS server, and a client that
	// does not trust the certificate fails the handshake: UNAVAILABLE.
	_, plain := dial(t, addr, WithMinConnectTimeout(time.Second))
	_, err = plain.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
	_, untrusting := dial(t, addr, clientTLS(&tls.Config{}))
	_, err = untrusting.Unary(ctxWait(t), wrapperspb.Bytes(nil))
	wantCode(t, err, codes.Unavailable)
}
