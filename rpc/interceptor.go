package rpc

import "context"

// Interceptor chains: the first interceptor added is the outermost, so
// interceptors [a, b] run a, then b, then the call, then b's rest, then
// a's rest. A chain of none is nil, which the callers skip.

func chainUnaryClient(is []UnaryClientInterceptor) UnaryClientInterceptor {
	switch len(is) {
	case 0:
		return nil
	case 1:
		return is[0]
	}
	return func(ctx context.Context, method string, req, reply any, cc *ClientConn, invoker UnaryInvoker, opts ...CallOption) error {
		return is[0](ctx, method, req, reply, cc, unaryClientStep(is, 1, invoker), opts...)
	}
}

// unaryClientStep is the invoker interceptor i-1 calls: interceptor i, or
// the final invoker past the end.
func unaryClientStep(is []UnaryClientInterceptor, i int, final UnaryInvoker) UnaryInvoker {
	if i == len(is) {
		return final
	}
	return func(ctx context.Context, method string, req, reply any, cc *ClientConn, opts ...CallOption) error {
		return is[i](ctx, method, req, reply, cc, unaryClientStep(is, i+1, final), opts...)
	}
}

func chainStreamClient(is []StreamClientInterceptor) StreamClientInterceptor {
	switch len(is) {
	case 0:
		return nil
	case 1:
		return is[0]
	}
	return func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, streamer Streamer, opts ...CallOption) (ClientStream, error) {
		return is[0](ctx, desc, cc, method, streamClientStep(is, 1, streamer), opts...)
	}
}

func streamClientStep(is []StreamClientInterceptor, i int, final Streamer) Streamer {
	if i == len(is) {
		return final
	}
	return func(ctx context.Context, desc *StreamDesc, cc *ClientConn, method string, opts ...CallOption) (ClientStream, error) {
		return is[i](ctx, desc, cc, method, streamClientStep(is, i+1, final), opts...)
	}
}

func chainUnaryServer(is []UnaryServerInterceptor) UnaryServerInterceptor {
	switch len(is) {
	case 0:
		return nil
	case 1:
		return is[0]
	}
	return func(ctx context.Context, req any, info *UnaryServerInfo, handler UnaryHandler) (any, error) {
		return is[0](ctx, req, info, unaryServerStep(is, 1, info, handler))
	}
}

func unaryServerStep(is []UnaryServerInterceptor, i int, info *UnaryServerInfo, final UnaryHandler) UnaryHandler {
	if i == len(is) {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return is[i](ctx, req, info, unaryServerStep(is, i+1, info, final))
	}
}

func chainStreamServer(is []StreamServerInterceptor) StreamServerInterceptor {
	switch len(is) {
	case 0:
		return nil
	case 1:
		return is[0]
	}
	return func(srv any, ss ServerStream, info *StreamServerInfo, handler StreamHandler) error {
		return is[0](srv, ss, info, streamServerStep(is, 1, info, handler))
	}
}

func streamServerStep(is []StreamServerInterceptor, i int, info *StreamServerInfo, final StreamHandler) StreamHandler {
	if i == len(is) {
		return final
	}
	return func(srv any, ss ServerStream) error {
		return is[i](srv, ss, info, streamServerStep(is, i+1, info, final))
	}
}
