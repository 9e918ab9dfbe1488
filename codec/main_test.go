package codec

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watchBuffers records the size of every buffer requested until the test
// ends. Tests that use it must not run in parallel.
func watchBuffers(t *testing.T) *[]int {
	t.Helper()
	var sizes []int
	testHookGetBuffer = func(n int) { sizes = append(sizes, n) }
	t.Cleanup(func() { testHookGetBuffer = nil })
	return &sizes
}
