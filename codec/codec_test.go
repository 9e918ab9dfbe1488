package codec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestProtoCodecRoundTrip(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{
		"name": "h2rpc", "n": 42.0, "ok": true,
		"list": []any{"a", 1.0, nil}, "nested": map[string]any{"k": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []proto.Message{
		wrapperspb.String("hello"),
		wrapperspb.String(""),
		wrapperspb.Bytes(bytes.Repeat([]byte{0, 1, 2}, 1000)),
		wrapperspb.Int64(-1),
		st,
	} {
		t.Run(fmt.Sprintf("%T", in), func(t *testing.T) {
			c := DefaultCodec()
			b, err := c.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out := in.ProtoReflect().New().Interface()
			if err := c.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in, out) {
				t.Fatalf("round trip: got %v, want %v", out, in)
			}

			// MarshalAppend appends after what is there.
			am := c.(AppendMarshaler)
			b2, err := am.MarshalAppend([]byte("xyz"), in)
			if err != nil {
				t.Fatal(err)
			}
			out2 := in.ProtoReflect().New().Interface()
			if string(b2[:3]) != "xyz" || len(b2) != 3+len(b) {
				t.Fatalf("MarshalAppend = %q, want %q + %d bytes", b2, "xyz", len(b))
			}
			if err := c.Unmarshal(b2[3:], out2); err != nil || !proto.Equal(in, out2) {
				t.Fatalf("MarshalAppend output does not round-trip: %v", err)
			}
		})
	}
}

func TestProtoCodecUnmarshalResets(t *testing.T) {
	c := ProtoCodec{}
	m := wrapperspb.String("old")
	if err := c.Unmarshal(nil, m); err != nil {
		t.Fatal(err)
	}
	if m.GetValue() != "" {
		t.Fatalf("Unmarshal of an empty message left %q", m.GetValue())
	}
}

// The proto codec reads the input in place but keeps nothing of it, so
// the caller can release the buffer after Unmarshal.
func TestProtoCodecUnmarshalKeepsNoReference(t *testing.T) {
	c := ProtoCodec{}
	want := bytes.Repeat([]byte("abc"), 100)
	data, err := c.Marshal(wrapperspb.Bytes(want))
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.BytesValue
	if err := c.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xff
	}
	if !bytes.Equal(got.GetValue(), want) {
		t.Fatal("the unmarshalled message changed when the input was overwritten")
	}
}

func TestProtoCodecRejectsOtherTypes(t *testing.T) {
	c := ProtoCodec{}
	for _, v := range []any{nil, "a string", 42, struct{}{}} {
		if _, err := c.Marshal(v); !errors.Is(err, ErrNotProtoMessage) {
			t.Errorf("Marshal(%T) error = %v, want ErrNotProtoMessage", v, err)
		}
		if _, err := c.MarshalAppend(nil, v); !errors.Is(err, ErrNotProtoMessage) {
			t.Errorf("MarshalAppend(%T) error = %v, want ErrNotProtoMessage", v, err)
		}
		if err := c.Unmarshal([]byte{}, v); !errors.Is(err, ErrNotProtoMessage) {
			t.Errorf("Unmarshal(%T) error = %v, want ErrNotProtoMessage", v, err)
		}
	}
	_, err := c.Marshal("x")
	if !strings.Contains(err.Error(), "string") {
		t.Errorf("error %q does not name the type", err)
	}

	// A nil message marshals as an empty one and cannot be unmarshalled
	// into.
	var nilMsg *wrapperspb.StringValue
	if b, err := c.Marshal(nilMsg); err != nil || len(b) != 0 {
		t.Errorf("Marshal(nil message) = %q, %v", b, err)
	}
	if err := c.Unmarshal([]byte{0x0a, 1, 'a'}, nilMsg); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Unmarshal into a nil message: %v", err)
	}
}

// fakeCodec is a codec without MarshalAppend: it "marshals" strings.
type fakeCodec struct{ name string }

