//go:build linux

package netfault

import "syscall"

// sysSetns is setns(2) on linux/arm64.
const sysSetns = syscall.SYS_SETNS
