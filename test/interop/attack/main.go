//go:build linux

// Command attack measures what a hostile client can make an h2rpc server
// hold. It builds the interop server (../server), and for each attack
// starts it as a separate process on loopback, runs a well-behaved client
// making small unary calls on a connection of its own, runs the attack on
// raw HTTP/2 connections for a bounded time while sampling the server's
// RSS (VmRSS, every 50 ms), and prints a markdown table: RSS growth against
// the attack's bound, the bystander's calls and latency, and how the
// server answered. It exits 1 if an attack exceeded its bound, killed the
// server or failed a bystander call.
//
//	go -C test/interop run ./attack [-duration 5s] [-attacks rapid-reset,ping-flood] [-short]
//
// See docs/attacks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each attack lasts (the slow-preface and slow-header-block attacks last at least 12 s, past the server's 10 s time limits, unless -short)")
	list := flag.String("attacks", "", "comma-separated attacks to run (default: all)")
	short := flag.Bool("short", false, "smaller attacks, and time-limit attacks no longer than -duration")
	names := flag.Bool("list", false, "list the attacks and exit")
	flag.Parse()
	if *names {
		for _, a := range attacks() {
			fmt.Printf("%-22s %s\n", a.name, a.what)
		}
		return
	}
	sel, err := selectAttacks(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "h2rpc-attack-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer os.RemoveAll(dir)
	bin, err := buildServer(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	var rs []result
	failed := false
	for _, a := range sel {
		if ctx.Err() != nil {
			break
		}
		r := runAttack(ctx, bin, a, *duration, *short, os.Stderr)
		rs = append(rs, r)
		failed = failed || len(r.failures()) > 0
	}
	fmt.Print(table(rs))
	if failed {
		os.RemoveAll(dir)
		os.Exit(1)
	}
}
