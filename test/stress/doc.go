// Package stress runs a seeded, randomised, bounded workload against an
// h2rpc server over loopback and checks invariants, not timings.
//
// The workload: all four call kinds at once, messages from 0 B to a few
// MiB (mostly small), client cancels and deadlines at random points
// (before sending, mid-stream, after CloseSend), handlers that return an
// error early or stall until the call ends, clients that stop reading for
// a while, small socket buffers (32-96 KiB) on both sides, plaintext or
// TLS (a self-signed certificate made by the test), keepalive with short
// times and a permissive enforcement policy, and, interleaved with the
// calls, GracefulStop (GOAWAY), Stop and a server restart on the same
// address. In about half the seeds every client connection runs out of
// stream ids after a few dozen to a few hundred streams
// (internal/testhook.ClientStreamsBeforeDrain) and must drain onto a new
// connection without failing a call.
//
// Invariants:
//
//  1. Every RPC ends: no call outlives its deadline plus a grace period.
//  2. An OK call delivered exactly what was sent, in order: payloads carry
//     the call id, a sequence number and bytes derived from both; the
//     server echoes or verifies them and the client checks every reply.
//  3. A failed call has a code that fits what happened: Canceled after
//     our cancel, DeadlineExceeded after a deadline, Unavailable around a
//     Stop, GracefulStop or restart, the handler's own code when it
//     returned an error. Anything else fails the run with the seed and
//     the call's history.
//  4. A watchdog fails the run, printing every goroutine's stack, when no
//     RPC completed for several seconds.
//  5. Afterwards goroutines return to their baseline (goleak in TestMain)
//     and the heap returns near its baseline.
//
// Flags: -stress.seed (0 runs the fixed CI seeds) and -stress.duration
// (the run time per seed; short by default so CI stays well under a
// minute with -race). A failure prints the seed and the command that
// reproduces it. A soak run:
//
//	go test -race ./test/stress -run TestStress -stress.seed=12345 -stress.duration=10m
package stress
