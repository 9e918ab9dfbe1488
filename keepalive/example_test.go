package keepalive_test

import (
	"fmt"
	"time"

	"github.com/h2rpc/h2rpc/keepalive"
)

func Example() {
	// A client pinging after 30s of silence, even without streams.
	client := keepalive.ClientParameters{Time: 30 * time.Second, PermitWithoutStream: true}
	fmt.Printf("client: %+v\n", client.Effective())

	// After GOAWAY ENHANCE_YOUR_CALM "too_many_pings", ping half as often.
	fmt.Println("client after too_many_pings:", client.Backoff().Time)

	// A server that recycles connections hourly and closes idle ones.
	server := keepalive.ServerParameters{
		MaxConnectionIdle:     15 * time.Minute,
		MaxConnectionAge:      time.Hour,
		MaxConnectionAgeGrace: 30 * time.Second,
	}
	eff := server.Effective()
	fmt.Println("server ping after:", eff.Time, "timeout:", eff.Timeout)

	// ...which accepts client pings every 20s, with or without streams.
	policy := keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}
	e := keepalive.NewEnforcer(policy)
	start := time.Now()
	for i := range 4 {
		fmt.Println("ping", i, "too many:", e.OnPing(start.Add(time.Duration(i)*30*time.Second), 0))
	}
	// Output:
	// client: {Time:30s Timeout:20s PermitWithoutStream:true}
	// client after too_many_pings: 1m0s
	// server ping after: 2h0m0s timeout: 20s
	// ping 0 too many: false
	// ping 1 too many: false
	// ping 2 too many: false
	// ping 3 too many: false
}

func ExampleEnforcer() {
	e := keepalive.NewEnforcer(keepalive.EnforcementPolicy{}) // MinTime 5 minutes
	start := time.Now()
	for i := range 4 {
		tooMany := e.OnPing(start.Add(time.Duration(i)*time.Second), 1)
		fmt.Println("ping", i, "too many:", tooMany)
	}
	// Output:
	// ping 0 too many: false
	// ping 1 too many: false
	// ping 2 too many: false
	// ping 3 too many: true
}
