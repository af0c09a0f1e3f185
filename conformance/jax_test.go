package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// startXLAServer starts a program of conformance/ (jax_server.py,
// torch_xla_server.py) with the interpreter in the environment variable
// envVar, set by scripts/pyenv-jax.sh's virtualenvs, and returns the
// address of its profiler server. The test skips when envVar is not set.
func startXLAServer(t *testing.T, envVar, script, why string, env ...string) string {
	t.Helper()
	return addr(startXLAProgram(t, envVar, script, why, env...).Profiler)
}

// xlaReady is the first line an XLA program of conformance/ prints: its
// profiler server's port, and its HTTP port if it serves one.
type xlaReady struct{ Profiler, HTTP int }

// startXLAProgram is startXLAServer, returning both ports.
func startXLAProgram(t *testing.T, envVar, script, why string, env ...string) xlaReady {
	t.Helper()
	need(t) // TensorFlow's client and xprof come from the TensorFlow virtualenv
	interpreter := os.Getenv(envVar)
	if interpreter == "" {
		t.Skipf("%s is not set (%s); skipping %s", envVar, why, script)
	}
	cmd := exec.Command(interpreter, script)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	var ready xlaReady
	select {
	case l, ok := <-line:
		if !ok || json.Unmarshal([]byte(l), &ready) != nil || ready.Profiler == 0 {
			t.Fatalf("%s did not start (first line %q)", script, l)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s did not start within 3 minutes", script)
	}
	return ready
}

// readSpace reads one .xplane.pb.
func readSpace(t *testing.T, path string) *tfproto.XSpace {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var space tfproto.XSpace
	if err := proto.Unmarshal(data, &space); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &space
}

func planeNames(space *tfproto.XSpace) []string {
	var names []string
	for _, p := range space.GetPlanes() {
		names = append(names, p.GetName())
	}
	sort.Strings(names)
	return names
}

// hloModules lists the programs of the /host:metadata plane that carry
// their HLO proto (the "Hlo Proto" stat of XLA's metadata collector), which
// xprof's memory viewer and graph viewer read.
func hloModules(space *tfproto.XSpace) []string {
	var modules []string
	for _, p := range space.GetPlanes() {
		if p.GetName() != "/host:metadata" {
			continue
		}
		for _, em := range p.GetEventMetadata() {
			for _, st := range em.GetStats() {
				if p.GetStatMetadata()[st.GetMetadataId()].GetName() == "Hlo Proto" && len(st.GetBytesValue()) > 0 {
					modules = append(modules, em.GetName())
				}
			}
		}
	}
	sort.Strings(modules)
	return modules
}

func xprofTools(t *testing.T, files ...string) []string {
	t.Helper()
	out, err := exec.Command(python, append([]string{"xprof_tools.py"}, files...)...).Output()
	if err != nil {
		t.Fatalf("xprof_tools.py: %v", err)
	}
	var r struct{ Tools []string }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("xprof_tools.py: %v: %s", err, out)
	}
	return r.Tools
}

// TestJAXProfilerServerGivesLoadprofWhatItGivesTensorFlowsClient captures
// a running JAX program through jax.profiler.start_server with loadprof and
// with TensorFlow's own client (what TensorBoard runs): loadprof's capture
// has the /host:metadata plane with the jit-compiled programs' HLO protos,
// xprof offers its memory viewer and graph viewer for it, and both clients
// get the same planes.
func TestJAXProfilerServerGivesLoadprofWhatItGivesTensorFlowsClient(t *testing.T) {
	server := startXLAServer(t, "LOADPROF_PYTHON_JAX", "jax_server.py",
		"scripts/test.sh sets it from scripts/pyenv-jax.sh, which needs a Python 3.12")
	checkXLAServer(t, server, "jit_layer")
}

// TestTorchXLAProfilerServerGivesLoadprofWhatItGivesTensorFlowsClient is
// the same for PyTorch/XLA (torch_xla.debug.profiler.start_server) on its
// CPU device. It is opt-in: PyPI's torch for Linux is the CUDA build, and
// its virtualenv takes 7 GB (README.md, "Servers tested").
func TestTorchXLAProfilerServerGivesLoadprofWhatItGivesTensorFlowsClient(t *testing.T) {
	server := startXLAServer(t, "LOADPROF_PYTHON_TORCH_XLA", "torch_xla_server.py",
		"opt-in: bash scripts/pyenv-jax.sh conformance/requirements-torch-xla.txt makes its 7 GB virtualenv",
		"PJRT_DEVICE=CPU")
	checkXLAServer(t, server, "SyncTensorsGraph")
}

// checkXLAServer captures the XLA program's profiler server at server with
// loadprof and TensorFlow's client and compares what they got. module is
// the prefix of the name of an HLO module the program runs.
func checkXLAServer(t *testing.T, server, module string) {
	ourLogdir := t.TempDir()
	cc, err := grpc.NewClient(server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	res, err := profile.Capture(context.Background(), cc, server, profile.Options{Duration: time.Second, LogDir: ourLogdir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Saved != profile.SavedLocal || res.EmptyTrace || len(res.TraceFiles()) != 1 {
		t.Fatalf("loadprof's capture: %+v", res)
	}
	ours := readSpace(t, res.TraceFiles()[0])
	modules := hloModules(ours)
	hasModule := false
	for _, m := range modules {
		hasModule = hasModule || strings.HasPrefix(m, module)
	}
	if !hasModule {
		t.Fatalf("loadprof's capture has no HLO proto of %s in /host:metadata (planes %v, HLO modules %v)", module, planeNames(ours), modules)
	}
	tools := xprofTools(t, res.TraceFiles()[0])
	for _, want := range []string{"memory_viewer", "graph_viewer", "trace_viewer@"} {
		if !contains(tools, want) {
			t.Errorf("xprof offers %v for loadprof's capture, not %s", tools, want)
		}
	}

	// TensorFlow's client, against the same server: the server saves the
	// trace under the logdir (same machine).
	tfLogdir := t.TempDir()
	if out, err := exec.Command(python, "tf_trace.py", server, tfLogdir, "1000").CombinedOutput(); err != nil {
		t.Fatalf("tf_trace.py: %v\n%s", err, out)
	}
	theirFiles, _ := filepath.Glob(filepath.Join(tfLogdir, "plugins", "profile", "*", "*.xplane.pb"))
	if len(theirFiles) != 1 {
		t.Fatalf("TensorFlow's client left %v", theirFiles)
	}
	theirs := readSpace(t, theirFiles[0])
	if a, b := fmt.Sprint(planeNames(theirs)), fmt.Sprint(planeNames(ours)); a != b {
		t.Errorf("planes: TensorFlow's client got %s, loadprof %s", a, b)
	}
	if a, b := fmt.Sprint(hloModules(theirs)), fmt.Sprint(modules); a != b {
		t.Errorf("HLO protos: TensorFlow's client got %s, loadprof %s", a, b)
	}
	if a, b := fmt.Sprint(xprofTools(t, theirFiles[0])), fmt.Sprint(tools); a != b {
		t.Errorf("xprof's tools: for TensorFlow's client's capture %s, for loadprof's %s", a, b)
	}
	if filepath.Base(theirFiles[0]) != filepath.Base(res.TraceFiles()[0]) {
		t.Errorf("file names: TensorFlow's client %s, loadprof %s", filepath.Base(theirFiles[0]), filepath.Base(res.TraceFiles()[0]))
	}
}
