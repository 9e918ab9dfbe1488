package metadata

import (
	"context"
	"reflect"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNew(t *testing.T) {
	md := New(map[string]string{"Key1": "v1", "key2": "v2"})
	want := MD{"key1": {"v1"}, "key2": {"v2"}}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("New = %v, want %v", md, want)
	}
	if New(nil).Len() != 0 {
		t.Error("New(nil) not empty")
	}
}

func TestPairs(t *testing.T) {
	md := Pairs("A", "1", "b", "2", "a", "3", "x-bin", "\x00\xff")
	want := MD{"a": {"1", "3"}, "b": {"2"}, "x-bin": {"\x00\xff"}}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("Pairs = %v, want %v", md, want)
	}
	if Pairs().Len() != 0 {
		t.Error("Pairs() not empty")
	}
	defer func() {
		if recover() == nil {
			t.Error("Pairs with odd count did not panic")
		}
	}()
	Pairs("a", "1", "b")
}

func TestJoin(t *testing.T) {
	a := Pairs("k", "1", "x", "a")
	b := Pairs("k", "2", "y", "b")
	got := Join(a, nil, b)
	want := MD{"k": {"1", "2"}, "x": {"a"}, "y": {"b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Join = %v, want %v", got, want)
	}
	// The result shares no arrays with its inputs.
	got["x"][0] = "changed"
	if a["x"][0] != "a" {
		t.Error("Join result aliases its input")
	}
	if Join().Len() != 0 {
		t.Error("Join() not empty")
	}
}

func TestMethods(t *testing.T) {
	md := MD{}
	md.Set("Key", "a", "b")
	if got := md.Get("KEY"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Get after Set = %v", got)
	}
	md.Append("kEy", "c")
	if got := md.Get("key"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("Get after Append = %v", got)
	}
	md.Set("key")
	md.Append("key")
	md.Append("other")
	if md.Len() != 1 || len(md.Get("key")) != 3 {
		t.Errorf("empty Set/Append changed md: %v", md)
	}
	md.Set("key", "z")
	if got := md.Get("key"); !reflect.DeepEqual(got, []string{"z"}) {
		t.Errorf("Set replaced = %v", got)
	}
	if md.Get("missing") != nil {
		t.Error("Get of missing key not nil")
	}
	md.Delete("KEY")
	if md.Len() != 0 {
		t.Errorf("Delete left %v", md)
	}
}

func TestCopy(t *testing.T) {
	md := Pairs("a", "1", "a", "2")
	c := md.Copy()
	if !reflect.DeepEqual(c, md) {
		t.Fatalf("Copy = %v", c)
	}
	c["a"][0] = "x"
	c.Append("a", "3")
	c.Set("b", "y")
	if !reflect.DeepEqual(md, MD{"a": {"1", "2"}}) {
		t.Errorf("changing the copy changed the original: %v", md)
	}
	if MD(nil).Copy() != nil {
		t.Error("nil.Copy() != nil")
	}
}

func TestIncomingContext(t *testing.T) {
	ctx := context.Background()
	if md, ok := FromIncomingContext(ctx); ok || md != nil {
		t.Error("FromIncomingContext of empty context")
	}
	if v := ValueFromIncomingContext(ctx, "a"); v != nil {
		t.Error("ValueFromIncomingContext of empty context")
	}
	orig := MD{"a": {"1"}, "Mixed": {"m"}}
	ctx = NewIncomingContext(ctx, orig)
	md, ok := FromIncomingContext(ctx)
	if !ok || !reflect.DeepEqual(md, MD{"a": {"1"}, "mixed": {"m"}}) {
		t.Fatalf("FromIncomingContext = %v, %v", md, ok)
	}
	md["a"][0] = "changed"
	md.Set("b", "2")
	if !reflect.DeepEqual(orig, MD{"a": {"1"}, "Mixed": {"m"}}) {
		t.Error("modifying the returned MD changed the context's")
	}
	if v := ValueFromIncomingContext(ctx, "A"); !reflect.DeepEqual(v, []string{"1"}) {
		t.Errorf("ValueFromIncomingContext(A) = %v", v)
	}
	if v := ValueFromIncomingContext(ctx, "mixed"); !reflect.DeepEqual(v, []string{"m"}) {
		t.Errorf("ValueFromIncomingContext(mixed) = %v", v)
	}
	if v := ValueFromIncomingContext(ctx, "none"); v != nil {
		t.Errorf("ValueFromIncomingContext(none) = %v", v)
	}
	v := ValueFromIncomingContext(ctx, "a")
	v[0] = "changed"
	if orig["a"][0] != "1" {
		t.Error("ValueFromIncomingContext result aliases the context's MD")
	}
	// Incoming and outgoing are separate.
	if _, ok := FromOutgoingContext(ctx); ok {
		t.Error("incoming metadata seen as outgoing")
	}
}

// mdSource is a Source over an MD that counts its calls.
type mdSource struct {
	md           MD
	full, values int
	lastKey      string
}

func (s *mdSource) IncomingMD() MD { s.full++; return s.md.Copy() }

func (s *mdSource) IncomingValues(key string) []string {
	s.values++
	s.lastKey = key
	return copyOf(s.md[key])
}

