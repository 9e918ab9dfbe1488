package transport

// What a server checks of a request body beyond flow control: that it is
// as long as its content-length says (RFC 9113 §8.1.1), and the body of a
// request answered without a handler, dropped.

import (
	"errors"

	"golang.org/x/net/http2"
)

// errContentLength is the cause of the stream error that ends a request
// whose DATA payloads do not add up to its content-length.
var errContentLength = errors.New("request body length differs from its content-length")

// checkRequestBody runs on the reader goroutine for a DATA frame of a
// stream with bodyCheck set (a request with a content-length, or one
// answered by answerHTTP), once flow control accepted it and before its
// payload (data bytes, then padding: length bytes in all) is read. A body
// longer than its content-length is malformed as soon as the sum passes
// it, a shorter one at END_STREAM: the stream is reset with PROTOCOL_ERROR
// and the frame's payload discarded. handled reports that the frame's
// payload was consumed here.
func (c *http2Conn) checkRequestBody(s *stream, length, data uint32, endStream bool) (handled bool, err error) {
	ss := s.ss
	if ss == nil {
		return false, nil
	}
	if ss.bodyLeft >= 0 {
		n := int64(data)
		if n > ss.bodyLeft || endStream && n != ss.bodyLeft {
			if err := c.discard(int(length)); err != nil {
				return true, err
			}
			c.streamError(s.id.Load(), http2.ErrCodeProtocol, errContentLength)
			return true, nil
		}
		ss.bodyLeft -= n
	}
	if ss.answered {
		// Nobody reads the body of a request answered by answerHTTP:
		// it is dropped, its bytes already counted against (and so
		// refunded to) the connection window.
		if err := c.discard(int(length)); err != nil {
			return true, err
		}
		if endStream {
			c.side.recvEndStream(s)
		}
		return true, nil
	}
	return false, nil
}
