package dns_test

import (
	"fmt"
	"log"
	"net/url"
	"slices"

	"github.com/h2rpc/h2rpc/internal/dnstest"
	"github.com/h2rpc/h2rpc/rpc/resolver"
	"github.com/h2rpc/h2rpc/rpc/resolver/dns"
	"github.com/h2rpc/h2rpc/rpc/serviceconfig"
)

// printingCC is the channel as the example's resolver sees it: it prints
// the addresses of the first state.
type printingCC struct{ done chan struct{} }

func (cc printingCC) UpdateState(s resolver.State) error {
	var addrs []string
	for _, a := range s.Addresses {
		addrs = append(addrs, a.Addr)
	}
	slices.Sort(addrs) // Go's resolver orders them by RFC 6724, which depends on the host's routes
	for _, a := range addrs {
		fmt.Println(a)
	}
	if s.ServiceConfig != nil && s.ServiceConfig.Config != nil {
		fmt.Println("policy:", s.ServiceConfig.Config.LoadBalancing[0].Name)
	}
	close(cc.done)
	return nil
}

func (printingCC) ReportError(err error) { log.Fatal(err) }

func (printingCC) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	c, err := serviceconfig.Parse(js)
	return &serviceconfig.ParseResult{Config: c, Err: err}
}

// A channel normally builds its resolver from the target
// ("dns:///api.example.test:50051", or just "api.example.test:50051").
// Here the resolver is built by hand, and asks a DNS server of the
// example's own (the target's authority) for a name with two A records
// and a service config in its TXT record.
func Example() {
	srv, err := dnstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.SetA("api.example.test", "10.0.0.1", "10.0.0.2")
	srv.SetTXT("_grpc_config.api.example.test",
		`grpc_config=[{"clientLanguage":["go"],"serviceConfig":{"loadBalancingConfig":[{"round_robin":{}}]}}]`)

	// Register this builder in an init function to read service
	// configs from DNS for every channel:
	//	resolver.Register(dns.NewBuilder(dns.WithServiceConfig(true)))
	b := dns.NewBuilder(dns.WithServiceConfig(true))

	u, err := url.Parse("dns://" + srv.Addr() + "/api.example.test:50051")
	if err != nil {
		log.Fatal(err)
	}
	cc := printingCC{done: make(chan struct{})}
	r, err := b.Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
	if err != nil {
		log.Fatal(err)
	}
	<-cc.done
	r.Close()
	// Output:
	// 10.0.0.1:50051
	// 10.0.0.2:50051
	// policy: round_robin
}
