package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadprof/loadprof/cluster"
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
	return startProcTB(t, env, args...)
}

func startProcTB(t testing.TB, env []string, args ...string) *proc {
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
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: time.Millisecond}, KeepArrivals: 10_000})
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
	excused := map[int]bool{}
	if code := coord.wait(t); code != 0 {
		// Every process's own words, and the workers' entries of the
		// result (written on exit 5 too): which worker lacked, and why.
		for _, w := range workers {
			select {
			case <-w.done:
			case <-time.After(10 * time.Second): // clusterOutputs says it runs
			}
		}
		var why string
		if code == exitWorkers {
			excused, why = heldBackWorkers(t, merged, dir)
		}
		if excused == nil {
			t.Fatalf("coordinator exit %d%s\n%s", code, why, clusterOutputs(coord, workers, merged))
		}
		t.Logf("exit 5: %s", why)
	}
	var own []*report.Result
	var sum int64
	for i, w := range workers {
		if code := w.wait(t); code != 0 {
			t.Fatalf("worker %d exit %d\n%s", i+1, code, clusterOutputs(coord, workers, merged))
		}
		r := readResult(t, filepath.Join(dir, fmt.Sprintf("w%d.json", i+1)))
		own = append(own, r)
		sum += r.Requests
	}
	res := readResult(t, merged)
	if res.Requests != sum {
		t.Errorf("merged %d requests, the workers' own results %d", res.Requests, sum)
	}
	// The rate the workers achieved together: the steady requests they
	// sent over the 4 s steady phase, within 1% of the target.
	if achieved := float64(res.Requests) / 4; math.Abs(achieved-rate) > rate/100 {
		t.Errorf("achieved %.2f req/s (%d requests in 4 s), want %v within 1%%", achieved, res.Requests, rate)
	}
	// The result's throughput divides by the steady phase's span, to the
	// last answer, which a busy machine's tail latency stretches (276
	// req/s under a load of 15): it is checked, within 1%, against the
	// steady calls the server itself saw arrive over that span, on the
	// merged clock. The server's first calls are the warm-up's, which a
	// busy machine's workers send late, into the steady span (18 of them,
	// 1.5% of the steady calls, under a load of 10): they are not the
	// steady phase's. A warm-up call overtaken by a steady one only swaps
	// places with it inside the span. A request sent again (a kept-alive
	// connection the server closed as it went out, res.Client.Resent)
	// arrived twice.
	from := res.StartedAt.Add(time.Duration(res.Phases.Steady.Start * float64(time.Second)))
	to := res.StartedAt.Add(time.Duration(res.Phases.Steady.End * float64(time.Second)))
	arrivals := srv.Arrivals()
	slices.Sort(arrivals)
	warmup := int(min(res.Phases.Warmup.Requests, int64(len(arrivals))))
	var arrived, lateWarmup int
	for i, a := range arrivals {
		if at := srv.Started().Add(a); !at.Before(from) && !at.After(to) {
			if i < warmup {
				lateWarmup++
			} else {
				arrived++
			}
		}
	}
	arrived -= int(min(res.Client.Resent, int64(arrived)))
	serverRate := float64(arrived) / to.Sub(from).Seconds()
	t.Logf("throughput %.2f req/s; the server saw %d steady calls arrive in the %.3f s steady phase: %.2f a second (and %d warm-up calls sent late, %d sent again)", res.ThroughputRPS, arrived, to.Sub(from).Seconds(), serverRate, lateWarmup, res.Client.Resent)
	if math.Abs(res.ThroughputRPS-serverRate) > serverRate/100 {
		t.Errorf("throughput %.2f req/s, the server saw %.2f calls a second over the steady phase: want within 1%%", res.ThroughputRPS, serverRate)
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
		if w.Status != report.WorkerOK && !excused[w.Index] {
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

// heldBackWorkers returns the workers (by index) the coordinated run's
// result counts late only because the busy machine held them back: a
// worker process starved as the common start passes (380 ms seen beside
// CPU hogs) begins its load that much late, which the coordinator rightly
// reports (exit 5). Each is excused only when its own result shows the
// machine held it back: its send lag with slots free covers its lateness
// past --worker-start-tolerance. Nil when any other worker lacks.
func heldBackWorkers(t *testing.T, merged, dir string) (map[int]bool, string) {
	t.Helper()
	data, err := os.ReadFile(merged)
	var res report.Result
	if err != nil || json.Unmarshal(data, &res) != nil {
		return nil, ""
	}
	excused := map[int]bool{}
	var why []string
	for _, w := range res.Workers {
		if w.Status == report.WorkerOK {
			continue
		}
		_, after, _ := strings.Cut(w.Error, "began ")
		late, err := time.ParseDuration(strings.Fields(after + " x")[0])
		if w.Status != report.WorkerLate || err != nil {
			return nil, fmt.Sprintf(" (worker %d %s: not a late start)", w.Index, w.Status)
		}
		data, err := os.ReadFile(filepath.Join(dir, w.Name+".json"))
		var own report.Result
		if err != nil || json.Unmarshal(data, &own) != nil {
			return nil, fmt.Sprintf(" (worker %d: no result of its own: %v)", w.Index, err)
		}
		lag := time.Duration(own.Client.MaxFreeSendLagMs * float64(time.Millisecond))
		if lag < late-cluster.DefaultStartTolerance {
			return nil, fmt.Sprintf(" (worker %d began %v late, more than the tolerance and its own send lag with slots free, %v, together)", w.Index, late, lag)
		}
		excused[w.Index] = true
		why = append(why, fmt.Sprintf("worker %d began %v late, held back by the machine (its send lag with slots free %v)", w.Index, late, lag.Round(100*time.Microsecond)))
	}
	return excused, strings.Join(why, "; ")
}

// clusterOutputs is what a coordinated run's processes said, and the
// workers' entries of its result when it was written.
func clusterOutputs(coord *proc, workers []*proc, result string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "coordinator stderr:\n%s\ncoordinator stdout:\n%s\n", coord.stderr.String(), coord.stdout.String())
	for i, w := range workers {
		select {
		case <-w.done:
			fmt.Fprintf(&b, "worker %d exit %d, stderr:\n%s\n", i+1, w.code, w.stderr.String())
		default:
			fmt.Fprintf(&b, "worker %d still running\n", i+1)
		}
	}
	var res report.Result
	if data, err := os.ReadFile(result); err != nil {
		fmt.Fprintf(&b, "no result: %v\n", err)
	} else if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(&b, "result: %v\n", err)
	} else {
		for _, w := range res.Workers {
			fmt.Fprintf(&b, "result: worker %d %q %s: %s\n", w.Index, w.Name, w.Status, w.Error)
		}
	}
	return b.String()
}

