//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// cpuTime returns the user and system CPU time of the whole process so
// far (getrusage RUSAGE_SELF): client, server and the benchmark itself.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rss returns the resident set size of the process from /proc/self/statm
// (Linux only).
func rss() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0, fmt.Errorf("statm: %w", err)
	}
	return resident * uint64(os.Getpagesize()), nil
}
