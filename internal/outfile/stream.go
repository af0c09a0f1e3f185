package outfile

import "os"

// Stream starts writing the output path in place, for a file that readers
// follow while it grows (an interval log under `tail -f`): each Write goes
// straight to the file, so what was written is there at once, and a run
// that dies leaves the part it wrote. The file that was there is truncated
// at once; Commit closes it; Abort keeps what was written. A write that
// fails is an *Error, as for Create.
func Stream(flag, path string) (*File, error) {
	o := &File{flag: flag, path: path}
	if IsStdout(path) {
		return o, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, o.fail(err)
	}
	o.f = f
	return o, nil
}
