// Package controlbuf holds the outbound side of an h2rpc HTTP/2 connection:
// the Buffer, one queue of every piece of outbound work (headers, data,
// window updates, settings, pings, resets, GOAWAY), and the Loopy writer,
// the one goroutine that drains the Buffer and is the only writer of the
// connection.
//
// Producers (application goroutines, the reader goroutine, keepalive) put
// Items on the Buffer and return; they never write frames themselves.
// Items are always passed as pointers, and once put they belong to loopy:
// a producer must not touch an item again unless one of its callbacks
// (OnDone, OnWrite, OnOrphaned) told it loopy is finished with it.
package controlbuf

import (
	"errors"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	// ErrClosed is wrapped by every error of a Buffer that was finished:
	// Put and Get fail with it, and OnOrphaned of queued headers gets it.
	ErrClosed = errors.New("controlbuf: buffer closed")

	// ErrHeaderListTooLarge is wrapped by the error given to
	// HeaderFrame.OnOrphaned when the header list is larger than the
	// peer's SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2), so loopy
	// refused to send it.
	ErrHeaderListTooLarge = errors.New("controlbuf: header list larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE")

	// ErrDrained is returned by Loopy.Run after a final GOAWAY was written
	// and no stream remained. Opening headers that arrive after a final
	// GOAWAY are orphaned with an error wrapping it.
	ErrDrained = errors.New("controlbuf: connection drained after GOAWAY")

	// ErrConnClosing is wrapped by the error Loopy.Run returns after it
	// wrote a GoAway item with CloseConn set.
	ErrConnClosing = errors.New("controlbuf: connection closing after GOAWAY")

	// ErrStreamIDsExhausted is wrapped by the error given to OnOrphaned of
	// a client's opening headers when no stream id is left on the
	// connection (ids are 31 bits, RFC 9113 §5.1.1); the caller needs a new
	// connection.
	ErrStreamIDsExhausted = errors.New("controlbuf: client stream ids exhausted")

	// ErrStreamClosed is wrapped by the error given to OnOrphaned of
	// headers whose stream was cleaned up or reset before they were
	// written.
	ErrStreamClosed = errors.New("controlbuf: stream closed before its headers were written")
)

// GoAwayPing is the payload of the PING loopy writes after a heads-up
// GOAWAY (the first step of a graceful shutdown, RFC 9113 §6.8): its ack
// tells the server that every stream the client opened before it saw the
// GOAWAY has reached the server.
var GoAwayPing = [8]byte{'h', '2', 'g', 'o', 'a', 'w', 'a', 'y'}

// Item is one piece of outbound work put on a Buffer. The set of item
// types is closed: only the types of this package implement it.
type Item interface {
	controlItem()
	// PeerCaused reports whether the item answers a frame the peer sent
	// and forced us to answer (a SETTINGS ack, a PING ack, a RST_STREAM
	// or an early abort for the peer's bad frames or requests, the
	// registration of a stream the peer opened). Only
	// such items, while unsent, throttle the reader (Buffer.Throttle):
	// work our own side queued must never stop us reading, or two busy
	// peers could each wait for the other to read.
	PeerCaused() bool
}

// HeaderFrame sends a header block (HEADERS + CONTINUATION) on a stream:
// request or response headers, or trailers when EndStream is set. A
// stream's header and data items are written in the order they were put.
type HeaderFrame struct {
	Stream    *Stream
	Fields    []hpack.HeaderField
	EndStream bool
	// Opener marks the client HEADERS that opens Stream. Loopy assigns
	// the next odd stream id and calls Opener.InitStream(id) right before
	// writing the frame; a non-nil error drops the stream and its queued
	// items (Opener.Orphaned gets the error). Opening headers are held
	// back, in order, while the peer's SETTINGS_MAX_CONCURRENT_STREAMS is
	// reached. Opener.Orphaned is called when OnOrphaned is, before it.
	Opener Opener
	// OnOrphaned is called once, on the loopy goroutine or in
	// Buffer.Finish, if the frame is never written: the Buffer was
	// finished, the stream was cleaned up first, Opener.InitStream failed, or the
	// header list is larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE
	// (the error then wraps ErrHeaderListTooLarge). Optional.
	OnOrphaned func(error)
	// OnWrite is called after the frame was written to loopy's write
	// buffer. Optional.
	OnWrite func()
	// Cleanup, when set, is performed right after the frame is written:
	// a server's trailers end the stream this way.
	Cleanup *CleanupStream
}

