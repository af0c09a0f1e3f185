// Package profile captures server profiles through TensorFlow's gRPC
// ProfilerService (what TensorBoard's "Capture profile" does), stores the
// traces where TensorBoard's profile plugin looks for them, and summarises
// XSpace traces into top ops.
package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
)

// PluginDir is where TensorBoard's profile plugin finds runs under a logdir.
func PluginDir(logdir string) string { return filepath.Join(logdir, "plugins", "profile") }

// RunName names a capture the way TensorFlow's python client does:
// 2026_11_24_18_30_00.
func RunName(t time.Time) string { return t.Format("2006_01_02_15_04_05") }

// SafeName checks that a file name from a server (untrusted) is a plain
// name: no path separators, no "..", nothing hidden, nothing empty.
func SafeName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("file name %q is empty or a directory reference", name)
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0):
		return fmt.Errorf("file name %q contains a path separator", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("file name %q is hidden or relative", name)
	case len(name) > 255:
		return fmt.Errorf("file name of %d bytes is too long", len(name))
	}
	return nil
}

// Store writes the files of one run under LOGDIR/plugins/profile/RUN.
type Store struct {
	LogDir string
	Run    string
}

// Dir is the run's directory.
func (s Store) Dir() string { return filepath.Join(PluginDir(s.LogDir), s.Run) }

// ErrExists is returned when a file of the run is already there: traces
// are never overwritten silently.
var ErrExists = errors.New("already exists")

// ReserveRun makes the run's directory under logdir and returns its name:
// run itself, or run_2, run_3, ... when a run of that name exists (two
// captures in the same second, a second sweep into the same logdir), so
// that no capture lands in another's run. Making the directory is what
// reserves the name, also against another loadprof running at once.
func ReserveRun(logdir, run string) (string, error) {
	parent := PluginDir(logdir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return run, err
	}
	for i := 1; i <= 10000; i++ {
		name := run
		if i > 1 {
			name = fmt.Sprintf("%s_%d", run, i)
		}
		err := os.Mkdir(filepath.Join(parent, name), 0o755)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return run, err
		}
	}
	return run, fmt.Errorf("%s: 10000 runs named %s already", parent, run)
}

// Write stores data as the file name (checked with SafeName) in the run's
// directory and returns its path. The file is written to a temporary name
// and linked into place, so that an existing file is never replaced. A
// file that cannot be written is an *outfile.Error.
func (s Store) Write(name string, data []byte) (string, error) {
	if err := SafeName(name); err != nil {
		return "", fmt.Errorf("refusing to write a trace file from the server: %w", err)
	}
	tmp, err := s.Temp()
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", &outfile.Error{Path: filepath.Join(s.Dir(), name), Err: err}
	}
	return s.Commit(tmp, name)
}

// tempBase names the temporary files of a run's directory: a trace is
// received before its file's name is known.
const tempBase = "trace"

// Temp creates a temporary file in the run's directory, to be written and
// then linked into place with Commit. Temporary files left by a killed
// loadprof are removed first. A failure is an *outfile.Error.
func (s Store) Temp() (*os.File, error) {
	dir := s.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &outfile.Error{Path: dir, Err: err}
	}
	outfile.RemoveStale(dir, tempBase)
	tmp, err := os.CreateTemp(dir, outfile.TempPattern(tempBase))
	if err != nil {
		return nil, &outfile.Error{Path: dir, Err: err}
	}
	return tmp, nil
}

// Commit closes tmp (from Temp), links it into place as name (checked with
// SafeName) and returns its path; an existing file is never replaced. tmp
// itself is removed in any case. A file that cannot be written is an
// *outfile.Error.
func (s Store) Commit(tmp *os.File, name string) (string, error) {
	defer os.Remove(tmp.Name())
	closeErr := tmp.Close()
	if err := SafeName(name); err != nil {
		return "", fmt.Errorf("refusing to write a trace file from the server: %w", err)
	}
	path := filepath.Join(s.Dir(), name)
	if rel, err := filepath.Rel(s.LogDir, path); err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("refusing to write %q outside the logdir", name)
	}
	failed := func(err error) error { return &outfile.Error{Path: path, Err: err} }
	if closeErr != nil {
		return "", failed(closeErr)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", failed(err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%s: %w", path, ErrExists)
		}
		return "", failed(err)
	}
	return path, nil
}
