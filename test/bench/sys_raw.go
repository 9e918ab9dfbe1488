package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
)

// rawSystem is the physical limit of the machine: length-prefixed frames
// over one TCP connection, no HTTP/2 and no RPC layer. Each frame is a
// 9-byte header (body length, call id, op) and a body. The server answers
// frames in order on one goroutine per connection and flushes when it has
// read everything that arrived; the client multiplexes concurrent calls by
// id with one reader goroutine and batches writes (the last writer
// waiting flushes).
//
// A unary call or a ping-pong message sends the marshalled EchoRequest
// and gets the same bytes back; streams carry the bare payload.
type rawSystem struct{}

func (rawSystem) name() string { return sysRaw }

// rawBufSize is the size of each bufio reader and writer, one of each per
// connection side. Bodies larger than it bypass it.
const rawBufSize = 8 << 10

// rawMaxBody bounds a frame body.
const rawMaxBody = 16 << 20

// Ops of the raw protocol.
const (
	rawEcho       byte = iota + 1 // client→server→client: echo the body
	rawDownload                   // client→server: 4-byte count + payload
	rawData                       // server→client: one downloaded payload
	rawUpload                     // client→server: one uploaded payload
	rawUploadEnd                  // client→server: the upload is complete
	rawEnd                        // server→client: a download or upload is complete; body: 8-byte count + 8-byte bytes
	rawHeaderSize = 9
)