// DataFrame sends Prefix then Data on a stream, as as many DATA frames as
// flow control and the peer's SETTINGS_MAX_FRAME_SIZE require. EndStream
// sets END_STREAM on the frame carrying the last byte; an empty DataFrame
// with EndStream sends an empty DATA frame with END_STREAM.
type DataFrame struct {
	Stream    *Stream
	Prefix    []byte // gRPC 5-byte message prefix, may be empty
	Data      []byte
	EndStream bool
	// Budgeted marks an item whose bytes (Prefix and Data) the producer
	// took from the connection's write budget (Config.WriteBudget): loopy
	// gives them back as it writes them to the connection, or at once if
	// it drops the item unsent.
	Budgeted bool
	// OnDone is called on the loopy goroutine once every byte of the item
	// was written to loopy's write buffer, or, for payloads loopy writes
	// by reference, to the connection; the producer may then reuse
	// Prefix, Data and the item itself. It is not called for an item that
	// is dropped unsent (its stream was cleaned up, or the connection
	// closed): such buffers are left to the garbage collector. Optional.
	OnDone func()
}

// Opener opens a client stream (see HeaderFrame.Opener). It is an
// interface rather than two func fields so that a client stream can be
// its own Opener without allocating two method values per stream.
type Opener interface {
	// InitStream is called with the stream's id right before its
	// opening HEADERS is written; an error drops the stream.
	InitStream(id uint32) error
	// Orphaned is called once if the opening HEADERS is never written.
	Orphaned(err error)
}

// OpenerFuncs is an Opener made of two functions; nil ones do nothing.
type OpenerFuncs struct {
	Init   func(id uint32) error
	Orphan func(error)
}

// InitStream calls o.Init.
func (o OpenerFuncs) InitStream(id uint32) error {
	if o.Init == nil {
		return nil
	}
	return o.Init(id)
}

// Orphaned calls o.Orphan.
func (o OpenerFuncs) Orphaned(err error) {
	if o.Orphan != nil {
		o.Orphan(err)
	}
}

// opens reports whether h opens a client stream.
func (h *HeaderFrame) opens() bool { return h.Opener != nil }

// initStream calls h's Opener.
func (h *HeaderFrame) initStream(id uint32) error { return h.Opener.InitStream(id) }

// orphanable reports whether h wants to hear that it was never written.
func (h *HeaderFrame) orphanable() bool { return h.OnOrphaned != nil || h.Opener != nil }

// orphaned tells h's producer that h will never be written.
func (h *HeaderFrame) orphaned(err error) {
	if h.Opener != nil {
		h.Opener.Orphaned(err)
	}
	if h.OnOrphaned != nil {
		h.OnOrphaned(err)
	}
}

// RegisterStream tells a server's loopy about a stream the peer opened.
type RegisterStream struct{ Stream *Stream }

// CleanupStream removes a stream from loopy, dropping its unsent items
// (OnOrphaned for headers), and writes RST_STREAM(Code) when RST is set.
// Stream may be nil with StreamID set, for a stream loopy may not know.
type CleanupStream struct {
	Stream   *Stream
	StreamID uint32
	RST      bool
	Code     http2.ErrCode
	// ByPeer marks a cleanup the peer forced on us: a reset for its
	// frames that broke the protocol on the stream, or its own RST_STREAM
	// for a stream the transport already forgot (loopy may still hold
	// its last frames), as opposed to our own cancel, deadline or early
	// end; see PeerCaused.
	ByPeer bool
	// OnWrite is called once the cleanup is done (and the RST_STREAM, if
	// any, written to loopy's write buffer). Optional.
	OnWrite func()
}

// EarlyAbort rejects, on a server, a stream loopy never registered: it
// writes HEADERS with END_STREAM holding Fields (a trailers-only response),
// then RST_STREAM(Code) when RST is set.
type EarlyAbort struct {
	StreamID uint32
	Fields   []hpack.HeaderField
	RST      bool
	Code     http2.ErrCode
}

// ResetStream writes RST_STREAM(Code) for StreamID, answering something
// the peer did wrong on a stream the transport does not know (any more).
// While loopy still writes such a stream's last frames (its response and
// trailers, queued before the transport forgot it) the reset is dropped:
// sent now, it would overtake them and cut the response short, and the
// stream's own CleanupStream ends it once they are out (a server that
// answered before the request ended resets with NO_ERROR, RFC 9113
// §8.1).
type ResetStream struct {
	StreamID uint32
	Code     http2.ErrCode
}

