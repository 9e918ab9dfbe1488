package netfault

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/h2rpc/h2rpc/keepalive"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	// The partition tests use a client keepalive Time of 1 s, below
	// the 10 s a client may normally ask for.
	keepalive.MinClientTime = time.Second
	if os.Geteuid() == 0 {
		removeStaleNamespaces()
	}
	goleak.VerifyTestMain(m)
}
