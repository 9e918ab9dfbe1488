package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group, so that a terminal's
// Ctrl-C goes to the harness alone (which then stops its children in
// order), and has the kernel kill the child if the harness dies without
// cleaning up (SIGKILL, a crash).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// setBuildAttr has the kernel kill the go command if the harness dies. It
// stays in the harness's process group, so a Ctrl-C reaches it directly.
func setBuildAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
