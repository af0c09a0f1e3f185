package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// screenshotScript is scripts/trace-screenshots.sh, from this package's
// directory (go test runs in it).
var screenshotScript = filepath.Join("..", "scripts", "trace-screenshots.sh")

// shotsReport is the part of the script's shots.json the test reads.
type shotsReport struct {
	Hosts   []string `json:"hosts"`
	Span    string   `json:"span"`
	SpanMs  float64  `json:"span_ms"`
	PerHost map[string]struct {
		Events int `json:"events"`
	} `json:"per_host"`
	ServerEvents       int `json:"server_events"`
	ServerInsideClient int `json:"server_events_inside_client_requests"`
	Zoom               struct {
		Events map[string]int `json:"events"`
		Why    string         `json:"why"`
	} `json:"zoom"`
	Canvas map[string]struct{ X, Y, Width, Height int } `json:"canvas"`
}

func TestTraceViewerScreenshotsShowBothPlanes(t *testing.T) {
	need(t)
	chromium := os.Getenv("LOADPROF_CHROMIUM")
	if chromium == "" {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromium = p
		}
	}
	if chromium == "" || os.Getenv("LOADPROF_NODE_MODULES") == "" {
		t.Skip("LOADPROF_CHROMIUM or LOADPROF_NODE_MODULES is not set (scripts/test.sh installs chromium and puppeteer-core and sets them)")
	}
	// A fresh run with real REST load and TensorFlow's profiler server.
	res := profiledRESTRun(t)
	logdir := res.Profile.LogDir

	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", screenshotScript, logdir, out)
	cmd.Env = append(os.Environ(), "LOADPROF_PYTHON="+python, "LOADPROF_CHROMIUM="+chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("trace-screenshots.sh: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("trace-screenshots.sh:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "timeline spans ") {
		t.Errorf("the script does not print the span of the timeline:\n%s", stdout.String())
	}

	raw, err := os.ReadFile(filepath.Join(out, "shots.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shots shotsReport
	if err := json.Unmarshal(raw, &shots); err != nil {
		t.Fatalf("shots.json: %v", err)
	}
	server := strings.ReplaceAll(addr(ports.Profiler), ":", "_")
	for _, host := range []string{server, "loadprof-client"} {
		if shots.PerHost[host].Events == 0 {
			t.Errorf("the viewer drew no events of %s: %s", host, raw)
		}
	}

	// The trace JSON the viewer fetched holds complete events of both hosts.
	events := traceEventsByHost(t, filepath.Join(out, "trace-timeline.json"))
	if events[server] == 0 || events["loadprof-client"] == 0 {
		t.Errorf("trace-timeline.json: complete events per host %v, want both %s and loadprof-client", events, server)
	}

	// Both screenshots show something in the timeline's canvas: trace
	// events are drawn in colour; the canvas's background, its grid and
	// the viewer's tool palette are grey.
	for _, name := range []string{"timeline.png", "zoom.png"} {
		rect, ok := shots.Canvas[name]
		if !ok || rect.Width < 100 || rect.Height < 20 {
			t.Errorf("%s: canvas rectangle %+v", name, rect)
			continue
		}
		colours, pixels := colourfulPixels(t, filepath.Join(out, name), image.Rect(rect.X, rect.Y, rect.X+rect.Width, rect.Y+rect.Height))
		t.Logf("%s: %d coloured pixels in %d colours in the timeline canvas", name, pixels, colours)
		if colours < 3 || pixels < 20 {
			t.Errorf("%s: the timeline canvas looks blank (%d coloured pixels in %d colours)", name, pixels, colours)
		}
	}
	if shots.Zoom.Events[server] == 0 {
		t.Errorf("the zoom shows no server events: %+v", shots.Zoom)
	}
	// The client plane is on the server's timeline: the axis spans the
	// profile window (seconds, not the weeks of epoch timestamps), and the
	// zoom shows client requests around the server's events.
	t.Logf("timeline spans %s; %d of %d server events inside a client request; zoom %s: %v",
		shots.Span, shots.ServerInsideClient, shots.ServerEvents, shots.Zoom.Why, shots.Zoom.Events)
	if shots.SpanMs <= 0 || shots.SpanMs > 10*1500 {
		t.Errorf("the timeline spans %s, want about the 1.5 s window", shots.Span)
	}
	if shots.ServerInsideClient == 0 || shots.Zoom.Why != "around client requests that hold server events" || shots.Zoom.Events["loadprof-client"] == 0 {
		t.Errorf("no client request holds a server event on the displayed timeline: %d inside, zoom %s %v", shots.ServerInsideClient, shots.Zoom.Why, shots.Zoom.Events)
	}
}

// traceEventsByHost counts the complete ("X") events of each host in a
// trace viewer JSON; a process is named "HOST /plane".
func traceEventsByHost(t *testing.T, path string) map[string]int {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []struct {
			Ph   string `json:"ph"`
			Name string `json:"name"`
			Pid  int    `json:"pid"`
			Args struct {
				Name string `json:"name"`
			} `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	hostOf := map[int]string{}
	for _, e := range doc.TraceEvents {
		if e.Ph == "M" && e.Name == "process_name" {
			hostOf[e.Pid], _, _ = strings.Cut(e.Args.Name, " ")
		}
	}
	counts := map[string]int{}
	for _, e := range doc.TraceEvents {
		if e.Ph == "X" {
			counts[hostOf[e.Pid]]++
		}
	}
	return counts
}

// colourfulPixels counts the pixels of rect that are clearly not grey,
// and how many distinct such colours there are.
func colourfulPixels(t *testing.T, path string, rect image.Rectangle) (colours, pixels int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rect = rect.Intersect(img.Bounds())
	seen := map[[3]uint32]bool{}
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, b >> 8}
			if max(c[0], c[1], c[2])-min(c[0], c[1], c[2]) < 40 {
				continue
			}
			pixels++
			seen[c] = true
		}
	}
	return len(seen), pixels
}

func TestTraceScreenshotsScriptRefusesARunWithoutTheClientPlane(t *testing.T) {
	logdir := t.TempDir()
	run := filepath.Join(logdir, "plugins", "profile", "2026_01_01_00_00_00")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "server_8466.xplane.pb"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{logdir, t.TempDir()}, "no loadprof-client.xplane.pb"},
		{[]string{t.TempDir(), t.TempDir()}, "no plugins/profile directory"},
		{[]string{logdir}, "usage: trace-screenshots.sh LOGDIR OUTDIR [RUN]"},
		{[]string{logdir, t.TempDir(), "2027_01_01_00_00_00"}, "2027_01_01_00_00_00: no such run"},
	} {
		out, err := exec.Command("bash", append([]string{screenshotScript}, c.args...)...).CombinedOutput()
		if code := exitCode(err); code != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %d, output %q; want exit 2 and %q", c.args, code, out, c.want)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return -1
}
