package main

import "fmt"

// fileMargin is the open files a run needs beside its connections:
// standard streams, event loop and timer descriptors, payload and output
// files, the profiler's connection.
const fileMargin = 24

// checkOpenFileLimit refuses a run whose connections cannot all be open
// at once: past the limit, connections fail by the thousand with "too
// many open files" and the outputs cannot be written. Go's runtime has
// already raised the soft limit to the hard one at start (package os
// does, on Linux and the BSDs), so the limit read here is the most this
// process can get.
func checkOpenFileLimit(conns int, flag string) error {
	limit, ok := openFileLimit()
	need := uint64(conns) + fileMargin
	if !ok || conns <= 0 || need <= limit {
		return nil
	}
	lower := ""
	if limit > 2*fileMargin {
		lower = fmt.Sprintf(" or lower %s to %d", flag, limit-fileMargin)
	}
	return fmt.Errorf("%s %d needs about %d open files (one per connection, %d more for the rest), but this process may open only %d: raise the limit (ulimit -n %d; the hard limit is in /etc/security/limits.conf, or docker's --ulimit nofile)%s",
		flag, conns, need, fileMargin, limit, need, lower)
}
