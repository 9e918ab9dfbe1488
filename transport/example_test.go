package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"

	"github.com/h2rpc/h2rpc/rpc/codes"
	"github.com/h2rpc/h2rpc/rpc/metadata"
	"github.com/h2rpc/h2rpc/rpc/status"
	"github.com/h2rpc/h2rpc/transport"
)

// prefix returns the 5-byte gRPC message prefix (not compressed, n bytes).
func prefix(n int) []byte {
	p := make([]byte, 5)
	binary.BigEndian.PutUint32(p[1:], uint32(n))
	return p
}

// messageReader is what both stream types offer for reading messages.
type messageReader interface {
	io.Reader
	RequestRead(n int)
}

// readMessage reads one length-prefixed gRPC message. It returns io.EOF
// when the stream ended cleanly before a message.
func readMessage(r messageReader) ([]byte, error) {
	var p [5]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(p[1:]))
	r.RequestRead(n) // let flow control admit the whole message
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}

// sayHello is a unary handler: one request message in, one reply out,
// then the status.
func sayHello(s *transport.ServerStream) {
	name, err := readMessage(s)
	if err != nil {
		s.WriteStatus(status.Convert(err))
		return
	}
	reply := []byte("Hello, " + string(name))
	if err := s.Write(prefix(len(reply)), reply, transport.WriteOptions{}); err != nil {
		s.WriteStatus(status.Convert(err))
		return
	}
	s.WriteStatus(status.New(codes.OK, ""))
}

// serve runs a server transport on every connection ln accepts, each
// stream's handler on its own goroutine. The returned stop closes ln and
// waits until every connection (closed by its client) is done.
func serve(ln net.Listener, handler func(*transport.ServerStream)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := transport.NewServerTransport(conn, transport.ServerConfig{})
				if err != nil {
					return
				}
				var handlers sync.WaitGroup
				st.HandleStreams(context.Background(), func(s *transport.ServerStream) {
					handlers.Add(1)
					go func() {
						defer handlers.Done()
						handler(s)
					}()
				})
				handlers.Wait()
			}()
		}
	}()
	return func() {
		ln.Close()
		wg.Wait()
	}
}

// The server side: accept a connection, run HTTP/2 on it and hand each
// stream to a handler goroutine.
func ExampleNewServerTransport() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		// NewServerTransport reads the client preface and sends our
		// SETTINGS. (Over TLS, conn must be a *tls.Conn whose handshake
		// negotiated ALPN "h2".)
		st, err := transport.NewServerTransport(conn, transport.ServerConfig{})
		if err != nil {
			return
		}
		var handlers sync.WaitGroup
		// HandleStreams calls its function on the reader goroutine for
		// each new stream; the function must not block. It returns once
		// the connection is closed.
		st.HandleStreams(context.Background(), func(s *transport.ServerStream) {
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				fmt.Println("server: stream for", s.Method())
				sayHello(s)
			}()
		})
		handlers.Wait()
	}()

	ctx := context.Background()
	c, err := transport.NewClientTransport(ctx, ln.Addr().String(), transport.ConnectOptions{})
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.NewStream(ctx, &transport.CallHdr{Method: "/greeter.Greeter/SayHello"})
	if err != nil {
		log.Fatal(err)
	}
	s.Write(prefix(5), []byte("world"), transport.WriteOptions{Last: true})
	reply, err := readMessage(s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("client: %s (%v)\n", reply, s.Status().Code())

	c.Close(nil)
	<-done
	// Output:
	// server: stream for /greeter.Greeter/SayHello
	// client: Hello, world (OK)
}

// The client side: dial, open a stream, send one message, read the reply
// and the final status.
func ExampleNewClientTransport() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	stop := serve(ln, sayHello)
	defer stop()

	ctx := context.Background()
	// Plaintext HTTP/2 with prior knowledge; set TransportCredentials
	// (credentials.NewTLS) for TLS.
	c, err := transport.NewClientTransport(ctx, ln.Addr().String(), transport.ConnectOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		c.Close(nil)
		<-c.Done()
	}()

	// NewStream queues the request HEADERS and returns at once.
	s, err := c.NewStream(ctx, &transport.CallHdr{
		Method:   "/greeter.Greeter/SayHello",
		Metadata: metadata.Pairs("request-id", "42"),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Write takes the 5-byte message prefix and the message; Last ends
	// the client's half of the stream.
	name := []byte("gopher")
	if err := s.Write(prefix(len(name)), name, transport.WriteOptions{Last: true}); err != nil {
		log.Fatal(err)
	}
	// Read returns the DATA bytes of the response: here one message,
	// then io.EOF once the server's trailers ended the stream.
	reply, err := readMessage(s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	if _, err := readMessage(s); err == io.EOF {
		fmt.Println("end of stream")
	}
	fmt.Println("status:", s.Status().Code())
	// Output:
	// Hello, gopher
	// end of stream
	// status: OK
}
