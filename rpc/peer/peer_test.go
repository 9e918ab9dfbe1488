package peer_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewContextFromContext(t *testing.T) {
	if p, ok := peer.FromContext(context.Background()); ok || p != nil {
		t.Fatalf("peer %v in a bare context", p)
	}
	_, ai, _ := insecure.NewCredentials().ServerHandshake(nil)
	want := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, AuthInfo: ai}
	got, ok := peer.FromContext(peer.NewContext(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("FromContext = %v, %v", got, ok)
	}
	if s := got.String(); !strings.Contains(s, "127.0.0.1:1") || !strings.Contains(s, "insecure") {
		t.Errorf("String %q", s)
	}
	if _, ok := peer.FromContext(peer.NewContext(context.Background(), nil)); ok {
		t.Error("a nil Peer is found")
	}
}
