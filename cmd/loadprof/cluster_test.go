package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/proto"
)

// proc is a loadprof process started in the background.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process; the bound only keeps a hung process from
// hanging the test run.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%v did not exit\nstderr:\n%s", p.cmd.Args, p.stderr.String())
	}
	return p.code
}

func readResult(t *testing.T, path string) *report.Result {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

const clusterEnv = "LOADPROF_TOKEN=acceptance"

func TestCoordinatorAndThreeWorkerProcessesMergeExactlyWithOneTrace(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: time.Millisecond}})
	dir, logdir := t.TempDir(), t.TempDir()
	addr := testkit.ClosedAddr(t)
	merged := filepath.Join(dir, "merged.json")
	const rate = 300.0
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", fmt.Sprint(rate), "--warmup", "1s", "--duration", "4s", "--workers", "3", "--listen", addr, "--out", merged, "-q",
		"--profile", srv.GRPCAddr(), "--profile-duration", "1s", "--profile-delay", "1s", "--logdir", logdir)
	var workers []*proc
	for i := range 3 {
		workers = append(workers, startProc(t, []string{clusterEnv}, "worker", "--join", addr, "--name", fmt.Sprintf("w%d", i+1),
			"--out", filepath.Join(dir, fmt.Sprintf("w%d.json", i+1))))
	}
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	var own []*report.Result
	var sum int64
	for i, w := range workers {
		if code := w.wait(t); code != 0 {
			t.Fatalf("worker %d exit %d\n%s", i+1, code, w.stderr.String())
		}
		r := readResult(t, filepath.Join(dir, fmt.Sprintf("w%d.json", i+1)))
		own = append(own, r)
		sum += r.Requests
	}
	res := readResult(t, merged)
	if res.Requests != sum {
		t.Errorf("merged %d requests, the workers' own results %d", res.Requests, sum)
	}
	if math.Abs(res.ThroughputRPS-rate) > rate/100 {
		t.Errorf("achieved %.2f req/s, want %v within 1%%", res.ThroughputRPS, rate)
	}
	// Bucket for bucket: the merged histogram is the workers' own merged.
	want, err := report.DecodeHistogram(own[0].Histogram)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range own[1:] {
		h, err := report.DecodeHistogram(r.Histogram)
		if err != nil {
			t.Fatal(err)
		}
		want.Merge(h)
	}
	got, err := report.DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(want) {
		t.Errorf("merged histogram (%d values) is not the workers' merged (%d values)", got.TotalCount(), want.TotalCount())
	}
	gb, wb := got.Export().Counts, want.Export().Counts
	if len(gb) != len(wb) {
		t.Fatalf("bucket arrays differ in length: %d vs %d", len(gb), len(wb))
	}
	for i := range gb {
		if gb[i] != wb[i] {
			t.Fatalf("bucket %d: %d, the workers' merged %d", i, gb[i], wb[i])
		}
	}
	if len(res.Workers) != 3 {
		t.Fatalf("workers %+v", res.Workers)
	}
	for _, w := range res.Workers {
		if w.Status != report.WorkerOK {
			t.Errorf("worker %+v", w)
		}
	}
	// One window, opened by the coordinator; one client plane with the
	// lines of every worker.
	if res.Profile == nil || res.Profile.Result == nil || res.Profile.ClientTrace == "" {
		t.Fatalf("profile %+v", res.Profile)
	}
	if res.Window == nil || res.Window.Requests == 0 {
		t.Errorf("no request counted in the window: %+v", res.Window)
	}
	data, err := os.ReadFile(res.Profile.ClientTrace)
	if err != nil {
		t.Fatal(err)
	}
	var space tfproto.XSpace
	if err := proto.Unmarshal(data, &space); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range space.Planes[0].Lines {
		if !strings.HasPrefix(l.Name, profile.ClientLinePrefix) {
			t.Errorf("line %q", l.Name)
		}
		for i := 1; i <= 3; i++ {
			if strings.HasSuffix(l.Name, fmt.Sprintf("(worker %d)", i)) && len(l.Events) > 0 {
				seen[fmt.Sprint(i)] = true
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("client plane has lines of workers %v, want all 3", seen)
	}
	files, _ := filepath.Glob(filepath.Join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
	if len(files) != 2 {
		t.Errorf("trace files %v: want the server's and one client plane", files)
	}
}

func TestWorkerProcessKilledMidRunIsReportedAndTheOthersKept(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	merged := filepath.Join(dir, "merged.json")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "90", "--duration", "6s", "--workers", "3", "--listen", addr, "--out", merged, "-q", "--worker-lost-after", "2s")
	var workers []*proc
	for i := range 3 {
		workers = append(workers, startProc(t, []string{clusterEnv}, "worker", "--join", addr, "--out", filepath.Join(dir, fmt.Sprintf("w%d.json", i))))
	}
	// Kill one once the load is under way.
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 30 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = workers[2].cmd.Process.Signal(syscall.SIGKILL)
	code := coord.wait(t)
	if code != exitWorkers {
		t.Fatalf("coordinator exit %d, want %d\n%s", code, exitWorkers, coord.stderr.String())
	}
	if !strings.Contains(coord.stderr.String(), "lost") {
		t.Errorf("stderr does not say a worker was lost:\n%s", coord.stderr.String())
	}
	var sum int64
	for i, w := range workers[:2] {
		if c := w.wait(t); c != 0 {
			t.Fatalf("worker %d exit %d\n%s", i, c, w.stderr.String())
		}
		sum += readResult(t, filepath.Join(dir, fmt.Sprintf("w%d.json", i))).Requests
	}
	res := readResult(t, merged)
	if res.Requests != sum || sum == 0 {
		t.Errorf("merged %d requests, the two live workers %d", res.Requests, sum)
	}
	lost := 0
	for _, w := range res.Workers {
		if w.Status == report.WorkerLost {
			lost++
		}
	}
	if lost != 1 {
		t.Errorf("workers %+v: want one lost", res.Workers)
	}
}

func TestWrongTokenAndAbsentWorkersFailClearly(t *testing.T) {
	srv := startSim(t, sim.Config{})
	addr := testkit.ClosedAddr(t)
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "10", "--duration", "1s", "--workers", "2", "--listen", addr, "--join-timeout", "3s", "-q")
	stray := startProc(t, []string{"LOADPROF_TOKEN=guess"}, "worker", "--join", addr)
	if code := stray.wait(t); code != exitBadInput || !strings.Contains(stray.stderr.String(), "wrong or missing token") {
		t.Errorf("a worker with the wrong token: exit %d\n%s", code, stray.stderr.String())
	}
	if code := coord.wait(t); code != exitTarget || !strings.Contains(coord.stderr.String(), "no worker joined within --join-timeout 3s") {
		t.Errorf("a coordinator no worker joined: exit %d\n%s", code, coord.stderr.String())
	}
	if !strings.Contains(coord.stderr.String(), "wrong or missing token") {
		t.Errorf("the coordinator does not say it refused a join:\n%s", coord.stderr.String())
	}
	code, _, stderr := loadprof(t, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "d.json", oneBody), "--rate", "10", "--workers", "2")
	if code != exitBadInput || !strings.Contains(stderr, "needs a shared token") {
		t.Errorf("--workers without a token: exit %d: %s", code, stderr)
	}
}

func TestInterruptedCoordinatorProcessStopsItsWorkersAndWritesTheMerge(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	merged := filepath.Join(dir, "merged.json")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "60", "--duration", "1h", "--workers", "2", "--listen", addr, "--out", merged, "-q")
	workers := []*proc{startProc(t, []string{clusterEnv}, "worker", "--join", addr), startProc(t, []string{clusterEnv}, "worker", "--join", addr)}
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 30 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = coord.cmd.Process.Signal(os.Interrupt)
	if code := coord.wait(t); code != exitInterrupted {
		t.Fatalf("coordinator exit %d, want %d\n%s", code, exitInterrupted, coord.stderr.String())
	}
	for i, w := range workers {
		if code := w.wait(t); code != 0 {
			t.Errorf("worker %d exit %d\n%s", i, code, w.stderr.String())
		}
	}
	res := readResult(t, merged)
	if !res.Interrupted || res.Requests == 0 || len(res.Workers) != 2 || res.Workers[0].Status != report.WorkerInterrupted {
		t.Errorf("merged: interrupted %v, %d requests, workers %+v", res.Interrupted, res.Requests, res.Workers)
	}
}
