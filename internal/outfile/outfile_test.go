package outfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// device returns a character device to write to: one made in the test's
// directory when running as root (so that a broken helper cannot replace
// the system's), else the system's (which a non-root user cannot replace).
func device(t *testing.T, name string, minor int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return "/dev/" + name
	}
	p := filepath.Join(t.TempDir(), name)
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|minor); err != nil {
		t.Skipf("mknod %s: %v", p, err)
	}
	return p
}

func isCharDevice(t *testing.T, p string) bool {
	t.Helper()
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplacesARegularFileKeepingItsPermissions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write("--out", p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if read(t, p) != "new" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %v", read(t, p), fi.Mode())
	}
	if err := Write("--out", filepath.Join(filepath.Dir(p), "fresh.json"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(filepath.Dir(p), "fresh.json")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file mode %v, want 0644", fi.Mode())
	}
}

func TestASymlinkIsFollowedAndStaysALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "data", "r.json")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "latest.json")
	if err := os.Symlink("data/r.json", link); err != nil { // relative, as ln -s makes them
		t.Fatal(err)
	}
	if err := Write("--out", link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if read(t, target) != "new" {
		t.Fatalf("target holds %q", read(t, target))
	}
	// A dangling link gets its target created, as a shell redirection does.
	dangling := filepath.Join(dir, "next.json")
	os.Symlink(filepath.Join(dir, "data", "next-target.json"), dangling)
	if err := Write("--out", dangling, []byte("made")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(dangling); fi.Mode()&os.ModeSymlink == 0 || read(t, filepath.Join(dir, "data", "next-target.json")) != "made" {
		t.Fatal("the dangling link was not followed")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".*"))
	more, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers)+len(more) > 0 {
		t.Fatalf("temporary files left: %v %v", leftovers, more)
	}
}

func TestAFifoIsWrittenInPlace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	if err := Check("--out", p); err != nil { // must not wake the reader
		t.Fatal(err)
	}
	if err := Write("--out", p, []byte("through the pipe")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through the pipe" {
		t.Fatalf("reader got %q", s)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the fifo was replaced: %v %v", fi.Mode(), err)
	}
}

func TestADeviceIsWrittenInPlace(t *testing.T) {
	null := device(t, "null", 3)
	if err := Write("--out", null, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	if !isCharDevice(t, null) {
		t.Fatalf("%s is no longer a device", null)
	}
	if err := Check("--out", null); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestAFullDeviceIsAFailedWrite(t *testing.T) {
	full := device(t, "full", 7)
	err := Write("--out", full, []byte("nowhere"))
	var oe *Error
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want an *Error with ENOSPC, got %v", err)
	}
	if !strings.Contains(err.Error(), "--out "+full+": could not write it: no space left on device") {
		t.Fatalf("message %q", err)
	}
	if !isCharDevice(t, full) {
		t.Fatal("the device was replaced")
	}
}

func TestAFailedWriteKeepsTheOldFileAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	os.WriteFile(p, []byte("old result"), 0o644)
	writeHook = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	defer func() { writeHook = nil }()
	err := Write("--out", p, []byte("new result, longer"))
	if !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), tempMarker) {
		t.Fatalf("err %v: want ENOSPC, without the temporary name", err)
	}
	if got := read(t, p); got != "old result" {
		t.Fatalf("old file now holds %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left in the directory: %v", entries)
	}
}

func TestTemporaryNamesAreLoadprofsAndStaleOnesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.html")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	stale := filepath.Join(dir, fmt.Sprintf(".r.html%s%d-123", tempMarker, dead.Process.Pid))
	live := filepath.Join(dir, fmt.Sprintf(".r.html%s%d-456", tempMarker, os.Getpid()))
	other := filepath.Join(dir, fmt.Sprintf(".other.html%s%d-789", tempMarker, dead.Process.Pid))
	for _, f := range []string{stale, live, other} {
		os.WriteFile(f, nil, 0o600)
	}
	var tmpName string
	writeHook = func(f *os.File, b []byte) (int, error) { tmpName = f.Name(); return f.Write(b) }
	defer func() { writeHook = nil }()
	if err := Write("--html", p, []byte("<html>")); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(".r.html.loadprof-tmp-%d-", os.Getpid()); !strings.HasPrefix(filepath.Base(tmpName), want) {
		t.Fatalf("temporary file %q, want it to start with %q", tmpName, want)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the stale temporary file of a dead process is still there")
	}
	for _, f := range []string{live, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: it belongs to a running process or to another output", f)
		}
	}
}

