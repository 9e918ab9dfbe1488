// Package testhook holds hooks that tests, in this module's packages and
// in its stress suite, set to reach states that are impractical to reach
// otherwise. They are for tests only: production code reads them but
// never sets them, and a zero hook changes nothing.
//
// A hook is global: a test that sets one must not run in parallel with
// tests that would be disturbed by it, and must reset it when done.
package testhook

import "sync/atomic"

// ClientStreamsBeforeDrain, when positive, makes every client connection
// created while it is set start its stream ids so close to the id at
// which a connection drains (about three quarters of 2^31) that it
// drains after this many streams: the next stream after them finds the
// connection draining and goes to a new connection.
var ClientStreamsBeforeDrain atomic.Int32
