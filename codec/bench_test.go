package codec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/apipb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/typepb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// smallMessage is a typical small request: strings, bools, a repeated
// field, about 120 bytes.
func smallMessage() proto.Message {
	return &apipb.Method{
		Name:              "GetUser",
		RequestTypeUrl:    "type.googleapis.com/acme.users.v1.GetUserRequest",
		ResponseTypeUrl:   "type.googleapis.com/acme.users.v1.User",
		ResponseStreaming: true,
		Options:           []*typepb.Option{{Name: "idempotency_level"}},
		Syntax:            typepb.Syntax_SYNTAX_PROTO3,
	}
}

// structMessage is a small google.protobuf.Struct; marshaling its maps
// allocates inside the protobuf library.
func structMessage(b *testing.B) proto.Message {
	m, err := structpb.NewStruct(map[string]any{
		"user": "gopher", "id": 12345.0, "admin": false, "tags": []any{"a", "b"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkEncodeSmall(b *testing.B) {
	for _, tc := range []struct {
		name string
		msg  proto.Message
	}{
		{"StringValue", wrapperspb.String("hello, h2rpc")},
		{"Method", smallMessage()},
		{"Struct", structMessage(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(proto.Size(tc.msg)))
			for b.Loop() {
				_, _, release, err := Encode(ProtoCodec{}, nil, tc.msg, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// BenchmarkEncodeNaive is the baseline Encode improves on: proto.Marshal
// into a fresh slice and a fresh prefix per message.
func BenchmarkEncodeNaive(b *testing.B) {
	msg := smallMessage()
	b.ReportAllocs()
	for b.Loop() {
		data, err := proto.Marshal(msg)
		if err != nil {
			b.Fatal(err)
		}
		prefix := make([]byte, PrefixLen)
		EncodePrefix((*[PrefixLen]byte)(prefix), false, len(data))
	}
}

// BenchmarkDecodeSmall reads a small message from a stream of them and
// unmarshals it into a reused message.
func BenchmarkDecodeSmall(b *testing.B) {
	for _, tc := range []struct {
		name string
		msg  proto.Message
	}{
		{"StringValue", wrapperspb.String("hello, h2rpc")},
		{"Method", smallMessage()},
		{"Struct", structMessage(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			prefix, data, release, err := Encode(ProtoCodec{}, nil, tc.msg, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			one := append(append([]byte{}, prefix...), data...)
			release()
			stream := bytes.Repeat(one, 1000)
			r := bytes.NewReader(stream)
			p := NewParser(r)
			out := tc.msg.ProtoReflect().New().Interface()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				if i%1000 == 0 {
					r.Reset(stream)
				}
				data, release, err := p.ReadMessage(4<<20, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := Decode(ProtoCodec{}, data, out); err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// BenchmarkRoundTripSmall encodes, frames, parses and decodes a small
// message, as one unary request does.
func BenchmarkRoundTripSmall(b *testing.B) {
	in := smallMessage()
	out := &apipb.Method{}
	var r bytes.Reader
	p := NewParser(&r)
	var wire []byte
	b.ReportAllocs()
	for b.Loop() {
		prefix, data, release, err := Encode(ProtoCodec{}, nil, in, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		wire = append(append(wire[:0], prefix...), data...)
		release()
		r.Reset(wire)
		msg, release, err := p.ReadMessage(4<<20, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := Decode(ProtoCodec{}, msg, out); err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// BenchmarkGzipRoundTrip compresses and decompresses text-like messages.
func BenchmarkGzipRoundTrip(b *testing.B) {
	gz := GetCompressor(GzipName)
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", size/55+1)[:size])
			msg := bytesMsg(text)
			var r bytes.Reader
			p := NewParser(&r)
			var wire []byte
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				prefix, data, release, err := Encode(ProtoCodec{}, gz, msg, 4<<20)
				if err != nil {
					b.Fatal(err)
				}
				wire = append(append(wire[:0], prefix...), data...)
				release()
				r.Reset(wire)
				_, release, err = p.ReadMessage(4<<20, gz)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// BenchmarkParseLarge reads 1 MiB messages, uncompressed.
func BenchmarkParseLarge(b *testing.B) {
	one := frame(0, randomBytes(1<<20))
	var r bytes.Reader
	p := NewParser(&r)
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	for b.Loop() {
		r.Reset(one)
		_, release, err := p.ReadMessage(4<<20, nil)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}
