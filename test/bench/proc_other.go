//go:build !unix

package main

import (
	"errors"
	"time"
)

func cpuTime() (time.Duration, error) { return 0, errors.New("getrusage is not available here") }

func rss() (uint64, error) { return 0, errors.New("/proc/self/statm is not available here") }
