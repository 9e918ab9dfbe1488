// Package metadata holds the custom headers and trailers of an RPC.
//
// Metadata is a multimap from lower-case keys to string values. Keys that
// end in "-bin" carry binary values: the transport base64-encodes them on
// the wire, and the values here are the raw bytes in a string. Keys that
// start with "grpc-" are reserved for the protocol and are not sent.
//
// A client attaches metadata to an outgoing context (NewOutgoingContext,
// AppendToOutgoingContext); a server reads the request's metadata from its
// handler's incoming context (FromIncomingContext).
package metadata

import (
	"context"
	"fmt"
	"strings"
)

// MD is a set of metadata: keys mapped to one or more values. Keys are
// lower-case; the functions and methods of this package lower-case the keys
// they are given. An MD built by hand as a map literal should use lower-case
// keys too.
type MD map[string][]string

// New returns an MD with one value for each key of m, keys lower-cased.
func New(m map[string]string) MD {
	md := make(MD, len(m))
	for k, v := range m {
		k = strings.ToLower(k)
		md[k] = append(md[k], v)
	}
	return md
}

// Pairs returns an MD from alternating keys and values: Pairs(k1, v1, k2,
// v2, ...). Keys are lower-cased; a key given more than once gets all its
// values, in order. It panics if len(kv) is odd.
func Pairs(kv ...string) MD {
	if len(kv)%2 == 1 {
		panic(fmt.Sprintf("metadata: Pairs got an odd number of arguments (%d)", len(kv)))
	}
	md := make(MD, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k := strings.ToLower(kv[i])
		md[k] = append(md[k], kv[i+1])
	}
	return md
}

