package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
)

// viewerTimeline is what xprof's trace viewer draws of a run's two hosts
// (timeline_check.py).
type viewerTimeline struct {
	FullTimespanMs []float64         `json:"full_timespan_ms"`
	Processes      map[string]string `json:"processes"`
	Events         [][]any           `json:"events"`
}

type drawn struct{ ts, dur float64 }

// byHost returns the events named name (or, with prefix, starting with it)
// of the processes whose name starts with host.
func (v viewerTimeline) byHost(host, name string, prefix bool) []drawn {
	var out []drawn
	for _, e := range v.Events {
		pid := strconv.FormatFloat(e[0].(float64), 'f', -1, 64)
		n := e[1].(string)
		if !strings.HasPrefix(v.Processes[pid], host) || (n != name && !(prefix && strings.HasPrefix(n, name))) {
			continue
		}
		out = append(out, drawn{e[2].(float64), e[3].(float64)})
	}
	return out
}

// TestClientPlaneLinesUpWithTheServersRequestsInXprofsTraceViewer runs
// real load against TensorFlow's profiler server with a window, converts
// the server's trace and loadprof's client plane the way TensorBoard does
// when both hosts are selected, and checks what the viewer draws: the
// server's request events inside client requests, on an axis of seconds.
func TestClientPlaneLinesUpWithTheServersRequestsInXprofsTraceViewer(t *testing.T) {
	need(t)
	for _, c := range []struct {
		name string
		cfg  bench.Config
	}{
		{"rest", bench.Config{URL: fmt.Sprintf("http://%s/v1/models/dense:predict", addr(ports.REST))}},
		{"grpc", bench.Config{GRPC: bench.GRPCTarget{Addr: addr(ports.GRPC), Model: "dense"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			logdir := t.TempDir()
			cfg := c.cfg
			cfg.DataPath = writeFile(t, "data.json", denseRows)
			// One request at a time: each server event then fits inside
			// one client request, its own, at the true offset only. An
			// open loop's requests overlap on a busy machine (a stall
			// queues them), and then fit the server's events at most
			// offsets in the Profile call's bound, which the estimate
			// rightly declines to narrow: what this test checks is the
			// drawing of a clock the requests placed.
			cfg.Plan = load.Plan{Concurrency: 1, WarmupRequests: 20, Duration: 2500 * time.Millisecond}
			cfg.Timeout = 10 * time.Second
			cfg.Profile = &bench.ProfileConfig{Addr: addr(ports.Profiler), Delay: 200 * time.Millisecond,
				Options: profile.Options{Duration: 1500 * time.Millisecond, LogDir: logdir}}
			res, err := bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := res.Profile
			if len(res.Errors) != 0 || p == nil || p.Error != "" || p.Saved != profile.SavedLocal || p.ClientTrace == "" || p.Timeline == nil {
				t.Fatalf("errors %v, profile %+v", res.Errors, p)
			}
			tl := p.Timeline
			if tl.Placement != profile.PlacedAtServerStart || tl.Clock == nil || tl.Clock.Method != profile.OffsetFromRequests || tl.Clock.RequestEvent != "SessionRun" {
				t.Fatalf("timeline %+v, clock %+v", tl, tl.Clock)
			}
			if tl.Split == nil || tl.Split.Matched < tl.Split.ServerRequests*9/10 || tl.Split.Matched == 0 {
				t.Fatalf("split %+v", tl.Split)
			}
			t.Logf("clock %+v; split %+v", *tl.Clock, *tl.Split)

			cmd := exec.Command(python, "timeline_check.py", p.Files[0], p.ClientTrace)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("timeline_check.py: %v", err)
			}
			var v viewerTimeline
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("timeline_check.py: %v: %.300s", err, out)
			}
			serverHost := strings.TrimSuffix(p.Files[0][strings.LastIndex(p.Files[0], "/")+1:], ".xplane.pb")
			server := v.byHost(serverHost, "SessionRun", false)
			client := v.byHost("loadprof-client", "request ", true)
			if len(server) < tl.Split.ServerRequests*9/10 || len(server) == 0 || len(client) == 0 {
				t.Fatalf("the viewer draws %d server request events (the trace has %d) and %d client requests; processes %v",
					len(server), tl.Split.ServerRequests, len(client), v.Processes)
			}
			inside := 0
			for _, s := range server {
				for _, c := range client {
					if c.ts <= s.ts+1e-3 && s.ts+s.dur <= c.ts+c.dur+1e-3 {
						inside++
						break
					}
				}
			}
			if inside*10 < len(server)*9 {
				t.Fatalf("%d of %d server request events lie inside a client request on the viewer's timeline", inside, len(server))
			}
			// One axis of seconds: every event drawn within a minute.
			lo, hi := v.Events[0][2].(float64), 0.0
			for _, e := range v.Events {
				lo, hi = min(lo, e[2].(float64)), max(hi, e[2].(float64)+e[3].(float64))
			}
			if hi-lo > 60e6 || len(v.FullTimespanMs) != 2 || v.FullTimespanMs[1]-v.FullTimespanMs[0] > 60e3 {
				t.Fatalf("the timeline spans %.0f us (full timespan %v ms)", hi-lo, v.FullTimespanMs)
			}
			t.Logf("%d of %d server request events inside a client request; timeline %.3f s", inside, len(server), (hi-lo)/1e6)
		})
	}
}