func (c fakeCodec) Name() string { return c.name }
func (fakeCodec) Marshal(v any) ([]byte, error) {
	s, ok := v.(*string)
	if !ok {
		return nil, fmt.Errorf("fakeCodec: %T", v)
	}
	return []byte(*s), nil
}
func (fakeCodec) Unmarshal(data []byte, v any) error {
	s, ok := v.(*string)
	if !ok {
		return fmt.Errorf("fakeCodec: %T", v)
	}
	*s = string(data)
	return nil
}

// appendCodec is fakeCodec with MarshalAppend.
type appendCodec struct{ fakeCodec }

func (appendCodec) MarshalAppend(b []byte, v any) ([]byte, error) {
	s, ok := v.(*string)
	if !ok {
		return nil, fmt.Errorf("appendCodec: %T", v)
	}
	return append(b, *s...), nil
}

func TestCodecRegistry(t *testing.T) {
	for _, name := range []string{"", "proto", "PROTO", "Proto"} {
		if _, ok := GetCodec(name).(ProtoCodec); !ok {
			t.Errorf("GetCodec(%q) = %v, want ProtoCodec", name, GetCodec(name))
		}
	}
	if c := GetCodec("no-such-codec"); c != nil {
		t.Errorf("GetCodec(unknown) = %v, want nil", c)
	}

	RegisterCodec(fakeCodec{name: "Test-Codec.V1"})
	for _, name := range []string{"test-codec.v1", "TEST-CODEC.V1", "Test-Codec.V1"} {
		if c, ok := GetCodec(name).(fakeCodec); !ok || c.name != "Test-Codec.V1" {
			t.Errorf("GetCodec(%q) = %v, want the registered codec", name, GetCodec(name))
		}
	}
	// A second registration replaces the first.
	RegisterCodec(fakeCodec{name: "test-codec.v1"})
	if c := GetCodec("test-codec.v1").(fakeCodec); c.name != "test-codec.v1" {
		t.Errorf("re-registration did not replace: %v", c)
	}

	// Replacing "proto" also changes what "" means.
	RegisterCodec(fakeCodec{name: "proto"})
	_, isFake := GetCodec("").(fakeCodec)
	RegisterCodec(ProtoCodec{})
	if !isFake {
		t.Error(`GetCodec("") did not follow a replaced "proto" codec`)
	}
	if _, ok := GetCodec("").(ProtoCodec); !ok {
		t.Error("ProtoCodec not restored")
	}
}

func TestRegisterCodecPanics(t *testing.T) {
	for name, c := range map[string]Codec{"nil": nil, "empty name": fakeCodec{}} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			RegisterCodec(c)
		})
	}
}

// Registration is safe alongside lookups (run with -race).
func TestRegistriesConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 50 {
				RegisterCodec(fakeCodec{name: fmt.Sprintf("concurrent-%d-%d", i, j%3)})
				RegisterCompressor(fakeCompressor{name: fmt.Sprintf("concurrent-%d", i)})
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				if GetCodec("proto") == nil || GetCompressor(GzipName) == nil {
					t.Error("built-in codec or compressor missing")
					return
				}
				_ = AcceptEncodingHeader()
				_ = RegisteredCompressors()
			}
		}()
	}
	wg.Wait()
}

// legacyMsg is a message as old protoc-gen-go versions generated it:
// struct tags, no ProtoReflect method.
type legacyMsg struct {
	Name string `protobuf:"bytes,1,opt,name=name,proto3"`
	ID   int64  `protobuf:"varint,2,opt,name=id,proto3"`
}

func (m *legacyMsg) Reset()         { *m = legacyMsg{} }
func (m *legacyMsg) String() string { return fmt.Sprintf("%+v", *m) }
func (*legacyMsg) ProtoMessage()    {}

func TestProtoCodecLegacyMessages(t *testing.T) {
	c := ProtoCodec{}
	in := &legacyMsg{Name: "old", ID: 7}
	b, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out legacyMsg
	if err := c.Unmarshal(b, &out); err != nil || out != *in {
		t.Fatalf("legacy round trip: %+v, %v", out, err)
	}
	prefix, data, release, err := Encode(c, nil, in, 1<<20)
	if err != nil || !bytes.Equal(data, b) || len(prefix) != PrefixLen {
		t.Fatalf("Encode of a legacy message: %q, %v", data, err)
	}
	release()
}
