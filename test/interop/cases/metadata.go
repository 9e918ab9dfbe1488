package cases

import (
	"context"
	"fmt"
	"strings"

	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/metadata"
)

// ParseAdditionalMetadata parses the interop client's --additional_metadata
// flag: "key:value" pairs separated by ";". A value may hold any character
// but ";" (colons included). It returns the keys and values alternately,
// as metadata.Pairs takes them; nil for "".
func ParseAdditionalMetadata(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var kv []string
	for pair := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("additional metadata %q: %q has no ':' between key and value", s, pair)
		}
		kv = append(kv, k, v)
	}
	return kv, nil
}

// WithAdditionalMetadata returns dial options that add the pairs kv (keys
// and values alternately) to the metadata of every call of a channel.
func WithAdditionalMetadata(kv []string) []rpc.DialOption {
	if len(kv) == 0 {
		return nil
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *rpc.ClientConn, invoker rpc.UnaryInvoker, opts ...rpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, kv...), method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *rpc.StreamDesc, cc *rpc.ClientConn, method string, streamer rpc.Streamer, opts ...rpc.CallOption) (rpc.ClientStream, error) {
		return streamer(metadata.AppendToOutgoingContext(ctx, kv...), desc, cc, method, opts...)
	}
	return []rpc.DialOption{rpc.WithUnaryInterceptor(unary), rpc.WithStreamInterceptor(stream)}
}
