package main

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkLoopbackWrite measures the machine's loopback TCP alone: one
// goroutine writes blocks of the given size, another reads them with
// 1 MiB reads and drops them, no framing and no copies in user space. It
// is the ceiling for a stream between two endpoints in one process on
// this machine, before any RPC work shares its two cores:
//
//	go -C test/bench test -run XXX -bench LoopbackWrite -benchtime 2s
func BenchmarkLoopbackWrite(b *testing.B) {
	for _, size := range []int{32 << 10, 256 << 10, 512 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			w, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			r, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan error, 1)
			go func() {
				buf := make([]byte, 1<<20)
				for {
					if _, err := r.Read(buf); err != nil {
						if err == io.EOF {
							err = nil
						}
						drained <- err
						return
					}
				}
			}()
			block := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(block); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			if err := <-drained; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			r.Close()
		})
	}
}
