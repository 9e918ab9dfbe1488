//go:build linux && !amd64 && !arm64

package netfault

// sysSetns is unknown here: the tests skip.
const sysSetns = 0
