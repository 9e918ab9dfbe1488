//go:build !linux

// Command attack measures what a hostile client can make an h2rpc server
// hold; it reads the server's RSS from /proc, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "attack: Linux only (it reads the server's RSS from /proc)")
	os.Exit(2)
}