func TestIncomingContextFromSource(t *testing.T) {
	src := &mdSource{md: MD{"a": {"1", "2"}}}
	ctx := NewIncomingContextFromSource(context.Background(), src)
	if src.full != 0 || src.values != 0 {
		t.Fatal("the source was read before anyone asked")
	}
	md, ok := FromIncomingContext(ctx)
	if !ok || !reflect.DeepEqual(md, MD{"a": {"1", "2"}}) || src.full != 1 {
		t.Fatalf("FromIncomingContext = %v, %v (%d calls)", md, ok, src.full)
	}
	md["a"][0] = "changed"
	if v := ValueFromIncomingContext(ctx, "A"); !reflect.DeepEqual(v, []string{"1", "2"}) || src.lastKey != "a" {
		t.Fatalf("ValueFromIncomingContext(A) = %v; source asked for %q", v, src.lastKey)
	}
	if _, ok := FromOutgoingContext(ctx); ok {
		t.Error("incoming metadata seen as outgoing")
	}
}

func TestOutgoingContext(t *testing.T) {
	ctx := context.Background()
	if md, ok := FromOutgoingContext(ctx); ok || md != nil {
		t.Error("FromOutgoingContext of empty context")
	}
	orig := MD{"a": {"1"}, "Up": {"u"}}
	ctx = NewOutgoingContext(ctx, orig)
	md, ok := FromOutgoingContext(ctx)
	if !ok || !reflect.DeepEqual(md, MD{"a": {"1"}, "up": {"u"}}) {
		t.Fatalf("FromOutgoingContext = %v, %v", md, ok)
	}
	md["a"][0] = "changed"
	if orig["a"][0] != "1" {
		t.Error("FromOutgoingContext result aliases the context's MD")
	}

	ctx2 := AppendToOutgoingContext(ctx, "A", "2", "b", "3")
	ctx3 := AppendToOutgoingContext(ctx2, "a", "4")
	ctx3b := AppendToOutgoingContext(ctx2, "c", "5") // a sibling branch
	tests := []struct {
		ctx  context.Context
		want MD
	}{
		{ctx, MD{"a": {"1"}, "up": {"u"}}},
		{ctx2, MD{"a": {"1", "2"}, "b": {"3"}, "up": {"u"}}},
		{ctx3, MD{"a": {"1", "2", "4"}, "b": {"3"}, "up": {"u"}}},
		{ctx3b, MD{"a": {"1", "2"}, "b": {"3"}, "c": {"5"}, "up": {"u"}}},
	}
	for i, tt := range tests {
		got, ok := FromOutgoingContext(tt.ctx)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%d: FromOutgoingContext = %v, want %v", i, got, tt.want)
		}
	}
	if !reflect.DeepEqual(orig, MD{"a": {"1"}, "Up": {"u"}}) {
		t.Errorf("appending changed the original MD: %v", orig)
	}

	// NewOutgoingContext replaces what was appended.
	ctx4 := NewOutgoingContext(ctx3, MD{"z": {"0"}})
	if got, _ := FromOutgoingContext(ctx4); !reflect.DeepEqual(got, MD{"z": {"0"}}) {
		t.Errorf("after NewOutgoingContext = %v", got)
	}

	// Appending with no MD set.
	ctx5 := AppendToOutgoingContext(context.Background(), "K", "v")
	if got, ok := FromOutgoingContext(ctx5); !ok || !reflect.DeepEqual(got, MD{"k": {"v"}}) {
		t.Errorf("append-only = %v, %v", got, ok)
	}

	// Raw access.
	rmd, added, ok := FromOutgoingContextRaw(ctx3)
	if !ok || !reflect.DeepEqual(rmd, orig) || !reflect.DeepEqual(added, [][]string{{"a", "2", "b", "3"}, {"a", "4"}}) {
		t.Errorf("FromOutgoingContextRaw = %v, %v, %v", rmd, added, ok)
	}
	if _, _, ok := FromOutgoingContextRaw(context.Background()); ok {
		t.Error("FromOutgoingContextRaw of empty context")
	}

	defer func() {
		if recover() == nil {
			t.Error("AppendToOutgoingContext with odd count did not panic")
		}
	}()
	AppendToOutgoingContext(ctx, "a")
}

func TestAppendDoesNotAliasArgs(t *testing.T) {
	kv := []string{"k", "v"}
	ctx := AppendToOutgoingContext(context.Background(), kv...)
	kv[1] = "changed"
	if got, _ := FromOutgoingContext(ctx); got["k"][0] != "v" {
		t.Error("AppendToOutgoingContext kept the caller's slice")
	}
}

func BenchmarkAppendToOutgoingContext(b *testing.B) {
	md := MD{}
	for i := range 100 {
		md.Set("key"+strconv.Itoa(i), "value")
	}
	ctx := NewOutgoingContext(context.Background(), md)
	b.ReportAllocs()
	for b.Loop() {
		c := ctx
		for range 10 {
			c = AppendToOutgoingContext(c, "k", "v")
		}
	}
}

func BenchmarkFromOutgoingContext(b *testing.B) {
	ctx := NewOutgoingContext(context.Background(), Pairs("a", "1", "b", "2"))
	ctx = AppendToOutgoingContext(ctx, "c", "3")
	b.ReportAllocs()
	for b.Loop() {
		FromOutgoingContext(ctx)
	}
}
