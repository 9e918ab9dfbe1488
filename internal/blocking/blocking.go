// Package blocking helps tests find where a sequence of calls starts to
// block, as writes do once a flow-control window and a write quota are
// used up.
package blocking

import "time"

// Count runs step up to limit times, one after another on a goroutine of
// its own, until a step fails. If the steps are still going after wait
// (one is blocked), it calls unblock, which must make the blocked step
// return, an error or not. It returns how many steps succeeded.
func Count(limit int, wait time.Duration, step func() error, unblock func()) int {
	done := make(chan int, 1)
	go func() {
		n := 0
		for ; n < limit && step() == nil; n++ {
		}
		done <- n
	}()
	select {
	case n := <-done:
		return n
	case <-time.After(wait):
		unblock()
		return <-done
	}
}
