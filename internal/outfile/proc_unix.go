//go:build unix

package outfile

import (
	"errors"
	"syscall"
)

// processRunning reports whether a process with pid exists (a signal 0
// reaches it, or it exists but belongs to another user).
func processRunning(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// openableInPlace checks that a device or fifo may be opened for
// writing. It asks access(2) rather than opening: opening a fifo would
// wake its reader, which would see the end of its input at once.
func openableInPlace(path string) error {
	return syscall.Access(path, 2) // W_OK
}