func TestStandardOutputIsNotAFileName(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	r, w, _ := os.Pipe()
	saved := os.Stdout
	os.Stdout = w
	err := Write("--out", "-", []byte("{}\n"))
	os.Stdout = saved
	w.Close()
	b, _ := io.ReadAll(r)
	if err != nil || string(b) != "{}\n" {
		t.Fatalf("stdout got %q, err %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a file was made: %v", entries)
	}
}

func TestANameOfStandardOutputIsStandardOutput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = saved }()
	name := fmt.Sprintf("/proc/self/fd/%d", w.Fd()) // what /dev/stdout links to
	if _, err := os.Stat(name); err != nil {
		t.Skip(err)
	}
	if !IsStdout(name) || !IsStdout("-") || IsStdout(filepath.Join(t.TempDir(), "x")) {
		t.Fatal("IsStdout is wrong")
	}
	if err := Check("--out", name); err != nil {
		t.Fatal(err)
	}
	if err := CheckAll(Output{"--out", name}, Output{"--html", "-"}); err == nil {
		t.Fatal("two outputs to standard output accepted")
	}
	if err := Write("--out", name, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(name); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s was replaced", name)
	}
	w.Close()
	b, _ := io.ReadAll(r)
	if string(b) != "{}\n" {
		t.Fatalf("standard output got %q", b)
	}
}

func TestCheckFindsWhatWouldStopTheWrite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, nil, 0o644)
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "missing", "r.json"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{dir, "is a directory"},
		{filepath.Join(file, "r.json"), "is not a directory"},
	}
	for _, c := range cases {
		if err := Check("--out", c.path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "--out "+c.path+": ") {
			t.Errorf("Check(%s) = %v, want %q", c.path, err, c.want)
		}
	}
	for _, ok := range []string{filepath.Join(dir, "new.json"), file, "-", ""} {
		if err := Check("--out", ok); err != nil {
			t.Errorf("Check(%s) = %v", ok, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the check left files: %v", entries)
	}
	if os.Geteuid() != 0 { // root writes anywhere; cmd/loadprof checks this as another user
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if err := Check("--out", filepath.Join(ro, "r.json")); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("read-only directory: %v", err)
		}
	}
}

func TestCheckDirAcceptsADirectoryToBeMadeAndRefusesAFileInTheWay(t *testing.T) {
	dir := t.TempDir()
	if err := CheckDir("--logdir", "tb", filepath.Join(dir, "tb", "plugins", "profile")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tb"), nil, 0o644)
	err := CheckDir("--logdir", "tb", filepath.Join(dir, "tb", "plugins", "profile"))
	if err == nil || !strings.Contains(err.Error(), "--logdir tb: "+filepath.Join(dir, "tb")+" is in the way") {
		t.Fatalf("file in the way: %v", err)
	}
}

func TestCheckAllRefusesTwoOutputsToOneFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	os.Symlink(p, filepath.Join(dir, "link.json"))
	if err := CheckAll(Output{"--out", "-"}, Output{"--hgrm", "-"}); err == nil || !strings.Contains(err.Error(), "only one output can go to standard output") {
		t.Errorf("two stdouts: %v", err)
	}
	if err := CheckAll(Output{"--out", p}, Output{"--hgrm", filepath.Join(dir, "link.json")}); err == nil || !strings.Contains(err.Error(), "the same file") {
		t.Errorf("same file through a link: %v", err)
	}
	if err := CheckAll(Output{"--out", p}, Output{"--hgrm", ""}, Output{"--html", "-"}); err != nil {
		t.Errorf("distinct outputs: %v", err)
	}
}

func TestFailedFindsEveryJoinedOutputError(t *testing.T) {
	err := fmt.Errorf("run: %w", errors.Join(&Error{Flag: "--out", Path: "a"}, errors.New("other"), &Error{Flag: "--hgrm", Path: "b"}))
	got := Failed(err)
	if len(got) != 2 || got["a"] == nil || got["b"] == nil {
		t.Fatalf("%v", got)
	}
}
