package rpc

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/internal/dnstest"
	"github.com/h2rpc/h2rpc/keepalive"
	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/connectivity"
	"github.com/h2rpc/h2rpc/rpc/resolver/dns"
)

// listenSamePort listens on one port on each of hosts: DNS gives
// addresses, not ports, so the backends of one name share the target's.
func listenSamePort(t *testing.T, hosts ...string) ([]net.Listener, string) {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		ls := []net.Listener{first}
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(hosts) {
			return ls, port
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatal("no port free on every loopback address")
	return nil, ""
}

// TestDNSRecordChangesMoveTraffic: a round_robin channel to a dns target
// served by a DNS server of the test follows the name's A records as
// they change: a new address gets calls, a removed one gets no more
// once the channel resolved again, and a call in flight on the removed
// one finishes. The backends close their connections every 200 ms
// (MaxConnectionAge), as deployments that want DNS changes picked up
// do: each lost connection makes the channel resolve again.
func TestDNSRecordChangesMoveTraffic(t *testing.T) {
	d := dnstest.New(t)
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	ls, port := listenSamePort(t, hosts...)
	bs := make([]*backend, len(hosts))
	for i, l := range ls {
		b := &backend{addr: l.Addr().String(), held: make(chan struct{}, 16)}
		b.serve(l, KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 200 * time.Millisecond, MaxConnectionAgeGrace: longWait}))
		t.Cleanup(b.stop)
		bs[i] = b
	}
	bs[0].hold = make(chan struct{})
	d.SetA("svc.test", hosts[0], hosts[1])

	cc, c := dial(t, "dns://"+d.Addr()+"/svc.test:"+port,
		WithResolvers(dns.NewBuilder(dns.WithMinResolutionInterval(10*time.Millisecond))),
		WithDefaultServiceConfig(roundRobinSC), fastBackoff, WithLogger(discardLogger()))
	callUntil(t, c, bs[0], bs[1])
	resetHits(bs)
	for range 60 {
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if h := hitsOf(bs); h[0] == 0 || h[1] == 0 || h[2] != 0 {
		t.Fatalf("calls per backend with records %v: %v", hosts[:2], h)
	}

	// A call held on the backend about to be removed.
	// Calls go round until one lands on the holding backend; the call
	// that returns after the test saw it held is that one.
	var sawHeld atomic.Bool
	heldDone := make(chan error, 1)
	go func() {
		for {
			_, err := c.Unary(ctxWait(t), wrapperspb.Bytes([]byte("hold")), WaitForReady(true))
			if err != nil || sawHeld.Load() {
				heldDone <- err
				return
			}
		}
	}()
	select {
	case <-bs[0].held:
		sawHeld.Store(true)
	case err := <-heldDone:
		t.Fatalf("no call held on %s: %v", bs[0].addr, err)
	}

	d.SetA("svc.test", hosts[1], hosts[2])
	waitFor(t, "the channel to drop "+bs[0].addr+" and connect to "+bs[2].addr, func() bool {
		st := subConnStates(cc)
		_, old := st[bs[0].addr]
		_, added := st[bs[2].addr]
		return !old && added
	})
	resetHits(bs)
	for range 60 {
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if h := hitsOf(bs); h[0] != 0 || h[1] == 0 || h[2] == 0 {
		t.Fatalf("calls per backend with records %v: %v", hosts[1:], h)
	}
	// The removed backend's call in flight finishes.
	close(bs[0].hold)
	if err := <-heldDone; err != nil {
		t.Fatalf("the call in flight on the removed backend: %v", err)
	}
	if n := d.Queries("svc.test", dnsmessage.TypeA); n < 2 {
		t.Errorf("%d A queries, want at least 2", n)
	}
}

// TestDNSServiceConfigFromTXTRecord: a dns resolver that reads service
// configs (dns.WithServiceConfig(true)), asked about a name whose
// _grpc_config TXT record chooses round_robin and a 300 ms timeout for
// Unary, gives a channel that balances over every A record and ends a
// call its server holds with DEADLINE_EXCEEDED, the caller's deadline
// being far away.
func TestDNSServiceConfigFromTXTRecord(t *testing.T) {
	d := dnstest.New(t)
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	ls, port := listenSamePort(t, hosts...)
	bs := make([]*backend, len(hosts))
	for i, l := range ls {
		b := &backend{addr: l.Addr().String(), held: make(chan struct{}, 16), hold: make(chan struct{})}
		b.serve(l)
		t.Cleanup(b.stop)
		t.Cleanup(func() { close(b.hold) }) // before stop: held calls return
		bs[i] = b
	}
	d.SetA("svc.test", hosts...)
	d.SetTXT("_grpc_config.svc.test", `grpc_config=[{"serviceConfig":{`+
		`"loadBalancingConfig":[{"round_robin":{}}],`+
		`"methodConfig":[{"name":[{"service":"test.v1.Test","method":"Unary"}],"timeout":"0.3s"}]}}]`)

	cc, c := dial(t, "dns://"+d.Addr()+"/svc.test:"+port,
		WithResolvers(dns.NewBuilder(dns.WithServiceConfig(true))), fastBackoff, WithLogger(discardLogger()))
	cc.Connect()
	// round_robin: a READY subchannel per A record (pick_first, the
	// default, would have one subchannel over the three).
	waitFor(t, "a READY subchannel per A record", func() bool {
		st := subConnStates(cc)
		for _, b := range bs {
			if st[b.addr] != connectivity.Ready {
				return false
			}
		}
		return len(st) == len(bs)
	})
	for range 30 {
		if _, err := c.Unary(ctxWait(t), wrapperspb.Bytes(nil), WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if h := hitsOf(bs); h[0] == 0 || h[1] == 0 || h[2] == 0 {
		t.Errorf("calls per backend %v, want every A record to get some (round_robin)", h)
	}
	// The method's timeout applies: the held call ends, the caller's own
	// deadline is far.
	ctx, cancel := context.WithTimeout(context.Background(), 10*longWait)
	defer cancel()
	_, err := c.Unary(ctx, wrapperspb.Bytes([]byte("hold")))
	wantCode(t, err, codes.DeadlineExceeded)
}
