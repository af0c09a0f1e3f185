package outfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStreamWritesInPlaceSoReadersSeeEachWriteAtOnce(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "run.hlog")
	os.WriteFile(target, []byte("an older, longer log\n"), 0o600)
	link := filepath.Join(dir, "link.hlog")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	o, err := Stream("--hlog", link)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"first\n", "second\n"} {
		if _, err := o.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(target)
		if want := map[string]string{"first\n": "first\n", "second\n": "first\nsecond\n"}[line]; string(got) != want {
			t.Fatalf("after writing %q the file holds %q, want %q", line, got, want)
		}
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced")
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file's mode changed to %v", fi.Mode().Perm())
	}
}

func TestStreamNamesTheFlagWhenTheFileCannotBeOpened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "run.hlog")
	_, err := Stream("--hlog", path)
	if err == nil || err.Error() != "--hlog "+path+": could not write it: no such file or directory" {
		t.Fatalf("err %v", err)
	}
}
