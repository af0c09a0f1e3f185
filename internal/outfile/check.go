package outfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Output is an output path and the flag that named it.
type Output struct {
	Flag, Path string
}

// Check finds, before any work is done, what would stop the output path
// from being written: a directory that does not exist, a directory in the
// way, a place where no file can be created. It creates and removes a
// temporary file to know, as only trying tells (read-only mounts, ACLs).
func Check(flag, path string) error {
	if path == "" || IsStdout(path) {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && !fi.Mode().IsRegular() {
		if err := openableInPlace(path); err != nil {
			return fmt.Errorf("%s %s: %w", flag, path, bare(err))
		}
		return nil
	}
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s %s: is a directory; give a file name", flag, path)
	case err == nil && !fi.Mode().IsRegular():
		if err := openableInPlace(target); err != nil {
			return fmt.Errorf("%s %s: %w", flag, path, bare(err))
		}
		return nil
	case err != nil && !absent(err):
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	dir, base := filepath.Dir(target), filepath.Base(target)
	if err := probeDir(dir, base); err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return nil
}

// CheckDir checks that files can be created in dir, which may not exist
// yet: its nearest existing ancestor must be a directory where loadprof
// can create files. value is what the user gave the flag.
func CheckDir(flag, value, dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s %s: %s is in the way: it is not a directory", flag, value, p)
			}
			break
		}
		if !absent(err) {
			return fmt.Errorf("%s %s: %w", flag, value, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s %s: %w", flag, value, err)
		}
		p = parent
	}
	if err := probeDir(p, "probe"); err != nil {
		return fmt.Errorf("%s %s: %w", flag, value, err)
	}
	return nil
}

// probeDir creates and removes a temporary file in dir.
func probeDir(dir, base string) error {
	fi, err := os.Stat(dir)
	switch {
	case absent(err):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, TempPattern(base))
	if err != nil {
		return fmt.Errorf("cannot create files in %s: %w", dir, bare(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// CheckAll checks every output that is set, and that no two of them are
// the same file or both standard output.
func CheckAll(outputs ...Output) error {
	seen := map[string]string{}
	for _, o := range outputs {
		if o.Path == "" {
			continue
		}
		if err := Check(o.Flag, o.Path); err != nil {
			return err
		}
		key := o.Path
		if IsStdout(key) {
			key = Stdout
		} else {
			if target, err := resolve(o.Path); err == nil {
				if abs, err := filepath.Abs(target); err == nil {
					key = abs
				}
			}
		}
		if prev, ok := seen[key]; ok {
			if key == Stdout {
				return fmt.Errorf("%s and %s: only one output can go to standard output", prev, o.Flag)
			}
			return fmt.Errorf("%s %s and %s: the same file; give each its own", o.Flag, o.Path, prev)
		}
		seen[key] = o.Flag
	}
	return nil
}

// Input is a file a command reads, named by its flag (or "result file"
// for an argument).
type Input struct {
	Flag, Path string
}

// CheckNotInput refuses an output that is the same file as an input
// (also through a symlink or a hard link): writing it would destroy what
// the command reads, and with it the only copy of a measured run.
func CheckNotInput(outputs []Output, inputs []Input) error {
	for _, o := range outputs {
		if o.Path == "" || IsStdout(o.Path) {
			continue
		}
		out, err := os.Stat(o.Path)
		if err != nil || !out.Mode().IsRegular() {
			continue // not there yet, or a device written in place
		}
		for _, in := range inputs {
			if in.Path == "" || in.Path == "-" {
				continue
			}
			if fi, err := os.Stat(in.Path); err == nil && os.SameFile(out, fi) {
				return fmt.Errorf("%s %s is also %s %s: writing it would destroy what is read; give the output another name", o.Flag, o.Path, in.Flag, in.Path)
			}
		}
	}
	return nil
}
