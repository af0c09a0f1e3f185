package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

func profiled(srv *sim.Server, logdir string) *ProfileConfig {
	return &ProfileConfig{Addr: srv.GRPCAddr(), Delay: 300 * time.Millisecond,
		Options: profile.Options{Duration: time.Second, LogDir: logdir, Slack: 5 * time.Second}}
}

func TestWindowTaggingShowsTheProfilingSlowdownOnlyInTheWindow(t *testing.T) {
	// The sim is 20 ms slower while a profile window is open.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, WhileProfiling: 20 * time.Millisecond}, KeepArrivals: 10_000})
	logdir := t.TempDir()
	for _, transport := range []string{"rest", "grpc"} {
		cfg := Config{DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
			Plan:    load.Plan{Rate: 200, WarmupDuration: 200 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 200},
			Profile: profiled(srv, logdir)}
		if transport == "rest" {
			cfg.URL = srv.PredictURL()
		} else {
			cfg.GRPC = GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}
		}
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		if res.Window == nil || res.Outside == nil || res.Profile == nil || res.Profile.Error != "" {
			t.Fatalf("%s: window %v outside %v profile %+v", transport, res.Window, res.Outside, res.Profile)
		}
		// Requests sent in the window are slow; the ones sent outside it
		// are not, except the few in flight when it opened. A busy machine
		// delays both alike (sends and reads late), so the outside figure
		// is bounded by the window's less most of the server's 20 ms; under
		// the race detector beside other work the client's own delays
		// swamp that (outside p50 16 ms), and only the window's floor,
		// which the server sets, holds.
		margin := 12.0
		if raceDetector {
			margin = 0
		}
		if res.Window.Latency.P50 < 20 || res.Outside.Latency.P50 > res.Window.Latency.P50-margin {
			t.Fatalf("%s: window p50 %.1f ms, outside p50 %.1f ms", transport, res.Window.Latency.P50, res.Outside.Latency.P50)
		}
		p := res.Profile
		if p.Saved != profile.SavedLocal || len(p.Files) != 1 || p.WindowEndS-p.WindowStartS < 0.9 {
			t.Fatalf("%s: profile %+v", transport, p.Result)
		}
		// The window holds the requests the server saw arrive while it
		// traced (about 200 in its second, more when a busy machine wakes
		// its timer late), give or take a tenth: those at its edges.
		tr, err := profile.ReadServerTrace(p.Files, profile.DefaultRequestEvents)
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		var arrived int64
		for _, a := range srv.Arrivals() {
			if at := srv.Started().Add(a).UnixNano(); at >= tr.StartNs && at <= tr.StopNs {
				arrived++
			}
		}
		if n := res.Window.Requests; arrived == 0 || 10*max(n-arrived, arrived-n) > arrived {
			t.Fatalf("%s: %d requests in the window, %d arrived while the server traced", transport, n, arrived)
		}
		// TensorBoard's layout: LOGDIR/plugins/profile/RUN/HOST.xplane.pb
		rel, _ := filepath.Rel(logdir, p.Files[0])
		if !regexp.MustCompile(`^plugins/profile/\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d/127\.0\.0\.1_\d+\.xplane\.pb$`).MatchString(rel) {
			t.Fatalf("%s: trace at %s", transport, rel)
		}
		if _, err := os.Stat(p.ClientTrace); err != nil || filepath.Dir(p.ClientTrace) != filepath.Dir(p.Files[0]) {
			t.Fatalf("%s: client trace %q: %v", transport, p.ClientTrace, err)
		}
		if len(p.TopOps) == 0 || p.TopOps[0].Name != "serving_default/dense/MatMul" {
			t.Fatalf("%s: top ops %+v", transport, p.TopOps)
		}
		// The client plane has one event per request in the window, but
		// for those over before the server's window started.
		space, _, err := profile.ReadXSpace(p.ClientTrace)
		if err != nil {
			t.Fatal(err)
		}
		var events int64
		for _, l := range space.Planes[0].Lines {
			events += int64(len(l.Events))
		}
		// It also holds the requests in flight when the window opened, and
		// those sent while the Profile call was open but the server was not
		// tracing, which the window row leaves out: every one the split
		// looked at.
		if s := p.Timeline.Split; s == nil || events+int64(p.Timeline.NotDrawn) != int64(s.ClientRequests) || int64(s.ClientRequests) < res.Window.Requests {
			t.Fatalf("%s: client plane has %d events, %d not drawn, split %+v, window %d requests", transport, events, p.Timeline.NotDrawn, p.Timeline.Split, res.Window.Requests)
		}
		time.Sleep(1100 * time.Millisecond) // a new run name: runs are named by the second
	}
}

