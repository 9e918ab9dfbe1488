//go:build linux

package netfault

// sysSetns is setns(2) on linux/amd64 (package syscall lacks it there).
const sysSetns = 308
