// Package outfile writes the files loadprof produces (result.json, .hgrm,
// .hlog, .html, traces) without lying about them: a regular file is
// replaced atomically through a temporary file beside it, a device or a
// fifo is written in place, a symlink is followed (its target is replaced,
// the link stays), and "-" is standard output. A write that fails is an
// *Error, and the file that was there before is left as it was.
package outfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Stdout is the path that means standard output.
const Stdout = "-"

// Error is an output that could not be written. Commands exit 4 on it.
type Error struct {
	Flag string // the flag that named the file (--out), or "" when none did
	Path string // as the user gave it
	Err  error
}

func (e *Error) Error() string {
	name := e.Path
	if e.Flag != "" {
		name = e.Flag + " " + e.Path
	}
	if e.Path == Stdout {
		name = strings.TrimSpace(e.Flag + " - (standard output)")
	}
	return fmt.Sprintf("%s: could not write it: %v", name, bare(e.Err))
}

func (e *Error) Unwrap() error { return e.Err }

// Failed returns the *Error of every output that failed in err (which may
// join several), keyed by the path as given.
func Failed(err error) map[string]*Error {
	out := map[string]*Error{}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if oe, ok := err.(*Error); ok {
			out[oe.Path] = oe
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// tempMarker is in the name of every temporary file loadprof makes, so a
// file left behind by a killed run is plainly loadprof's:
// .NAME.loadprof-tmp-PID-RANDOM.
const tempMarker = ".loadprof-tmp-"

func tempPrefix(base string) string { return "." + base + tempMarker }

// TempPattern is the os.CreateTemp pattern for a temporary file that will
// become base.
func TempPattern(base string) string {
	return tempPrefix(base) + strconv.Itoa(os.Getpid()) + "-*"
}

// RemoveStale removes the temporary files for base in dir that processes
// no longer running left behind (a run killed with SIGKILL cannot remove
// its own). Files of a process still running are kept: it may be writing.
func RemoveStale(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := tempPrefix(base)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processRunning(pid) {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// absent reports whether err says that a path does not exist, also
// because one of its parents is a file.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// resolve follows path while it is a symlink and returns what it points
// at (which need not exist yet: writing through a dangling link creates
// its target, as a shell redirection does).
func resolve(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if absent(err) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// File is an output being written. Write to it, then Commit (the file
// appears whole) or Abort (nothing changes).
type File struct {
	flag, path string
	target     string   // path with symlinks followed
	f          *os.File // the temporary file, or the device written in place; nil for stdout
	tmp        string   // name of the temporary file; "" when written in place
	mode       fs.FileMode
	err        error // the first write error
	done       bool
}

// writeHook, when set by a test, replaces every write to a file: a
// full disk without a full disk.
var writeHook func(f *os.File, p []byte) (int, error)

// IsStdout reports whether path is standard output: "-", or a name of the
// file standard output is (/dev/stdout, /proc/self/fd/1, the file it was
// redirected to).
func IsStdout(path string) bool {
	if path == Stdout {
		return true
	}
	if path == "" {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	out, err := os.Stdout.Stat()
	return err == nil && os.SameFile(fi, out)
}

// Create starts writing the output path, named after flag in errors.
func Create(flag, path string) (*File, error) {
	o := &File{flag: flag, path: path}
	if IsStdout(path) {
		return o, nil
	}
	// A device or a fifo, also behind a symlink (/dev/stderr is one to a
	// link the kernel resolves): renaming over it would destroy it.
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && !fi.Mode().IsRegular() {
		if o.f, err = os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); err != nil {
			return nil, o.fail(err)
		}
		return o, nil
	}
	target, err := resolve(path)
	if err != nil {
		return nil, o.fail(err)
	}
	o.target = target
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return nil, o.fail(errors.New("it is a directory"))
	case err == nil && !fi.Mode().IsRegular():
		return nil, o.fail(errors.New("it is neither a regular file nor a device")) // it changed under us
	case err == nil:
		o.mode = fi.Mode().Perm() // a replaced file keeps its permissions
	case absent(err):
		o.mode = 0o644
	default:
		return nil, o.fail(err)
	}
	dir, base := filepath.Dir(target), filepath.Base(target)
	RemoveStale(dir, base)
	if o.f, err = os.CreateTemp(dir, TempPattern(base)); err != nil {
		return nil, o.fail(fmt.Errorf("cannot create a file in %s: %w", dir, bare(err)))
	}
	o.tmp = o.f.Name()
	return o, nil
}

// Write writes p; the first error sticks and is returned by Commit too.
func (o *File) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	var n int
	var err error
	switch {
	case o.f == nil:
		n, err = os.Stdout.Write(p)
	case writeHook != nil:
		n, err = writeHook(o.f, p)
	default:
		n, err = o.f.Write(p)
	}
	if err != nil {
		o.err = o.fail(err)
	}
	return n, o.err
}

// Commit finishes the output: a replaced file is synced and renamed into
// place. On an error the old file is left as it was.
func (o *File) Commit() error {
	if o.done {
		return o.err
	}
	o.done = true
	if o.f == nil {
		return o.err
	}
	err := o.err
	if err == nil && o.tmp != "" {
		if serr := o.f.Sync(); serr != nil {
			err = o.fail(serr)
		}
	}
	if cerr := o.f.Close(); err == nil && cerr != nil {
		err = o.fail(cerr)
	}
	if o.tmp == "" {
		return err
	}
	if err == nil {
		if cerr := os.Chmod(o.tmp, o.mode); cerr != nil {
			err = o.fail(cerr)
		}
	}
	if err == nil {
		if rerr := os.Rename(o.tmp, o.target); rerr != nil {
			err = o.fail(rerr)
		}
	}
	if err != nil {
		os.Remove(o.tmp)
		return err
	}
	syncDir(filepath.Dir(o.target))
	return nil
}

// Close is Commit, so that a File is an io.WriteCloser.
func (o *File) Close() error { return o.Commit() }

// Abort drops what was written: the old file stays.
func (o *File) Abort() {
	if o.done {
		return
	}
	o.done = true
	if o.f != nil {
		o.f.Close()
	}
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// fail wraps err as this output's *Error, without the temporary file's
// name that an *os.PathError would show.
func (o *File) fail(err error) *Error {
	var pe *fs.PathError
	if errors.As(err, &pe) && (pe.Path == o.tmp || pe.Path == o.target || pe.Path == o.path) {
		err = pe.Err
	}
	return &Error{Flag: o.flag, Path: o.path, Err: bare(err)}
}

// bare strips the file names of an *os.LinkError or *fs.PathError whose
// error says enough (the caller names the file).
func bare(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.Contains(pe.Path, tempMarker) {
		return pe.Err
	}
	return err
}

// Write writes data to the output path in one go (see Create).
func Write(flag, path string, data []byte) error {
	o, err := Create(flag, path)
	if err != nil {
		return err
	}
	if _, err := o.Write(data); err != nil {
		o.Abort()
		return err
	}
	return o.Commit()
}

// WriteTo writes what fill writes to the output path, or nothing when
// fill fails.
func WriteTo(flag, path string, fill func(io.Writer) error) error {
	o, err := Create(flag, path)
	if err != nil {
		return err
	}
	if err := fill(o); err != nil {
		o.Abort()
		var oe *Error
		if errors.As(err, &oe) {
			return err
		}
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return o.Commit()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the rename is durable on most filesystems without it
		d.Close()
	}
}
