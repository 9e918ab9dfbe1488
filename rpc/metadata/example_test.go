package metadata_test

import (
	"context"
	"fmt"

	"github.com/h2rpc/h2rpc/rpc/metadata"
)

func Example() {
	// Client side: attach metadata to the context of a call.
	ctx := metadata.NewOutgoingContext(context.Background(),
		metadata.Pairs("Authorization", "Bearer token", "trace-bin", "\x01\x02"))
	ctx = metadata.AppendToOutgoingContext(ctx, "request-id", "42")

	md, _ := metadata.FromOutgoingContext(ctx)
	fmt.Println(md.Get("authorization"), md.Get("request-id"), len(md.Get("trace-bin")[0]))

	// Server side: the transport puts the received metadata on the
	// handler's context.
	in := metadata.NewIncomingContext(context.Background(), md)
	fmt.Println(metadata.ValueFromIncomingContext(in, "Request-Id"))
	// Output:
	// [Bearer token] [42] 2
	// [42]
}

func ExamplePairs() {
	md := metadata.Pairs("k", "a", "K", "b")
	fmt.Println(md["k"])
	// Output: [a b]
}
