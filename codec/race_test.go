//go:build race

package codec

// raceEnabled: under the race detector sync.Pool drops items at random
// and allocations are added, so reuse and allocation counts are not
// checked.
const raceEnabled = true
