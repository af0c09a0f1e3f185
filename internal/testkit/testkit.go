// Package testkit holds what loadprof's tests share: the simulator started
// on loopback for one test, and payload files in a test's temporary
// directory.
package testkit

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/loadprof/loadprof/sim"
)

// Sim starts the simulator with REST and gRPC on free 127.0.0.1 ports and
// stops it when the test ends.
func Sim(tb testing.TB, cfg sim.Config) *sim.Server {
	tb.Helper()
	srv, err := sim.StartLoopback(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv
}

// File writes content to name in a temporary directory of the test and
// returns its path.
func File(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// ClosedAddr returns a 127.0.0.1 address nothing listens on: a port that
// was free a moment ago.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// FullDevice returns a device on which every write fails with ENOSPC: a
// full disk. As root it is made in the test's directory (so that a broken
// writer could replace only that one, not the system's /dev/full);
// otherwise it is /dev/full.
func FullDevice(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		return "/dev/full"
	}
	p := filepath.Join(tb.TempDir(), "full")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|7); err != nil {
		tb.Skipf("mknod: %v", err)
	}
	return p
}
