package resolvers

import "github.com/h2rpc/h2rpc/rpc/resolver"

func init() { resolver.Register(unixAbstractBuilder{}) }

// unixAbstractBuilder resolves "unix-abstract:name" to the socket name
// in Linux's abstract namespace, which has nothing to do with files.
// The address is "@name": Go's net package dials a Unix address that
// starts with '@' in the abstract namespace (it puts the NUL byte the
// kernel expects in place of the '@').
type unixAbstractBuilder struct{}

func (unixAbstractBuilder) Scheme() string { return "unix-abstract" }

func (unixAbstractBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	name, err := socketPath(target)
	if err != nil {
		return nil, err
	}
	return buildStatic(cc, []resolver.Address{{Network: "unix", Addr: "@" + name}})
}
