// Package dnstest is a small authoritative DNS server for tests: it
// listens on 127.0.0.1 over UDP and TCP (one port for both, as resolvers
// expect), answers A, AAAA and TXT questions from records the test may
// change at any time, answers NXDOMAIN for names it does not know, and
// counts the questions it is asked.
//
// Point a resolver at it with the target "dns://" + s.Addr() + "/name:port",
// or with a net.Resolver whose Dial connects to s.Addr().
package dnstest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// The question types the server answers with records; any other type
// of a known name gets an empty answer.
const (
	TypeA    = dnsmessage.TypeA
	TypeAAAA = dnsmessage.TypeAAAA
	TypeTXT  = dnsmessage.TypeTXT
)

// maxUDPSize is the largest answer sent over UDP; a larger one is sent
// truncated (TC set, no records) so the client asks again over TCP.
const maxUDPSize = 512

// maxTXTString is the longest character-string of a TXT record (RFC 1035).
const maxTXTString = 255

type records struct {
	addrs []netip.Addr // A and AAAA, in the order set
	txt   [][]string   // one entry per TXT record, each its strings
}

type queryKey struct {
	name  string
	qtype dnsmessage.Type
}

// Server is a running test DNS server. Its methods may be called from
// any goroutine.
type Server struct {
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu      sync.Mutex
	names   map[string]*records
	queries map[queryKey]int
	silent  bool
	conns   map[net.Conn]struct{}
	closed  bool
}

// Start starts a server on 127.0.0.1, UDP and TCP on one port. Close
// stops it.
func Start() (*Server, error) {
	s := &Server{
		names:   map[string]*records{},
		queries: map[queryKey]int{},
		conns:   map[net.Conn]struct{}{},
	}
	// The UDP port is picked by the system; TCP must get the same one,
	// which another process may hold: try a few times.
	var lastErr error
	for range 10 {
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dnstest: %w", err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			udp.Close()
			lastErr = err
			continue
		}
		s.udp, s.tcp = udp, tcp
		s.wg.Add(2)
		go s.serveUDP()
		go s.serveTCP()
		return s, nil
	}
	return nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", lastErr)
}

// New starts a server for the test tb and stops it when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's address, "127.0.0.1:port", for UDP and TCP.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Close stops the server and waits for its goroutines to end.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

// canonical returns name in lower case with its final dot.
func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) entry(name string) *records {
	name = canonical(name)
	r := s.names[name]
	if r == nil {
		r = &records{}
		s.names[name] = r
	}
	return r
}

func parseAddrs(ips []string, want4 bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Is4() != want4 {
			kind := "IPv6"
			if want4 {
				kind = "IPv4"
			}
			panic(fmt.Sprintf("dnstest: %q is not an %s address", ip, kind))
		}
		out = append(out, a)
	}
	return out
}

// SetA replaces the A records of name with ips (IPv4 literals; anything
// else panics). No ips removes them; the name stays known (its questions
// get empty answers, not NXDOMAIN) until Remove.
func (s *Server) SetA(name string, ips ...string) { s.setAddrs(name, parseAddrs(ips, true), true) }

// SetAAAA replaces the AAAA records of name with ips (IPv6 literals;
// anything else panics), as SetA does for A records.
func (s *Server) SetAAAA(name string, ips ...string) {
	s.setAddrs(name, parseAddrs(ips, false), false)
}

func (s *Server) setAddrs(name string, addrs []netip.Addr, is4 bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.entry(name)
	kept := r.addrs[:0:0]
	for _, a := range r.addrs {
		if a.Is4() != is4 {
			kept = append(kept, a)
		}
	}
	r.addrs = append(kept, addrs...)
}

// SetTXT replaces the TXT records of name with txts, one record each. A
// text longer than 255 bytes is split into several strings of one
// record, which clients join again (RFC 4408, section 3.1.3).
func (s *Server) SetTXT(name string, txts ...string) {
	var recs [][]string
	for _, t := range txts {
		var parts []string
		for len(t) > maxTXTString {
			parts = append(parts, t[:maxTXTString])
			t = t[maxTXTString:]
		}
		recs = append(recs, append(parts, t))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry(name).txt = recs
}

// Remove forgets name: its questions get NXDOMAIN again.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, canonical(name))
}

// SetSilent makes the server drop every question (still counting it)
// while silent is true: a dead name server.
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = silent
}

// Queries returns how many questions of type qtype for name the server
// has received, over UDP and TCP.
func (s *Server) Queries(name string, qtype dnsmessage.Type) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[queryKey{canonical(name), qtype}]
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		resp, ok := s.answer(buf[:n], maxUDPSize)
		if ok {
			s.udp.WriteTo(resp, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return // closed
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

// serveConn answers the questions of one TCP connection, each message
// preceded by its length in two bytes (RFC 1035, section 4.2.2).
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp, ok := s.answer(msg, 65535)
		if !ok {
			continue
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// answer builds the response to the message query, at most limit bytes
// long (a larger one is truncated). ok is false when nothing should be
// sent: the message is not a query, or the server is silent.
func (s *Server) answer(query []byte, limit int) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		// A query without a question: say so.
		resp, err := reply(h, nil, dnsmessage.RCodeFormatError, false, nil, nil)
		return resp, err == nil
	}

	s.mu.Lock()
	name := canonical(q.Name.String())
	s.queries[queryKey{name, q.Type}]++
	if s.silent {
		s.mu.Unlock()
		return nil, false
	}
	rcode := dnsmessage.RCodeSuccess
	var addrs []netip.Addr
	var txt [][]string
	if r, found := s.names[name]; !found {
		rcode = dnsmessage.RCodeNameError
	} else if q.Class == dnsmessage.ClassINET {
		switch q.Type {
		case TypeA, TypeAAAA:
			for _, a := range r.addrs {
				if a.Is4() == (q.Type == TypeA) {
					addrs = append(addrs, a)
				}
			}
		case TypeTXT:
			txt = r.txt
		}
	}
	s.mu.Unlock()

	resp, err = reply(h, &q, rcode, false, addrs, txt)
	if err != nil {
		resp, err = reply(h, &q, dnsmessage.RCodeServerFailure, false, nil, nil)
		return resp, err == nil
	}
	if len(resp) > limit {
		resp, err = reply(h, &q, rcode, true, nil, nil)
		return resp, err == nil
	}
	return resp, true
}

// reply packs the response to the query with header qh and question q
// (nil when it had none); truncated sets TC.
func reply(qh dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, truncated bool, addrs []netip.Addr, txt [][]string) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID:                 qh.ID,
		Response:           true,
		OpCode:             qh.OpCode,
		Authoritative:      true,
		Truncated:          truncated,
		RecursionDesired:   qh.RecursionDesired,
		RecursionAvailable: true,
		RCode:              rcode,
	})
	b.EnableCompression()
	if q == nil {
		return b.Finish()
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(*q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	for _, a := range addrs {
		var err error
		if a.Is4() {
			rh.Type = TypeA
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		} else {
			rh.Type = TypeAAAA
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	for _, t := range txt {
		rh.Type = TypeTXT
		if err := b.TXTResource(rh, dnsmessage.TXTResource{TXT: t}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