// IncomingWindowUpdate applies a WINDOW_UPDATE the peer sent; StreamID 0
// is the connection window. The windows the transport tracks take the
// peer's updates coalesced (Buffer.AddPeerConnWindow,
// Buffer.AddPeerStreamWindow); this item is for an update that cannot be
// coalesced, on a stream the transport forgot whose last frames loopy may
// still be writing.
type IncomingWindowUpdate struct{ StreamID, Increment uint32 }

// OutgoingWindowUpdate writes a WINDOW_UPDATE; StreamID 0 is the
// connection window.
type OutgoingWindowUpdate struct{ StreamID, Increment uint32 }

// IncomingSettings applies the peer's SETTINGS to loopy's writing, then
// writes the SETTINGS ack (RFC 9113 §6.5.3).
type IncomingSettings struct{ Settings []http2.Setting }

// OutgoingSettings writes a SETTINGS frame with our settings.
type OutgoingSettings struct{ Settings []http2.Setting }

// Ping writes a PING, or its ack when Ack is set.
type Ping struct {
	Ack  bool
	Data [8]byte
}

// GoAway writes a GOAWAY (RFC 9113 §6.8).
type GoAway struct {
	Code         http2.ErrCode
	DebugData    []byte
	LastStreamID uint32
	// HeadsUp is the first step of a server's graceful shutdown: loopy
	// writes GOAWAY(2^31-1, NO_ERROR) and then PING(GoAwayPing), and goes
	// on as before. LastStreamID and Code are ignored.
	HeadsUp bool
	// CloseConn makes Run flush and return an error wrapping
	// ErrConnClosing right after the GOAWAY. Without it, loopy drains:
	// Run returns ErrDrained once no stream remains.
	CloseConn bool
}

func (*HeaderFrame) controlItem()          {}
func (*DataFrame) controlItem()            {}
func (*RegisterStream) controlItem()       {}
func (*CleanupStream) controlItem()        {}
func (*EarlyAbort) controlItem()           {}
func (*ResetStream) controlItem()          {}
func (*IncomingWindowUpdate) controlItem() {}
func (*OutgoingWindowUpdate) controlItem() {}
func (*IncomingSettings) controlItem()     {}
func (*OutgoingSettings) controlItem()     {}
func (*Ping) controlItem()                 {}
func (*GoAway) controlItem()               {}
func (*windowUpdateDue) controlItem()      {}
func (*peerWindowDue) controlItem()        {}

// PeerCaused is false: a stream's headers are our own work.
func (*HeaderFrame) PeerCaused() bool { return false }

// PeerCaused is false: a stream's data is our own work.
func (*DataFrame) PeerCaused() bool { return false }

// PeerCaused is true: the peer opened the stream, and what its handler
// answers (headers, trailers) queues behind the registration. A peer
// that opens streams while never reading its socket must stop being read
// once loopy, blocked writing, has that many registrations unhandled:
// otherwise each stream's answer waits in memory, without bound (100,000
// trailers-only answers held 90 MiB). A peer that reads is never held
// back for long: loopy handles a registration as soon as it gets to it.
func (*RegisterStream) PeerCaused() bool { return true }

// PeerCaused reports c.ByPeer.
func (c *CleanupStream) PeerCaused() bool { return c.ByPeer }

// PeerCaused is true: an early abort answers a request we refuse.
func (*EarlyAbort) PeerCaused() bool { return true }

// PeerCaused is true: a ResetStream answers the peer's bad frames.
func (*ResetStream) PeerCaused() bool { return true }

// PeerCaused is true: the peer may send such updates at any rate, and
// each one not coalesced is an item; a flood of them while loopy is
// blocked must stop the reader.
func (*IncomingWindowUpdate) PeerCaused() bool { return true }

// PeerCaused is false: we refund our own receive windows.
func (*OutgoingWindowUpdate) PeerCaused() bool { return false }

// PeerCaused is true: the peer's SETTINGS must be acked.
func (*IncomingSettings) PeerCaused() bool { return true }

// PeerCaused is false: we announce our own settings.
func (*OutgoingSettings) PeerCaused() bool { return false }

// PeerCaused reports p.Ack: an ack answers the peer's PING, other pings
// are ours (BDP, keepalive, graceful shutdown).
func (p *Ping) PeerCaused() bool { return p.Ack }

// PeerCaused is false: we decide to go away.
func (*GoAway) PeerCaused() bool { return false }

// PeerCaused is false: window updates are ours, and coalesce.
func (*windowUpdateDue) PeerCaused() bool { return false }

// PeerCaused is false: the peer's window updates coalesce, so it cannot
// make us queue more than one per window, and throttling the reader for
// them could deadlock two busy peers.
func (*peerWindowDue) PeerCaused() bool { return false }