// Join returns a new MD holding the values of all mds; the values of a key
// present in several are concatenated in argument order.
func Join(mds ...MD) MD {
	n := 0
	for _, md := range mds {
		n += len(md)
	}
	out := make(MD, n)
	for _, md := range mds {
		for k, v := range md {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// Len returns the number of keys in md.
func (md MD) Len() int { return len(md) }

// Copy returns a deep copy of md.
func (md MD) Copy() MD {
	if md == nil {
		return nil
	}
	out := make(MD, len(md))
	for k, v := range md {
		out[k] = copyOf(v)
	}
	return out
}

// Get returns the values of key k (lower-cased). The slice belongs to md.
func (md MD) Get(k string) []string {
	return md[strings.ToLower(k)]
}

// Set replaces the values of key k (lower-cased) with vals. Setting no
// values does nothing; use Delete to remove a key.
func (md MD) Set(k string, vals ...string) {
	if len(vals) == 0 {
		return
	}
	md[strings.ToLower(k)] = vals
}

// Append adds vals to the values of key k (lower-cased). Appending no values
// does nothing.
func (md MD) Append(k string, vals ...string) {
	if len(vals) == 0 {
		return
	}
	k = strings.ToLower(k)
	md[k] = append(md[k], vals...)
}

// Delete removes key k (lower-cased) and its values.
func (md MD) Delete(k string) {
	delete(md, strings.ToLower(k))
}

// copyOf returns a copy of v that does not share its backing array.
func copyOf(v []string) []string {
	if v == nil {
		return nil
	}
	return append(make([]string, 0, len(v)), v...)
}

// copyLower returns a deep copy of md with every key lower-cased.
func copyLower(md MD, extra int) MD {
	out := make(MD, len(md)+extra)
	for k, v := range md {
		k = strings.ToLower(k)
		out[k] = append(out[k], v...)
	}
	return out
}

type (
	incomingKey struct{}
	outgoingKey struct{}
)

// NewIncomingContext returns a copy of ctx carrying md as the metadata
// received from the peer. It is meant for transports and tests; md is
// stored, not copied, and must not be modified afterwards.
func NewIncomingContext(ctx context.Context, md MD) context.Context {
	return context.WithValue(ctx, incomingKey{}, md)
}

// Source is received metadata that is decoded only when asked for, which
// is what a server transport puts in a stream's context: most handlers
// never look at their metadata, and building an MD for every call would
// cost them. Both methods return memory the caller owns.
type Source interface {
	// IncomingMD returns a new MD with all the metadata, lower-case keys.
	IncomingMD() MD
	// IncomingValues returns the values of key, which is lower-case, in
	// a new slice, or nil.
	IncomingValues(key string) []string
}

// NewIncomingContextFromSource returns a copy of ctx carrying src as the
// metadata received from the peer. It is meant for transports.
func NewIncomingContextFromSource(ctx context.Context, src Source) context.Context {
	return context.WithValue(ctx, incomingKey{}, src)
}

// FromIncomingContext returns a copy of the metadata received with the RPC
// of ctx, with lower-case keys, and whether there was any. The caller may
// modify the copy.
func FromIncomingContext(ctx context.Context) (MD, bool) {
	switch v := ctx.Value(incomingKey{}).(type) {
	case MD:
		return copyLower(v, 0), true
	case Source:
		return v.IncomingMD(), true
	}
	return nil, false
}

// ValueFromIncomingContext returns a copy of the values of key (matched
// case-insensitively) in the incoming metadata of ctx, or nil. Unlike
// FromIncomingContext it copies only those values.
func ValueFromIncomingContext(ctx context.Context, key string) []string {
	var md MD
	switch v := ctx.Value(incomingKey{}).(type) {
	case MD:
		md = v
	case Source:
		return v.IncomingValues(strings.ToLower(key))
	default:
		return nil
	}
	key = strings.ToLower(key)
	if v, ok := md[key]; ok {
		return copyOf(v)
	}
	// An MD built by hand may hold keys that are not lower-case.
	var out []string
	for k, v := range md {
		if strings.EqualFold(k, key) {
			out = append(out, v...)
		}
	}
	return out
}

// outgoing is what an outgoing context holds: the MD given to
// NewOutgoingContext and, kept apart as a list, the pairs appended since, so
// that an append costs O(pairs appended) instead of a copy of the whole MD.
// Nodes are immutable once stored in a context, so contexts derived from a
// common parent share its nodes safely.
type outgoing struct {
	md   MD
	kv   []string  // pairs of this append, keys lower-cased; nil in the root
	prev *outgoing // the node this append extends; nil in the root
	n    int       // number of appends up to and including this node
}

// NewOutgoingContext returns a copy of ctx whose outgoing metadata is md,
// replacing any set or appended before. md is stored, not copied; do not
// modify it afterwards.
func NewOutgoingContext(ctx context.Context, md MD) context.Context {
	return context.WithValue(ctx, outgoingKey{}, &outgoing{md: md})
}

// AppendToOutgoingContext returns a copy of ctx with the key-value pairs kv
// added to its outgoing metadata (after any already there). Keys are
// lower-cased. The cost does not depend on how much metadata ctx already
// carries. It panics if len(kv) is odd.
func AppendToOutgoingContext(ctx context.Context, kv ...string) context.Context {
	if len(kv)%2 == 1 {
		panic(fmt.Sprintf("metadata: AppendToOutgoingContext got an odd number of arguments (%d)", len(kv)))
	}
	o := &outgoing{kv: make([]string, len(kv)), n: 1}
	if prev, _ := ctx.Value(outgoingKey{}).(*outgoing); prev != nil {
		o.md, o.prev, o.n = prev.md, prev, prev.n+1
	}
	for i := 0; i < len(kv); i += 2 {
		o.kv[i] = strings.ToLower(kv[i])
		o.kv[i+1] = kv[i+1]
	}
	return context.WithValue(ctx, outgoingKey{}, o)
}

// FromOutgoingContext returns the outgoing metadata of ctx, merged from
// NewOutgoingContext and all AppendToOutgoingContext calls, as a new MD
// with lower-case keys the caller may modify, and whether there was any.
func FromOutgoingContext(ctx context.Context) (MD, bool) {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	if o == nil {
		return nil, false
	}
	extra := 0
	for a := o; a != nil; a = a.prev {
		extra += len(a.kv) / 2
	}
	out := copyLower(o.md, extra)
	for _, kv := range o.appendedPairs() {
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = append(out[kv[i]], kv[i+1])
		}
	}
	return out, true
}

// FromOutgoingContextRaw returns the outgoing metadata of ctx without
// merging: the MD given to NewOutgoingContext (not copied, not to be
// modified; its keys may not be lower-case) and the pairs of each
// AppendToOutgoingContext call in call order, keys lower-cased. It is meant
// for transports that write the metadata out and want to avoid the merge.
func FromOutgoingContextRaw(ctx context.Context) (MD, [][]string, bool) {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	if o == nil {
		return nil, nil, false
	}
	return o.md, o.appendedPairs(), true
}

// appendedPairs returns the appended pairs in call order.
func (o *outgoing) appendedPairs() [][]string {
	if o.n == 0 {
		return nil
	}
	out := make([][]string, o.n)
	for a := o; a != nil && a.n > 0; a = a.prev {
		out[a.n-1] = a.kv
	}
	return out
}
