package transport

// How a server answers a request that is not gRPC (a browser's GET /, a
// POST with some other content-type): with a real HTTP response, an error
// :status and a short text/plain body, on a stream that stays open for
// the rest of the request (RFC 9113 §8.1) without running a handler.

import (
	"context"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2rpc/h2rpc/controlbuf"
	"github.com/h2rpc/h2rpc/rpc/status"
)

// answeredLinger is how long a stream answered by answerHTTP waits, once
// the answer is written, for the client to finish its request before it
// is reset with NO_ERROR (RFC 9113 §8.1 allows that once the response is
// complete). Until then the client's frames on it are still checked;
// the stream counts toward MAX_CONCURRENT_STREAMS meanwhile, which bounds
// what such streams hold.
const answeredLinger = 5 * time.Second

// httpAnswer is a fixed HTTP error response.
type httpAnswer struct {
	status string // :status
	allow  string // the allow header, if any
	body   []byte // text/plain body
}

// The answers to requests that are not gRPC.
var (
	answerUnsupportedMediaType = httpAnswer{
		status: "415",
		body:   []byte("h2rpc: gRPC requires content-type application/grpc\n"),
	}
	answerMethodNotAllowed = httpAnswer{
		status: "405",
		allow:  "POST",
		body:   []byte("h2rpc: gRPC requires method POST\n"),
	}
)

// answerHTTP answers the request opening stream id with a: HEADERS with
// its :status, a text/plain content-type (and the gRPC status st, for
// gRPC clients that look), then its body in DATA with END_STREAM. No
// handler runs. The stream stays among the connection's streams, half
// closed on our side, until the request ends too (its DATA is discarded,
// the connection window refunded) or is reset, or answerLinger after the
// answer was written. Runs on the reader goroutine.
func (t *http2Server) answerHTTP(id uint32, rq *requestHeaders, endStream bool, a *httpAnswer, st *status.Status) {
	s := &ServerStream{t: t, method: rq.path, authority: rq.authority, scheme: rq.scheme, answered: true}
	s.ss = s
	// Nobody uses the stream's API: it has sent what it will send.
	s.headerSent, s.statusSent = true, true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.init(&t.http2Conn, ctx, t.streamWindow.Load())
	s.id.Store(id)
	// No write quota: nothing waits for one, and the body is small.
	s.ls.Init(id, nil)
	s.bodyCheck = true
	s.bodyLeft = rq.contentLength
	s.sendDone.Store(true)

	fields := append(s.fieldsBuf[:0],
		hpack.HeaderField{Name: ":status", Value: a.status},
		hpack.HeaderField{Name: "content-type", Value: "text/plain; charset=utf-8"},
		hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(a.body))},
	)
	if a.allow != "" {
		fields = append(fields, hpack.HeaderField{Name: "allow", Value: a.allow})
	}
	// A gRPC client goes by the :status of a response that is not
	// application/grpc, so these cost nothing; they say more to people.
	fields, _ = appendStatus(fields, st)

	t.mu.Lock()
	t.streams.set(id, &s.stream)
	t.mu.Unlock()
	s.register = controlbuf.RegisterStream{Stream: &s.ls}
	s.headers = controlbuf.HeaderFrame{Stream: &s.ls, Fields: fields}
	s.firstDataUsed.Store(true)
	s.firstData = controlbuf.DataFrame{Stream: &s.ls, Data: a.body, EndStream: true, OnDone: s.answerWritten}
	t.cb.Put(&s.register)
	t.cb.Put(&s.headers)
	t.cb.Put(&s.firstData)
	if endStream {
		t.recvEndStream(&s.stream)
	}
}

// answerWritten runs on loopy's goroutine once the answer's last byte
// was written: the stream ends if the request did, else it waits for the
// request's end, for at most answerLinger.
func (s *ServerStream) answerWritten() {
	s.answerOut.Store(true)
	if s.recvDone.Load() {
		s.finish(errStreamDone, nil, false, 0)
		return
	}
	s.setDeadlineTimer(time.AfterFunc(s.t.answerLinger, s.answerLingered))
}

// requestEnded runs on the reader goroutine when the client ended the
// request of an answered stream: the stream ends if the answer was
// written (else answerWritten ends it).
func (s *ServerStream) requestEnded() {
	if s.answerOut.Load() {
		s.finish(errStreamDone, nil, false, 0)
	}
}

// answerLingered resets an answered stream whose client did not finish
// its request in time: RST_STREAM(NO_ERROR), RFC 9113 §8.1.
func (s *ServerStream) answerLingered() {
	s.finish(errStreamDone, nil, !s.recvDone.Load(), http2.ErrCodeNo)
}