func (rawSystem) startServer() (server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &rawServer{lis: lis, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

type rawServer struct {
	lis net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *rawServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

func (s *rawServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, rawBufSize)
	w := bufio.NewWriterSize(c, rawBufSize)
	var buf []byte
	type upload struct{ count, bytes uint64 }
	uploads := make(map[uint32]*upload)
	var hdr [rawHeaderSize]byte
	for {
		n, id, op, err := readRawHeader(r, hdr[:])
		if err != nil {
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		body := buf[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch op {
		case rawEcho:
			err = writeRawFrame(w, id, rawEcho, body, nil)
		case rawDownload:
			if n < 4 {
				return
			}
			count := binary.BigEndian.Uint32(body)
			for range count {
				if err = writeRawFrame(w, id, rawData, body[4:], nil); err != nil {
					break
				}
			}
			if err == nil {
				err = writeRawEnd(w, id, uint64(count), uint64(count)*uint64(n-4))
			}
		case rawUpload:
			u := uploads[id]
			if u == nil {
				u = new(upload)
				uploads[id] = u
			}
			u.count++
			u.bytes += uint64(n)
		case rawUploadEnd:
			u := uploads[id]
			delete(uploads, id)
			if u == nil {
				u = new(upload)
			}
			err = writeRawEnd(w, id, u.count, u.bytes)
		default:
			return
		}
		if err == nil && r.Buffered() == 0 {
			err = w.Flush()
		}
		if err != nil {
			return
		}
	}
}

func (s *rawServer) dial(ctx context.Context) (client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.lis.Addr().String())
	if err != nil {
		return nil, err
	}
	c := &rawClient{
		conn:  conn,
		w:     bufio.NewWriterSize(conn, rawBufSize),
		calls: make(map[uint32]*rawCall),
		done:  make(chan struct{}),
	}
	go c.read(bufio.NewReaderSize(conn, rawBufSize))
	if err := c.unary(ctx, &echov1.EchoRequest{}); err != nil {
		c.close()
		return nil, fmt.Errorf("first call: %w", err)
	}
	return c, nil
}

func (s *rawServer) close() {
	s.mu.Lock()
	s.closed = true
	s.lis.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type rawClient struct {
	conn net.Conn

	wmu     sync.Mutex
	w       *bufio.Writer // guarded by wmu
	writers atomic.Int32  // writers holding or waiting for wmu
	nextID  atomic.Uint32

	mu    sync.Mutex
	calls map[uint32]*rawCall // guarded by mu; nil once the reader stops
	err   error               // why the reader stopped; guarded by mu

	done chan struct{} // closed when the reader stops
}

// rawCall is one call waiting for its answer. The reader fills it and
// closes done.
type rawCall struct {
	done  chan struct{}
	reply []byte // the echo, or the rawEnd summary
	sink  []byte // reused for downloaded payloads
	n     int64  // downloaded payload bytes
	err   error
}

func (c *rawClient) read(r *bufio.Reader) {
	defer close(c.done)
	var hdr [rawHeaderSize]byte
	err := func() error {
		for {
			n, id, op, err := readRawHeader(r, hdr[:])
			if err != nil {
				return err
			}
			c.mu.Lock()
			call := c.calls[id]
			if op != rawData {
				delete(c.calls, id)
			}
			c.mu.Unlock()
			if call == nil {
				return fmt.Errorf("raw: answer to unknown call %d", id)
			}
			switch op {
			case rawData:
				if cap(call.sink) < n {
					call.sink = make([]byte, n)
				}
				if _, err := io.ReadFull(r, call.sink[:n]); err != nil {
					return err
				}
				call.n += int64(n)
			case rawEcho, rawEnd:
				call.reply = make([]byte, n)
				if _, err := io.ReadFull(r, call.reply); err != nil {
					return err
				}
				close(call.done)
			default:
				return fmt.Errorf("raw: unexpected op %d", op)
			}
		}
	}()
	c.mu.Lock()
	c.err = err
	for _, call := range c.calls {
		call.err = err
		close(call.done)
	}
	c.calls = nil
	c.mu.Unlock()
}

// start registers a new call.
func (c *rawClient) start() (uint32, *rawCall, error) {
	id := c.nextID.Add(1)
	call := &rawCall{done: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		return 0, nil, fmt.Errorf("raw: connection closed: %v", c.err)
	}
	c.calls[id] = call
	return id, call, nil
}

// send writes one frame; the last of a burst of concurrent writers
// flushes.
func (c *rawClient) send(id uint32, op byte, a, b []byte) error {
	c.writers.Add(1)
	c.wmu.Lock()
	err := writeRawFrame(c.w, id, op, a, b)
	if c.writers.Add(-1) == 0 && err == nil {
		err = c.w.Flush()
	}
	c.wmu.Unlock()
	return err
}

// wait waits for the answer to call.
func (c *rawClient) wait(ctx context.Context, call *rawCall) error {
	select {
	case <-call.done:
		if call.err != nil {
			return fmt.Errorf("raw: %v", call.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *rawClient) unary(ctx context.Context, req *echov1.EchoRequest) error {
	msg, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	id, call, err := c.start()
	if err != nil {
		return err
	}
	if err := c.send(id, rawEcho, msg, nil); err != nil {
		return err
	}
	if err := c.wait(ctx, call); err != nil {
		return err
	}
	if len(call.reply) != len(msg) {
		return fmt.Errorf("raw: echo of %d bytes has %d", len(msg), len(call.reply))
	}
	return nil
}

func (c *rawClient) chat(ctx context.Context) (pingPong, error) {
	return rawChat{ctx, c}, nil
}

// rawChat is a ping-pong over the raw connection: each message is an
// echo frame.
type rawChat struct {
	ctx context.Context
	c   *rawClient
}

func (p rawChat) roundTrip(req *echov1.EchoRequest) error { return p.c.unary(p.ctx, req) }
func (p rawChat) close() error                            { return nil }

func (c *rawClient) download(ctx context.Context, payload []byte, count int) (int64, error) {
	id, call, err := c.start()
	if err != nil {
		return 0, err
	}
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], uint32(count))
	if err := c.send(id, rawDownload, cnt[:], payload); err != nil {
		return 0, err
	}
	if err := c.wait(ctx, call); err != nil {
		return 0, err
	}
	if err := checkRawEnd(call.reply, count, len(payload)); err != nil {
		return 0, err
	}
	if call.n != int64(count*len(payload)) {
		return call.n, fmt.Errorf("raw: downloaded %d bytes, want %d", call.n, count*len(payload))
	}
	return call.n, nil
}

func (c *rawClient) upload(ctx context.Context, payload []byte, count int) error {
	id, call, err := c.start()
	if err != nil {
		return err
	}
	for range count {
		if err := c.send(id, rawUpload, payload, nil); err != nil {
			return err
		}
	}
	if err := c.send(id, rawUploadEnd, nil, nil); err != nil {
		return err
	}
	if err := c.wait(ctx, call); err != nil {
		return err
	}
	return checkRawEnd(call.reply, count, len(payload))
}

func (c *rawClient) close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// readRawHeader reads a frame header.
func readRawHeader(r io.Reader, hdr []byte) (n int, id uint32, op byte, err error) {
	if _, err := io.ReadFull(r, hdr[:rawHeaderSize]); err != nil {
		return 0, 0, 0, err
	}
	size := binary.BigEndian.Uint32(hdr)
	if size > rawMaxBody {
		return 0, 0, 0, fmt.Errorf("raw: frame of %d bytes", size)
	}
	return int(size), binary.BigEndian.Uint32(hdr[4:]), hdr[8], nil
}

// writeRawFrame writes a frame whose body is a followed by b.
func writeRawFrame(w *bufio.Writer, id uint32, op byte, a, b []byte) error {
	var hdr [rawHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(a)+len(b)))
	binary.BigEndian.PutUint32(hdr[4:], id)
	hdr[8] = op
	w.Write(hdr[:])
	w.Write(a)
	_, err := w.Write(b)
	return err
}

func writeRawEnd(w *bufio.Writer, id uint32, count, bytes uint64) error {
	var body [16]byte
	binary.BigEndian.PutUint64(body[:], count)
	binary.BigEndian.PutUint64(body[8:], bytes)
	return writeRawFrame(w, id, rawEnd, body[:], nil)
}

func checkRawEnd(reply []byte, count, size int) error {
	if len(reply) != 16 {
		return errors.New("raw: bad end frame")
	}
	gotCount, gotBytes := binary.BigEndian.Uint64(reply), binary.BigEndian.Uint64(reply[8:])
	if gotCount != uint64(count) || gotBytes != uint64(count*size) {
		return fmt.Errorf("raw: %d messages and %d bytes, want %d and %d", gotCount, gotBytes, count, count*size)
	}
	return nil
}
