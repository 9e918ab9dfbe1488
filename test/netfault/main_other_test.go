//go:build !linux

package netfault

import (
	"testing"

	"go.uber.org/goleak"
)

// The fault tests need Linux network namespaces; elsewhere there is
// nothing to run but the leak check.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNeedsLinux(t *testing.T) { t.Skip("skipping: the network-fault tests need Linux") }
