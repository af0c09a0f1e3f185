//go:build linux

package load

import "time"

// streamAlive gives c's request the whole timeout again when its stream
// got output (see llmStream.takeProgress): an LLM answer fails when it
// stalls, not when it is long. After data: [DONE] the wait for the body's
// end is drainBound. The in-flight list stays in deadline order.
func (l *eventLoop) streamAlive(c *loopConn, now time.Duration) {
	if !c.framer.stream.takeProgress() {
		return
	}
	wait := l.rest.cfg.Timeout
	if c.framer.stream.finished() {
		wait = drainBound(wait)
	}
	c.deadline = now + wait
	l.unlinkInflight(c)
	l.insertInflight(c)
}

// insertInflight links c into the in-flight list at its deadline's place,
// searching from the tail: a renewed timeout is the latest deadline, and
// a drain bound is short but rare.
func (l *eventLoop) insertInflight(c *loopConn) {
	after := l.tail
	for after != nil && after.deadline > c.deadline {
		after = after.prev
	}
	if after == l.tail {
		l.pushInflight(c)
		return
	}
	c.prev = after
	if after != nil {
		c.next = after.next
		after.next = c
	} else {
		c.next = l.head
		l.head = c
	}
	c.next.prev = c
}

// streamComplete ends c's request as answered when its stream reached
// data: [DONE] though the body's framing did not end (the drain bound
// passed, or the connection closed): the answer is whole, the connection
// is closed rather than reused, and the request ends at [DONE].
func (l *eventLoop) streamComplete(c *loopConn, now time.Duration) bool {
	s := c.framer.stream
	if !s.finished() {
		return false
	}
	l.closeConn(c)
	l.finish(c, Outcome{Class: OK, Code: s.status}, s.doneAt, now)
	return true
}
