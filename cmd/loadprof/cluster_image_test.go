package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/sim"
)

// dockerfile is the parts of the Dockerfile this test acts out: the
// build stage's command that makes the binary, and the final stage's
// base, copies and entrypoint.
type dockerfile struct {
	build      string      // the RUN line that runs go build, continuation lines joined
	finalFrom  string      // the last FROM's image
	copies     [][2]string // the last stage's COPY --from=build SRC DST
	entrypoint []string
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, continuation lines joined, comments left out.
	var instrs []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	var d dockerfile
	for _, in := range instrs {
		word, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			d.finalFrom, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
			d.copies = nil
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.build = strings.TrimSpace(rest)
			}
		case "COPY":
			f := strings.Fields(rest)
			if len(f) == 3 && f[0] == "--from=build" {
				d.copies = append(d.copies, [2]string{f[1], f[2]})
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		}
	}
	if d.build == "" || d.finalFrom == "" || len(d.entrypoint) == 0 {
		t.Fatalf("the Dockerfile has no go build, final FROM or ENTRYPOINT: %+v", d)
	}
	return d
}

// The image cannot be built here (no Docker engine), so this builds what
// it would hold as the Dockerfile does (its build command, run as it is,
// with /out moved to a temporary directory), checks the binary is static,
// and runs it in a root holding only what the final stage copies:
// `worker --help`, and a short run against the simulator.
func TestTheImagesBinaryIsStaticAndRunsInAnEmptyRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary with the Dockerfile's flags")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	d := readDockerfile(t, filepath.Join(repo, "Dockerfile"))
	if d.finalFrom != "scratch" {
		t.Fatalf("the final stage is FROM %s; this test acts out FROM scratch", d.finalFrom)
	}
	if !strings.Contains(d.build, "CGO_ENABLED=0") {
		t.Errorf("the build does not set CGO_ENABLED=0: %s", d.build)
	}
	stage := t.TempDir()
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(d.build, "/out", filepath.Join(stage, "out")))
	cmd.Dir = repo // WORKDIR /src after COPY . .
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build: %v\n%s", err, out)
	}
	inStage := func(src string) string {
		if strings.HasPrefix(src, "/out/") || src == "/out" {
			return filepath.Join(stage, src)
		}
		return src // from the build image's own files: this machine's
	}

	// Static: no program interpreter, no shared library.
	bin := inStage("/out/loadprof")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a program interpreter: it is dynamic")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	f.Close()
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, _ := exec.Command(ldd, bin).CombinedOutput()
		if !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
			t.Errorf("ldd: %s", out)
		}
	}

	// The root: what the final stage copies, nothing else.
	root := t.TempDir()
	for _, c := range d.copies {
		src, dst := inStage(c[0]), filepath.Join(root, c[1])
		info, err := os.Stat(src)
		if os.IsNotExist(err) && !strings.HasPrefix(c[0], "/out") {
			t.Skipf("this machine lacks %s, which the build image gives", c[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if info.IsDir() {
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dst, info.Mode().Perm()|info.Mode()&os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp in the image: %v, %v: want a world-writable sticky directory", fi, err)
	}

	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare on PATH (util-linux): cannot run the binary in an empty root")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("no chroot on PATH (coreutils): cannot run the binary in an empty root")
	}
	if out, err := exec.Command(unshare, "-r", chroot, root, d.entrypoint[0], "--version").CombinedOutput(); err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "unshare failed") {
			t.Skipf("unshare -r is not permitted here (user namespaces off): %s", strings.TrimSpace(string(out)))
		}
		t.Fatalf("the entrypoint in an empty root: %v\n%s", err, out)
	}
	inRoot := func(args ...string) (string, error) {
		full := append([]string{"-r", chroot, root}, d.entrypoint...)
		cmd := exec.Command(unshare, append(full, args...)...)
		cmd.Env = []string{} // the image sets none
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := inRoot("worker", "--help")
	if err != nil || !strings.Contains(out, "--join") {
		t.Errorf("worker --help in the empty root: %v\n%s", err, out)
	}
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	if err := os.WriteFile(filepath.Join(root, "data.json"), []byte(oneBody), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = inRoot("run", "--url", srv.PredictURL(), "--data", "/data.json", "--rate", "20", "--duration", "1s", "--out", "/tmp/result.json", "-q")
	if err != nil {
		t.Fatalf("a run in the empty root: %v\n%s", err, out)
	}
	res := readResult(t, filepath.Join(root, "tmp", "result.json"))
	if res.Requests != 20 || srv.Predicts() < 20 {
		t.Errorf("the run in the empty root sent %d requests (the server saw %d), want 20", res.Requests, srv.Predicts())
	}
}
