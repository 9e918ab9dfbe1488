//go:build !race

package controlbuf

const raceEnabled = false
