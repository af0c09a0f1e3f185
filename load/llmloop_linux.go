//go:build linux

package load

import "time"

// streamAlive gives c's request the whole timeout again when its stream
// got bytes: an LLM answer fails when it stalls, not when it is long. The
// in-flight list stays in deadline order, the new deadline being the
// latest.
func (l *eventLoop) streamAlive(c *loopConn, now time.Duration) {
	if !c.framer.stream.takeProgress() {
		return
	}
	c.deadline = now + l.rest.cfg.Timeout
	if l.tail != c {
		l.unlinkInflight(c)
		l.pushInflight(c)
	}
}
