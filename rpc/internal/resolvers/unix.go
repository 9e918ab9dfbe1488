package resolvers

import "github.com/h2rpc/h2rpc/rpc/resolver"

func init() { resolver.Register(unixBuilder{}) }

// unixBuilder resolves "unix:path" (relative or absolute) and
// "unix:///abs/path" to the Unix socket at that path.
type unixBuilder struct{}

func (unixBuilder) Scheme() string { return "unix" }

func (unixBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	path, err := socketPath(target)
	if err != nil {
		return nil, err
	}
	return buildStatic(cc, []resolver.Address{{Network: "unix", Addr: path}})
}

// socketPath returns the path or name a unix or unix-abstract target
// names: the URI's path as written ("unix:///abs" and "unix:/abs" are
// "/abs"), or its opaque part ("unix:rel/path" is "rel/path").
func socketPath(target resolver.Target) (string, error) {
	if err := noAuthority(target); err != nil {
		return "", err
	}
	path := target.URL.Path
	if path == "" {
		path = target.URL.Opaque
	}
	if path == "" {
		return "", badTarget(target, "no socket path")
	}
	return path, nil
}