func TestTraceSavedOnTheServerDiskIsReportedAsSuch(t *testing.T) {
	serverDisk := t.TempDir()
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Mode: sim.ProfileSaveOnServer, DiskRoot: serverDisk}})
	logdir := t.TempDir()
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: profiled(srv, logdir)})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if p.Saved != profile.SavedServer || len(p.Files) != 0 || !regexp.MustCompile(`/127\.0\.0\.1_\d+\.xplane\.pb$`).MatchString(p.ServerPath) {
		t.Fatalf("profile %+v", p.Result)
	}
	if _, err := os.Stat(filepath.Join(serverDisk, p.ServerPath)); err != nil {
		t.Fatalf("the sim did not save %s on its disk: %v", p.ServerPath, err)
	}
	if _, err := os.Stat(filepath.Join(logdir, "plugins", "profile", p.Run, filepath.Base(p.ServerPath))); err == nil {
		t.Fatal("a local server trace exists though the server saved it elsewhere")
	}
	var out strings.Builder
	report.WriteSummary(&out, res)
	if !strings.Contains(out.String(), "saved by the SERVER on its own disk: "+p.ServerPath) || strings.Contains(out.String(), "server trace written here") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

func TestHostileToolDataNamesAreRefused(t *testing.T) {
	srv := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Mode: sim.ProfileReturnToolData,
		ToolDataNames: []string{"../../escape.pb", "/etc/evil.pb", ".hidden", "good.trace.json.gz"}}})
	parent := t.TempDir()
	logdir := filepath.Join(parent, "tb")
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: profiled(srv, logdir)})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Profile
	if len(p.Files) != 1 || filepath.Base(p.Files[0]) != "good.trace.json.gz" || !strings.Contains(p.Error, "path separator") || !strings.Contains(p.Error, "hidden") {
		t.Fatalf("files %v error %q", p.Files, p.Error)
	}
	var found []string
	filepath.Walk(parent, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			found = append(found, path)
		}
		return nil
	})
	for _, f := range found {
		if !strings.HasPrefix(f, logdir) || strings.Contains(f, "escape") || strings.Contains(f, "evil") {
			t.Fatalf("wrote %s", f)
		}
	}
}

func TestProfilerFailuresKeepTheLoadResults(t *testing.T) {
	disabled := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Disabled: true}})
	hung := startSim(t, sim.Config{Profiler: sim.ProfilerConfig{Hang: true}})
	cases := []struct {
		srv  *sim.Server
		want string
	}{
		{disabled, "the server has no ProfilerService"},
		{hung, "no answer within the 1s window plus 1s"},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "result.json")
		prof := profiled(c.srv, t.TempDir())
		prof.Options.Slack = time.Second
		cfg := Config{URL: c.srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
			Plan: load.Plan{Rate: 100, Duration: time.Second, MaxInflight: 50}, Profile: prof}
		res, err := Run(context.Background(), cfg)
		if err != nil || res.Requests < 100 || !strings.Contains(res.Profile.Error, c.want) {
			t.Fatalf("%s: err %v, %d requests, profile error %q", c.want, err, res.Requests, res.Profile.Error)
		}
		writeResult(t, res, out)
		if back, err := report.ReadResult(out); err != nil || back.Profile == nil || back.Profile.Error == "" {
			t.Fatalf("result.json: %v", err)
		}
		cfg.Profile.Required = true
		_, err = Run(context.Background(), cfg)
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("required profile: got %v", err)
		}
	}
}
