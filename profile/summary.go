package profile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/proto"
)

// Op is one row of a trace summary: every event with the same name on the
// planes summarised.
type Op struct {
	Name    string  `json:"name"`
	Type    string  `json:"type,omitempty"` // the part after ':' in TensorFlow's "name:Type"
	Plane   string  `json:"plane"`
	Count   int64   `json:"count"`
	TotalMs float64 `json:"total_ms"`
	SelfMs  float64 `json:"self_ms"` // total minus the time of events nested inside it on the same line
	Share   float64 `json:"share"`   // SelfMs over the plane's span
}

// Summary is the top ops of a trace.
type Summary struct {
	SpanMs float64  `json:"span_ms"` // first event start to last event end, over the planes summarised
	Planes []string `json:"planes"`
	Ops    []Op     `json:"ops"` // by self time, largest first
}

// ReadXSpace reads an .xplane.pb file, or the newest run of a logdir or of
// a plugins/profile directory (all its .xplane.pb files).
func ReadXSpace(path string) (*tfproto.XSpace, []string, error) {
	files, err := traceFiles(path)
	if err != nil {
		return nil, nil, err
	}
	space := &tfproto.XSpace{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var one tfproto.XSpace
		if err := proto.Unmarshal(data, &one); err != nil {
			return nil, nil, fmt.Errorf("%s: not an XSpace: %w", f, err)
		}
		space.Planes = append(space.Planes, one.Planes...)
		space.Hostnames = append(space.Hostnames, one.Hostnames...)
	}
	return space, files, nil
}

func traceFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	if files := serverTraces(path); len(files) > 0 {
		return files, nil // a run directory
	}
	runsDir := path
	if plug := PluginDir(path); isDir(plug) {
		runsDir = plug
	}
	entries, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, err
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() {
			runs = append(runs, e.Name())
		}
	}
	sort.Strings(runs) // run names are timestamps: the last is the newest
	for i := len(runs) - 1; i >= 0; i-- {
		if files := serverTraces(filepath.Join(runsDir, runs[i])); len(files) > 0 {
			return files, nil
		}
	}
	return nil, fmt.Errorf("%s: no .xplane.pb file in it or in a run under it", path)
}

// serverTraces lists the .xplane.pb files of a run directory, without
// loadprof's client trace.
func serverTraces(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.xplane.pb"))
	out := files[:0]
	for _, f := range files {
		if filepath.Base(f) != ClientFile {
			out = append(out, f)
		}
	}
	return out
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// ClientFile is the file loadprof writes beside the server's trace, with one
// event per request. Its plane is a "/host:CPU" plane, the only host plane
// xprof's trace viewer draws; its lines are named ClientLinePrefix + N.
const (
	ClientFile       = "loadprof-client.xplane.pb"
	ClientLinePrefix = "loadprof client requests #"
)

// Summarize returns the ops of the server's planes: "/host:CPU" (TensorFlow
// ops and runtime events) and "/device:*" planes, without loadprof's own
// client lines. Events are grouped by name per plane.
func Summarize(space *tfproto.XSpace) Summary {
	type key struct{ plane, name string }
	agg := map[key]*Op{}
	var sum Summary
	var first, last int64 = -1, -1
	for _, plane := range space.GetPlanes() {
		name := plane.GetName()
		if !(strings.HasPrefix(name, "/host:") || strings.HasPrefix(name, "/device:")) {
			continue
		}
		counted := false
		for _, line := range plane.GetLines() {
			if strings.HasPrefix(line.GetName(), ClientLinePrefix) {
				continue // loadprof's own requests, not the server's work
			}
			if !counted {
				sum.Planes, counted = append(sum.Planes, name), true
			}
			events := line.GetEvents()
			// Self time: subtract, from each event, the events nested in it.
			type span struct{ start, end int64 }
			spans := make([]span, len(events))
			order := make([]int, len(events))
			for i, e := range events {
				start := line.GetTimestampNs()*1000 + e.GetOffsetPs()
				spans[i] = span{start, start + e.GetDurationPs()}
				order[i] = i
			}
			sort.Slice(order, func(a, b int) bool {
				sa, sb := spans[order[a]], spans[order[b]]
				if sa.start != sb.start {
					return sa.start < sb.start
				}
				return sa.end > sb.end // the enclosing event first
			})
			child := make([]int64, len(events))
			var stack []int
			for _, i := range order {
				for len(stack) > 0 && spans[stack[len(stack)-1]].end <= spans[i].start {
					stack = stack[:len(stack)-1]
				}
				if len(stack) > 0 && spans[i].end <= spans[stack[len(stack)-1]].end {
					child[stack[len(stack)-1]] += spans[i].end - spans[i].start
				}
				stack = append(stack, i)
			}
			for i, e := range events {
				md := plane.GetEventMetadata()[e.GetMetadataId()]
				opName := md.GetDisplayName()
				if opName == "" {
					opName = md.GetName()
				}
				k := key{name, opName}
				op := agg[k]
				if op == nil {
					op = &Op{Name: opName, Plane: name}
					// TensorFlow names op events "name:Type"; C++ scopes
					// ("ExecutorState::Process") and labels ("EagerLocalExecute:
					// _EagerConst") are not that.
					if j := strings.LastIndexByte(opName, ':'); j > 0 && j < len(opName)-1 && !strings.Contains(opName, "::") && !strings.Contains(opName, ": ") {
						op.Name, op.Type = opName[:j], opName[j+1:]
					}
					agg[k] = op
				}
				op.Count++
				op.TotalMs += float64(e.GetDurationPs()) / 1e9
				op.SelfMs += float64(e.GetDurationPs()-child[i]) / 1e9
				if first < 0 || spans[i].start < first {
					first = spans[i].start
				}
				if spans[i].end > last {
					last = spans[i].end
				}
			}
		}
	}
	if first >= 0 {
		sum.SpanMs = float64(last-first) / 1e9
	}
	for _, op := range agg {
		if sum.SpanMs > 0 {
			op.Share = op.SelfMs / sum.SpanMs
		}
		sum.Ops = append(sum.Ops, *op)
	}
	sort.Slice(sum.Ops, func(i, j int) bool {
		if sum.Ops[i].SelfMs != sum.Ops[j].SelfMs {
			return sum.Ops[i].SelfMs > sum.Ops[j].SelfMs
		}
		return sum.Ops[i].Name < sum.Ops[j].Name
	})
	return sum
}

// Top returns the first n ops (none when n is not positive).
func (s Summary) Top(n int) []Op {
	n = max(n, 0)
	if len(s.Ops) > n {
		return s.Ops[:n]
	}
	return s.Ops
}

// Write prints the top n ops as a table.
func (s Summary) Write(w io.Writer, n int) {
	if len(s.Ops) == 0 {
		fmt.Fprintln(w, "  no events on the server's planes")
		return
	}
	fmt.Fprintf(w, "  %-48s %-18s %8s %11s %11s %7s\n", "op", "type", "count", "self ms", "total ms", "share")
	for _, op := range s.Top(n) {
		fmt.Fprintf(w, "  %-48s %-18s %8d %11.3f %11.3f %6.1f%%\n", clip(op.Name, 48), clip(op.Type, 18), op.Count, op.SelfMs, op.TotalMs, 100*op.Share)
	}
	fmt.Fprintf(w, "  (%d ops over %.1f ms on %s; share is self time over that span)\n", len(s.Ops), s.SpanMs, strings.Join(s.Planes, ", "))
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
