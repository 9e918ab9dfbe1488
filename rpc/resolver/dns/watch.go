package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// dnsResolver watches one name on its own goroutine (watch), the only
// one that looks the name up and calls cc.
type dnsResolver struct {
	b      *Builder
	cc     resolver.ClientConn
	lookup lookuper
	host   string
	port   uint16

	// For the TXT record, when it is read at all.
	serviceConfig bool
	hostname      string
	percentile    int

	ctx        context.Context // ends at Close
	cancel     context.CancelFunc
	resolveNow chan struct{} // one pending request at most
	done       chan struct{} // closed when watch returns
}

// ResolveNow asks for a lookup, served once the minimum interval since
// the last lookup has passed. It does not block; requests made while one
// is pending are served by the same lookup.
func (r *dnsResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.resolveNow <- struct{}{}:
	default:
	}
}

// Close stops the resolver and waits for its goroutine to end: no call
// to cc is made after it returns, but a call in progress finishes first,
// so Close must not be called from inside one of this resolver's calls
// to cc, nor while holding a lock such a call takes.
func (r *dnsResolver) Close() {
	r.cancel()
	<-r.done
}

// watch looks the name up, hands the result to cc, and waits: after a
// success for ResolveNow and the minimum interval, after a failure (of
// the lookup or of cc.UpdateState) for the backoff.
func (r *dnsResolver) watch() {
	defer close(r.done)
	failures := 0
	for {
		// This lookup serves any request made so far.
		select {
		case <-r.resolveNow:
		default:
		}
		start := time.Now()
		state, err := r.resolve()
		if r.ctx.Err() != nil {
			return // closed: say nothing more to cc
		}
		if err != nil {
			r.cc.ReportError(err)
		} else {
			err = r.cc.UpdateState(state)
		}
		if err != nil {
			if !r.sleep(r.b.backoff.Delay(failures)) {
				return
			}
			failures++
			continue
		}
		failures = 0
		select {
		case <-r.ctx.Done():
			return
		case <-r.resolveNow:
		}
		if wait := r.b.minInterval - time.Since(start); wait > 0 && !r.sleep(wait) {
			return
		}
	}
}

// sleep waits for d, or until the resolver is closed (false).
func (r *dnsResolver) sleep(d time.Duration) bool {
	c, stop := r.b.after(d)
	select {
	case <-r.ctx.Done():
		stop()
		return false
	case <-c:
		return true
	}
}

// resolve looks up the name's addresses, and its service config when
// asked to.
func (r *dnsResolver) resolve() (resolver.State, error) {
	var state resolver.State
	ctx, cancel := context.WithTimeout(r.ctx, r.b.lookupTimeout)
	defer cancel()
	ips, err := r.lookup.LookupNetIP(ctx, "ip", r.host)
	if err != nil {
		return state, fmt.Errorf("dns: looking up %q: %w", r.host, err)
	}
	seen := make(map[netip.Addr]bool, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap()
		if seen[ip] {
			continue
		}
		seen[ip] = true
		state.Addresses = append(state.Addresses, resolver.Address{Addr: netip.AddrPortFrom(ip, r.port).String()})
	}
	if r.serviceConfig {
		state.ServiceConfig = r.lookupServiceConfig()
	}
	return state, nil
}

// txtPrefix is the name under which the service config of a host is
// published: "_grpc_config.<host>".
const txtPrefix = "_grpc_config."

// lookupServiceConfig reads the TXT record of the service config: nil
// when there is none, an error result when it cannot be read (the name
// server failed) or parsed.
func (r *dnsResolver) lookupServiceConfig() *serviceconfig.ParseResult {
	ctx, cancel := context.WithTimeout(r.ctx, r.b.lookupTimeout)
	defer cancel()
	name := txtPrefix + r.host
	txts, err := r.lookup.LookupTXT(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil
		}
		return &serviceconfig.ParseResult{Err: fmt.Errorf("dns: looking up the TXT record %q: %w", name, err)}
	}
	return parseTXT(txts, r.hostname, r.percentile, r.cc.ParseServiceConfig)
}
