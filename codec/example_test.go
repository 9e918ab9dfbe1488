package codec_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2rpc/h2rpc/codec"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// Encoding messages onto a stream and reading them back, the way the rpc
// layer does it over a transport stream.
func Example() {
	var stream bytes.Buffer // stands for the HTTP/2 stream
	gzip := codec.GetCompressor("gzip")

	// Send: one plain message and one compressed (the stream's
	// grpc-encoding would be "gzip").
	for _, comp := range []codec.Compressor{nil, gzip} {
		msg := wrapperspb.String(strings.Repeat("hello ", 100))
		prefix, data, release, err := codec.Encode(codec.DefaultCodec(), comp, msg, 4<<20)
		if err != nil {
			panic(err)
		}
		stream.Write(prefix)
		stream.Write(data)
		release() // a transport would call it once the bytes are written
		fmt.Printf("compressed: %v, under 100 bytes: %v\n", prefix[0] == 1, len(data) < 100)
	}

	// Receive: resolve grpc-encoding, then read until io.EOF.
	decomp, err := codec.LookupEncoding("gzip")
	if err != nil {
		panic(err) // UNIMPLEMENTED for an encoding not registered
	}
	p := codec.NewParser(&stream)
	for {
		data, release, err := p.ReadMessage(4<<20, decomp)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		var got wrapperspb.StringValue
		err = codec.Decode(codec.GetCodec("proto"), data, &got)
		release() // Decode keeps nothing of data
		if err != nil {
			panic(err)
		}
		fmt.Printf("received %d characters\n", len(got.GetValue()))
	}
	// Output:
	// compressed: false, under 100 bytes: false
	// compressed: true, under 100 bytes: true
	// received 600 characters
	// received 600 characters
}

// A message over the receive limit is refused before its bytes are
// read, with RESOURCE_EXHAUSTED.
func ExampleParser_ReadMessage() {
	var stream bytes.Buffer
	prefix, data, release, _ := codec.Encode(codec.ProtoCodec{}, nil, wrapperspb.Bytes(make([]byte, 2000)), 1<<20)
	stream.Write(prefix)
	stream.Write(data)
	release()

	_, _, err := codec.NewParser(&stream).ReadMessage(1024, nil)
	fmt.Println(status.Code(err), errors.Is(err, codec.ErrMessageTooLarge))
	fmt.Println(status.Convert(err).Message())
	// Output:
	// ResourceExhausted true
	// codec: received message larger than max (2003 vs. 1024)
}

// The grpc-accept-encoding header lists the registered compressors,
// gzip first; identity is implied.
func ExampleAcceptEncodingHeader() {
	fmt.Println(strings.Split(codec.AcceptEncodingHeader(), ",")[0])
	// Output: gzip
}

// A gzip compressor with its own level. Registering it (or calling
// SetGzipLevel, at init time) would make it the "gzip" of every stream;
// here it is used for one message.
func ExampleNewGzip() {
	fast, err := codec.NewGzip(gzip.BestSpeed)
	if err != nil {
		panic(err)
	}
	msg := wrapperspb.String(strings.Repeat("fast ", 1000))
	_, data, release, err := codec.Encode(codec.ProtoCodec{}, fast, msg, 4<<20)
	if err != nil {
		panic(err)
	}
	defer release()
	fmt.Println(fast.Name(), len(data) < 1000)
	// Output: gzip true
}

// A grpc-encoding the process does not support gives UNIMPLEMENTED.
func ExampleLookupEncoding() {
	_, err := codec.LookupEncoding("br")
	fmt.Println(status.Code(err))
	// Output: Unimplemented
}
