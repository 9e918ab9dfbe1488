//go:build race

package transport

// raceEnabled: the race detector adds allocations (and sync.Pool drops
// items at random), so allocation counts are not checked under it.
const raceEnabled = true
