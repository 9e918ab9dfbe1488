//go:build !linux

package main

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}

func setBuildAttr(cmd *exec.Cmd) {}
