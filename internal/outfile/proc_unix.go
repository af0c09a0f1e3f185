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

// openableInPlace checks that a device or fifo can be opened for writing,
// without blocking on a fifo that has no reader yet (that is not an
// error: the reader may come).
func openableInPlace(path string) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENXIO) {
		return nil
	}
	if err != nil {
		return err
	}
	return syscall.Close(fd)
}