// --hlog with --workers: one interval log of the merged seconds, in one
// machine's format, that HdrHistogram's log reader reads: its untagged
// (steady) intervals add up to the merged histogram bucket for bucket,
// its warm-up intervals to the merged warm-up's.
func TestCoordinatedRunWritesOneIntervalLogOfTheMergedSeconds(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, Jitter: 2 * time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	merged, hlog := filepath.Join(dir, "merged.json"), filepath.Join(dir, "merged.hlog")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "150", "--warmup", "1s", "--duration", "3s", "--workers", "3", "--listen", addr, "--out", merged, "--hlog", hlog, "-q")
	var workers []*proc
	for range 3 {
		workers = append(workers, startProc(t, []string{clusterEnv}, "worker", "--join", addr))
	}
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	for _, w := range workers {
		w.wait(t)
	}
	res := readResult(t, merged)
	f, err := os.Open(hlog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	steady, warmup := hdrhistogram.New(1, 3_600_000_000, 3), hdrhistogram.New(1, 3_600_000_000, 3)
	reader := hdrhistogram.NewHistogramLogReader(f)
	intervals := 0
	for {
		h, err := reader.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		intervals++
		switch h.Tag() {
		case "":
			steady.Merge(h)
		case report.HlogWarmupTag:
			warmup.Merge(h)
		default:
			t.Errorf("interval tagged %q", h.Tag())
		}
	}
	want, err := report.DecodeHistogram(res.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if steady.TotalCount() == 0 || !steady.Equals(want) {
		t.Errorf("the log's steady intervals hold %d values, the merged histogram %d (or they differ bucket for bucket)", steady.TotalCount(), want.TotalCount())
	}
	wantWarmup, err := report.DecodeHistogram(res.Phases.Warmup.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if warmup.TotalCount() == 0 || !warmup.Equals(wantWarmup) {
		t.Errorf("the log's warm-up intervals hold %d values, the merged warm-up %d", warmup.TotalCount(), wantWarmup.TotalCount())
	}
	// One interval per phase and second, not one per worker.
	if intervals > 2*6 {
		t.Errorf("%d intervals for a 4 s run", intervals)
	}
	data, _ := os.ReadFile(hlog)
	if !bytes.HasPrefix(data, []byte("#[Logged with loadprof")) || !bytes.Contains(data, []byte("#[BaseTime: ")) {
		t.Errorf("the log lacks one machine's header:\n%.400s", data)
	}
	// HdrHistogram's own HistogramLogProcessor, when its jar is named (as
	// bench's hlog tests take it): its total is the merged count.
	jar := os.Getenv("LOADPROF_HDRHISTOGRAM_JAR")
	java, err := exec.LookPath("java")
	if jar == "" || err != nil {
		t.Logf("HistogramLogProcessor not run: LOADPROF_HDRHISTOGRAM_JAR %q, java: %v", jar, err)
		return
	}
	prefix := filepath.Join(dir, "java")
	if out, err := exec.Command(java, "-cp", jar, "org.HdrHistogram.HistogramLogProcessor", "-i", hlog, "-outputValueUnitRatio", "1000", "-o", prefix).CombinedOutput(); err != nil {
		t.Fatalf("HistogramLogProcessor: %v\n%s", err, out)
	}
	lines, _ := os.ReadFile(prefix)
	var last string
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		if strings.Contains(l, " T:") {
			last = l
		}
	}
	var total int64
	if _, after, ok := strings.Cut(last, " T:"); !ok || func() error { _, err := fmt.Sscanf(after, "%d", &total); return err }() != nil || total != want.TotalCount() {
		t.Errorf("HistogramLogProcessor's total %d (%q), the merged histogram's %d", total, last, want.TotalCount())
	}
}

func TestWorkerProcessKilledMidRunIsReportedAndTheOthersKept(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	merged := filepath.Join(dir, "merged.json")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "90", "--duration", "6s", "--workers", "3", "--listen", addr, "--out", merged, "-q", "--worker-lost-after", "3s")
	var workers []*proc
	for i := range 3 {
		workers = append(workers, startProc(t, []string{clusterEnv}, "worker", "--join", addr, "--out", filepath.Join(dir, fmt.Sprintf("w%d.json", i))))
	}
	// Kill one once the load has run a few seconds (90 req/s in all).
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 250 && time.Now().Before(deadline); {
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
		if w.Status != report.WorkerLost {
			continue
		}
		lost++
		// What it sent of its seconds before it was killed is kept in
		// its entry, apart from the merged figures.
		h, err := report.DecodeHistogram(w.Histogram)
		if err != nil || w.CoveredS < 1 || h.TotalCount() == 0 || h.TotalCount() > w.Requests {
			t.Errorf("lost worker: covered %v s, histogram %q (%v), %d requests reported", w.CoveredS, w.Histogram, err, w.Requests)
		}
		if !strings.Contains(w.Error, "none of its requests are in the merged figures") {
			t.Errorf("lost worker's error %q", w.Error)
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

func TestK8sPrintsManifestsWhoseCoordinatorArgsAreTheRun(t *testing.T) {
	data := writeFile(t, "data.json", oneBody)
	code, stdout, stderr := loadprof(t, "k8s", "--workers", "5", "--image", "reg/loadprof:1", "--namespace", "bench", "--",
		"run", "--url", "http://tfs:8501/v1/models/m:predict", "--data", data, "--rate", "500", "--duration", "30s", "--warmup", "5s",
		"-H", "Authorization: Bearer abc", "-H", "X-Trace: 1", "--profile", "tfs:8500", "--html", "r.html", "--hlog", "r.hlog")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list struct {
		Items []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Parallelism    int    `json:"parallelism"`
				CompletionMode string `json:"completionMode"`
				Template       struct {
					Spec struct {
						Containers []struct {
							Args []string `json:"args"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	var coordArgs []string
	for _, o := range list.Items {
		switch o.Metadata.Name {
		case "loadprof-coordinator":
			if o.Kind == "Job" {
				coordArgs = o.Spec.Template.Spec.Containers[0].Args
			}
		case "loadprof-workers":
			if o.Spec.Parallelism != 5 || o.Spec.CompletionMode != "Indexed" {
				t.Errorf("workers job: %+v", o.Spec)
			}
		}
	}
	if len(coordArgs) == 0 || coordArgs[0] != "run" {
		t.Fatalf("coordinator args %v", coordArgs)
	}
	// The coordinator's args parse as run's flags, with the run's values
	// and the pod's paths.
	fs, f := newRunFlags()
	if err := fs.Parse(coordArgs[1:]); err != nil {
		t.Fatalf("coordinator args do not parse: %v: %v", err, coordArgs)
	}
	if *f.rateSpec != "500" || *f.duration != 30*time.Second || f.warmup.d != 5*time.Second || *f.data != "/data/data.json" ||
		*f.cluster.workers != 5 || *f.out != "/results/result.json" || *f.htmlOut != "/results/report.html" ||
		*f.cluster.serveResults != "/results" || *f.hlog != "/results/result.hlog" || f.prof.logdir != "/results/tb" || len(*f.headers) != 1 || (*f.headers)[0] != "X-Trace: 1" {
		t.Errorf("coordinator args %v", coordArgs)
	}
	code, _, stderr = loadprof(t, "k8s", "--workers", "2", "--image", "x", "--", "run", "--url", "http://a/", "--data", data, "--rate", "1", "--workers", "3")
	if code != exitBadInput || !strings.Contains(stderr, "--workers goes before the --") {
		t.Errorf("--workers after the --: exit %d: %s", code, stderr)
	}
}

func TestServeResultsHandsTheOutputsToWhoeverHasTheTokenUntilAcknowledged(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20", "--duration", "1s", "--workers", "1", "--listen", addr, "--out", filepath.Join(dir, "result.json"), "-q",
		"--serve-results", dir, "--serve-for", "1m")
	w := startProc(t, []string{clusterEnv}, "worker", "--join", addr)
	if code := w.wait(t); code != 0 {
		t.Fatalf("worker exit %d: %s", code, w.stderr.String())
	}
	get := func(token string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/results", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	// The coordinator listens again once its outputs are written.
	var resp *http.Response
	for deadline := time.Now().Add(time.Minute); ; {
		var err error
		if resp, err = get("guess"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token got %v", resp)
	}
	resp.Body.Close()
	resp, err := get("acceptance")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch: %v %v", err, resp)
	}
	defer resp.Body.Close()
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Name == "result.json" {
			var r report.Result
			if err := json.NewDecoder(tr).Decode(&r); err != nil || len(r.Workers) != 1 {
				t.Errorf("result.json in the archive: %v, %d workers", err, len(r.Workers))
			}
		}
	}
	if !slices.Contains(names, "result.json") {
		t.Errorf("archive holds %v", names)
	}
	ack, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/results/ack", nil)
	ack.Header.Set("Authorization", "Bearer acceptance")
	if resp, err := http.DefaultClient.Do(ack); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledging the fetch: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if code := coord.wait(t); code != 0 {
		t.Errorf("coordinator exit %d after the fetch: %s", code, coord.stderr.String())
	}
}

func TestWorkerStopsWhenItsCoordinatorDies(t *testing.T) {
	srv := startSim(t, sim.Config{})
	addr := testkit.ClosedAddr(t)
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20", "--duration", "1h", "--workers", "1", "--listen", addr, "-q", "--worker-lost-after", "2s")
	w := startProc(t, []string{clusterEnv}, "worker", "--join", addr)
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 10 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = coord.cmd.Process.Signal(syscall.SIGKILL)
	if code := w.wait(t); code != exitTarget || !strings.Contains(w.stderr.String(), "coordinator silent") {
		t.Errorf("worker of a dead coordinator: exit %d\n%s", code, w.stderr.String())
	}
}

func TestCoordinatedSweepProcessRunsEveryStepOnTheWorkers(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	out := filepath.Join(dir, "sweep.json")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20:40:20", "--duration", "1s", "--workers", "2", "--listen", addr, "--out", out, "-q")
	workers := []*proc{startProc(t, []string{clusterEnv}, "worker", "--join", addr), startProc(t, []string{clusterEnv}, "worker", "--join", addr)}
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	for i, w := range workers {
		if code := w.wait(t); code != 0 {
			t.Errorf("worker %d exit %d\n%s", i, code, w.stderr.String())
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sw report.SweepResult
	if err := json.Unmarshal(data, &sw); err != nil {
		t.Fatal(err)
	}
	if len(sw.Steps) != 2 {
		t.Fatalf("%d steps", len(sw.Steps))
	}
	for _, step := range sw.Steps {
		if r := step.Result; len(r.Workers) != 2 || r.Workers[1].Share != step.Level/2 {
			t.Errorf("step %v: workers %+v", step.Level, r.Workers)
		}
	}
}

func TestTheTokenNeverReachesResultJSON(t *testing.T) {
	srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	out := filepath.Join(dir, "merged.json")
	coord := startProc(t, nil, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20", "--duration", "1s", "--workers", "1", "--listen", addr, "--out", out, "-q", "--token", "sekrit-on-the-command-line")
	w := startProc(t, nil, "worker", "--join", addr, "--token", "sekrit-on-the-command-line")
	if code := coord.wait(t); code != 0 {
		t.Fatalf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	w.wait(t)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("sekrit")) {
		t.Error("result.json holds the token")
	}
	if res := readResult(t, out); res.Config["token"] != "<redacted>" {
		t.Errorf("config.token %v, want <redacted>", res.Config["token"])
	}
}

// A second Ctrl-C ends the coordinator at once, but first tells its
// workers to stop: they stop within moments, not when they find it
// silent (--worker-lost-after, an hour here).
func TestSecondInterruptOfTheCoordinatorStopsItsWorkersBeforeItQuits(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	addr := testkit.ClosedAddr(t)
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20", "--duration", "1h", "--workers", "1", "--listen", addr, "-q", "--worker-lost-after", "1h")
	w := startProc(t, []string{clusterEnv}, "worker", "--join", addr)
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 10 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	_ = coord.cmd.Process.Signal(os.Interrupt)
	// The second soon after, most likely before the worker's next
	// heartbeat (every 500 ms) could hear of the first.
	time.Sleep(50 * time.Millisecond)
	_ = coord.cmd.Process.Signal(os.Interrupt)
	if code := coord.wait(t); code != exitInterrupted {
		t.Errorf("coordinator exit %d\n%s", code, coord.stderr.String())
	}
	select {
	case <-w.done:
	case <-time.After(time.Minute): // far below the hour it would wait otherwise
		t.Fatalf("the worker did not stop\n%s", w.stderr.String())
	}
	if !strings.Contains(w.stderr.String(), "the coordinator says stop") {
		t.Errorf("worker stderr:\n%s", w.stderr.String())
	}
}

// A coordinated sweep that loses a worker in step 2: the steps before
// it count (max_passing), the sweep says why it stopped, the step is
// shown stopped rather than failed, and no "SLO ()" without --slo.
func TestCoordinatedSweepCutShortByALostWorkerKeepsThePassedSteps(t *testing.T) {
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond}})
	dir := t.TempDir()
	addr := testkit.ClosedAddr(t)
	out := filepath.Join(dir, "sweep.json")
	coord := startProc(t, []string{clusterEnv}, "run", "--url", srv.PredictURL(), "--data", writeFile(t, "data.json", oneBody),
		"--rate", "20:60:20", "--duration", "2s", "--workers", "2", "--listen", addr, "--out", out, "--worker-lost-after", "1s")
	workers := []*proc{startProc(t, []string{clusterEnv}, "worker", "--join", addr), startProc(t, []string{clusterEnv}, "worker", "--join", addr)}
	// Step 1 sends 40 requests (20/s for 2 s) and step 2 80; kill a worker once step 2
	// has begun.
	for deadline := time.Now().Add(time.Minute); srv.Predicts() < 60 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	_ = workers[1].cmd.Process.Signal(syscall.SIGKILL)
	if code := coord.wait(t); code != exitWorkers {
		t.Fatalf("coordinator exit %d, want %d\n%s\n%s", code, exitWorkers, coord.stdout.String(), coord.stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sw report.SweepResult
	if err := json.Unmarshal(data, &sw); err != nil {
		t.Fatal(err)
	}
	// The killed process may have joined first or second.
	if sw.MaxPassing == nil || *sw.MaxPassing != 20 || !strings.HasPrefix(sw.Stopped, "stopped at step 2 (40): worker ") || !strings.HasSuffix(sw.Stopped, ") lost") {
		t.Errorf("max_passing %v, stopped %q", sw.MaxPassing, sw.Stopped)
	}
	if len(sw.Steps) != 2 || !sw.Steps[0].Pass || sw.Steps[1].Stopped == "" {
		t.Errorf("steps %+v", sw.Steps)
	}
	table := coord.stdout.String()
	if strings.Contains(table, "FAIL") || strings.Contains(table, "SLO ()") || !strings.Contains(table, "stopped: worker ") ||
		!strings.Contains(table, "highest passing rate (no --slo given): 20") {
		t.Errorf("table:\n%s", table)
	}
}
