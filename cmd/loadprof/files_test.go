package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/sim"
)

const oneBody = `{"instances": [[1, 2, 3, 4]]}`

// command runs the binary as cmd describes (a directory, a user, a shell
// around it) and returns its exit code, stdout and stderr.
func command(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestOutDashWritesTheResultToStdoutAndTheSummaryToStderr(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	cmd := exec.Command(binary, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--concurrency", "2", "--requests", "50", "--out", "-")
	cmd.Dir = dir
	code, stdout, stderr := command(t, cmd)
	var res struct {
		Version  int   `json:"version"`
		Requests int64 `json:"requests"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Version != 3 || res.Requests != 50 {
		t.Fatalf("exit %d, stdout is not the result (%v): %q\nstderr %s", code, err, stdout, stderr)
	}
	if !strings.Contains(stderr, "loadprof run: REST") || !strings.Contains(stderr, "result written to standard output") {
		t.Fatalf("the summary is not on stderr: %q", stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files made in the working directory: %v", entries)
	}
	// A name of standard output is standard output too. (/proc/self/fd/1 is
	// where /dev/stdout points; procfs refuses a rename, so a broken writer
	// cannot replace it as it could /dev/stdout as root.)
	code, stdout, stderr = loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--concurrency", "2", "--requests", "50", "--out", "/proc/self/fd/1")
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Requests != 50 || !strings.Contains(stderr, "loadprof run: REST") {
		t.Fatalf("--out /proc/self/fd/1: exit %d (%v)\nstdout %q\nstderr %s", code, err, stdout, stderr)
	}
	code, stdout, _ = loadprof(t, "run", "--help")
	if code != 0 || !strings.Contains(stdout, "- writes it to standard output (the summary then goes to stderr)") {
		t.Fatalf("--help does not say what --out - does:\n%s", stdout)
	}
}

func TestOutputsFollowSymlinksAndWriteFifosInPlace(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "runs"), 0o755)
	link := filepath.Join(dir, "latest.json")
	if err := os.Symlink("runs/r1.json", link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "hgrm.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	read := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until loadprof opens it for writing
		if err != nil {
			read <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		read <- string(b)
	}()
	defer func() { // a loadprof that never opened the fifo leaves the reader waiting: release it
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a measure: a blocked open must fail the test, not hang it
	defer cancel()
	code, _, stderr := command(t, exec.CommandContext(ctx, binary, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--concurrency", "2", "--requests", "50", "--out", link, "--hgrm", fifo))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("--out replaced the symlink: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "runs", "r1.json")); err != nil || !bytes.Contains(b, []byte(`"version": 3`)) {
		t.Fatalf("the link's target holds %q (%v)", b, err)
	}
	if got := <-read; !strings.Contains(got, "Percentile") {
		t.Fatalf("the fifo's reader got %q", got)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("--hgrm replaced the fifo: %v", err)
	}
}

func TestAFailedWriteExitsFourAndIsNeverReportedAsWritten(t *testing.T) {
	srv := startSim(t, sim.Config{})
	full := testkit.FullDevice(t)
	dir := t.TempDir()
	hgrm, hlog := filepath.Join(dir, "r.hgrm"), filepath.Join(dir, "r.hlog")
	code, stdout, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--concurrency", "2", "--requests", "50", "--out", full, "--hgrm", hgrm, "--hlog", hlog)
	if code != 4 {
		t.Fatalf("exit %d, want 4\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "result written") || !strings.Contains(stdout, "result NOT written to "+full) {
		t.Fatalf("stdout claims the result was written:\n%s", stdout)
	}
	if !strings.Contains(stderr, "loadprof run: --out "+full+": could not write it: no space left on device") {
		t.Fatalf("stderr %q", stderr)
	}
	if _, err := os.Stat(hgrm); err != nil || !strings.Contains(stdout, "latency distribution written to "+hgrm) {
		t.Fatalf("the .hgrm, which could be written, was not (%v):\n%s", err, stdout)
	}
	if fi, err := os.Stat(hlog); err != nil || fi.Size() == 0 || !strings.Contains(stdout, "interval log written to "+hlog) {
		t.Fatalf("the interval log, which could be written, was not (%v):\n%s", err, stdout)
	}
	if strings.Count(stderr, "loadprof run: ") != 1 {
		t.Fatalf("want one line naming the one failed output, got %q", stderr)
	}

	// report and merge: the same contract.
	res := filepath.Join(dir, "r.json")
	if code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--concurrency", "2", "--requests", "50", "--out", res); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{{"report", res, "--html", full}, {"report", res, "--hgrm", full}, {"merge", "--force", res, res, "-o", full}} {
		code, stdout, stderr := loadprof(t, args...)
		if code != 4 || !strings.Contains(stdout, "NOT written to "+full) || strings.Contains(strings.ReplaceAll(stdout, "NOT written", ""), "written to "+full) ||
			!strings.Contains(stderr, "could not write it: no space left on device") {
			t.Errorf("loadprof %s: exit %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

func TestUnwritableOutputsFailBeforeAnyLoadIsSent(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	data := writeFile(t, "data.json", oneBody)
	base := []string{"run", "--url", srv.PredictURL(), "--data", data, "--rate", "100", "--duration", "5s"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--out", filepath.Join(dir, "missing", "r.json")}, "--out " + filepath.Join(dir, "missing", "r.json") + ": directory " + filepath.Join(dir, "missing") + " does not exist"},
		{[]string{"--hgrm", dir}, "--hgrm " + dir + ": is a directory"},
		{[]string{"--html", filepath.Join(file, "r.html")}, file + " is not a directory"},
		{[]string{"--hlog", filepath.Join(dir, "nope", "r.hlog")}, "does not exist"},
		{[]string{"--profile", srv.GRPCAddr(), "--logdir", filepath.Join(file, "tb")}, "--logdir " + filepath.Join(file, "tb") + ": " + file + " is in the way"},
		{[]string{"--out", "-", "--html", "-"}, "only one output can go to standard output"},
	}
	for _, c := range cases {
		code, _, stderr := loadprof(t, append(base, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	code, _, stderr := loadprof(t, "profile", "--addr", srv.GRPCAddr(), "--logdir", filepath.Join(file, "tb"))
	if code != 2 || !strings.Contains(stderr, "is in the way") {
		t.Errorf("profile: exit %d, stderr %q", code, stderr)
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d requests sent before the outputs were found unwritable", n)
	}
}

func TestAReadOnlyDirectoryFailsBeforeAnyLoadIsSent(t *testing.T) {
	srv := startSim(t, sim.Config{})
	// A directory the user running loadprof cannot write to. Root writes
	// anywhere, so as root loadprof runs as nobody.
	dir, err := os.MkdirTemp("", "loadprof-ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(oneBody), 0o644)
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o555)
	os.Chmod(dir, 0o755)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"--out", filepath.Join(ro, "r.json")},
		{"--profile", srv.GRPCAddr(), "--logdir", filepath.Join(ro, "tb")},
	} {
		cmd := exec.Command(binary, append([]string{"run", "--url", srv.PredictURL(), "--data", data, "--rate", "100", "--duration", "5s"}, args...)...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		code, _, stderr := command(t, cmd)
		if code != 2 || !strings.Contains(stderr, "cannot create files in "+ro+": permission denied") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d requests sent before the read-only directory was found", n)
	}
}

// underFileLimit runs the binary with the open-file limit set by the shell
// first (ulimit ARGS).
func underFileLimit(t *testing.T, ulimit string, args ...string) (int, string, string) {
	t.Helper()
	return command(t, exec.Command("sh", append([]string{"-c", "ulimit " + ulimit + ` && exec "$0" "$@"`, binary}, args...)...))
}

func TestAnOpenFileLimitTooLowForTheConnectionsIsRefusedBeforeAnyLoad(t *testing.T) {
	srv := startSim(t, sim.Config{})
	data := writeFile(t, "data.json", oneBody)
	rest := []string{"run", "--url", srv.PredictURL(), "--data", data, "--duration", "5s"}
	cases := []struct {
		args []string
		want string
	}{
		{append(rest, "--concurrency", "500"), "--concurrency 500 needs about 524 open files"},
		{append(rest, "--concurrency", "100:400:100"), "--concurrency 400 needs about 424 open files"},
		{append(rest, "--rate", "100"), "--max-inflight 1000 needs about 1024 open files"},
		{[]string{"run", "--grpc", srv.GRPCAddr(), "--model", srv.Model(), "--data", data, "--rate", "100", "--connections", "300"}, "--connections 300 needs"},
	}
	for _, c := range cases {
		code, _, stderr := underFileLimit(t, "-n 256", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "may open only 256: raise the limit (ulimit -n") {
			t.Errorf("%v: exit %d, stderr %q", c.args[len(c.args)-2:], code, stderr)
		}
	}
	if n := srv.Predicts(); n != 0 {
		t.Fatalf("%d requests sent under a limit too low for the run", n)
	}
	// Within the limit the run goes ahead; a low soft limit is raised to
	// the hard one at start.
	for _, ulimit := range []string{"-n 256", "-S -n 64"} {
		code, _, stderr := underFileLimit(t, ulimit, "run", "--url", srv.PredictURL(), "--data", data, "--concurrency", "200", "--requests", "400")
		if code != 0 {
			t.Errorf("ulimit %s, --concurrency 200: exit %d, stderr %q", ulimit, code, stderr)
		}
	}
}

// An output that is one of the command's inputs would destroy it (the
// payload, a measured run): refused before anything is read or sent, even
// through a symlink.
func TestAnOutputThatIsAnInputIsRefused(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(oneBody), 0o644)
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	for _, out := range []string{a, b} {
		if code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", data, "--concurrency", "1", "--requests", "5", "--out", out, "-q"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	link := filepath.Join(dir, "link.json")
	os.Symlink(a, link)
	before := srv.Predicts()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--url", srv.PredictURL(), "--data", data, "--concurrency", "1", "--requests", "5", "--out", data}, "--out " + data + " is also --data"},
		{[]string{"report", a, "--html", a}, "--html " + a + " is also result file"},
		{[]string{"report", a, "--hgrm", link}, "--hgrm " + link + " is also result file"},
		{[]string{"merge", a, b, "-o", b}, "-o " + b + " is also result file"},
	} {
		was := map[string][]byte{}
		for _, f := range []string{data, a, b} {
			was[f], _ = os.ReadFile(f)
		}
		code, _, stderr := loadprof(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
		for f, content := range was {
			if now, _ := os.ReadFile(f); !bytes.Equal(now, content) {
				t.Errorf("%v changed %s", c.args, f)
			}
		}
	}
	if n := srv.Predicts() - before; n != 0 {
		t.Errorf("%d requests sent by runs that were refused", n)
	}
}

// A reader of the summary that stops early (| head -1) must not cost the
// files: the process goes on past the broken pipe and writes them.
func TestAClosedStdoutPipeDoesNotLoseTheFiles(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(oneBody), 0o644)
	out, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	// exec replaces the shell, so $? of the pipeline's first part is lost;
	// PIPESTATUS needs bash.
	script := fmt.Sprintf(`%q run --url %q --data %q --concurrency 2 --requests 200 --out %q --html %q -q | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}`,
		binary, srv.PredictURL(), data, out, html)
	code, _, stderr := command(t, exec.Command("bash", "-c", script))
	for _, f := range []string{out, html} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s not written after stdout closed (exit %d): %v\n%s", filepath.Base(f), code, err, stderr)
		}
	}
	if code != 0 {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// A sweep too short for its stability check says so instead of flagging
// nothing in silence.
func TestAShortSweepSaysItsStabilityIsNotChecked(t *testing.T) {
	srv := startSim(t, sim.Config{})
	args := []string{"run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody), "--rate", "50:100:50", "--warmup", "200ms", "-q"}
	code, stdout, stderr := loadprof(t, append(args, "--duration", "1s")...)
	if code != 0 || !strings.Contains(stdout, "note: --step-stability was not checked: it needs steps of at least 5s") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if testing.Short() {
		return
	}
	code, stdout, stderr = loadprof(t, append(args, "--duration", "5s", "--rate", "50:50:50")...)
	if code != 0 || strings.Contains(stdout, "not checked") {
		t.Errorf("a 5 s step: exit %d, stderr %q", code, stderr)
	}
}
