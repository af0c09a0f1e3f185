package profile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
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
// a plugins/profile directory (all its .xplane.pb files). It decodes them
// whole, several times their size in memory: a summary of a trace of any
// size is SummarizePath's.
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
	var sum summarizer
	var line lineSummer
	var spans []span
	for _, plane := range space.GetPlanes() {
		p := newPlaneSummer()
		p.name = plane.GetName()
		for id, md := range plane.GetEventMetadata() {
			p.meta[id] = opNames{md.GetName(), md.GetDisplayName()}
		}
		for _, l := range plane.GetLines() {
			line.reset()
			events := l.GetEvents()
			for _, e := range events {
				if !line.add(e.GetMetadataId(), e.GetOffsetPs(), e.GetDurationPs()) {
					spans = spans[:0]
					for _, e := range events {
						spans = append(spans, span{e.GetMetadataId(), e.GetOffsetPs(), e.GetDurationPs()})
					}
					line.addUnsorted(spans)
					break
				}
			}
			p.addLine(&line, l.GetName(), l.GetTimestampNs())
		}
		sum.addPlane(p)
	}
	return sum.result()
}

// SummarizeFiles summarises XSpace files like Summarize, reading them
// through a small window instead of decoding them: the memory it needs is
// the event names and the nesting depth of a line, whatever the size of
// the trace. Lines whose events are not in order of start (TensorFlow
// sorts them, SortXSpace) are read twice and cost 24 bytes an event while
// they are sorted.
func SummarizeFiles(files []string) (Summary, error) {
	var sum summarizer
	for _, f := range files {
		if err := summarizeFile(&sum, f); err != nil {
			return Summary{}, err
		}
	}
	return sum.result(), nil
}

// SummarizePath summarises an .xplane.pb file, or the newest run of a
// logdir or of a plugins/profile directory (all its .xplane.pb files but
// loadprof's client trace), and returns the files it read.
func SummarizePath(path string) (Summary, []string, error) {
	files, err := traceFiles(path)
	if err != nil {
		return Summary{}, nil, err
	}
	sum, err := SummarizeFiles(files)
	return sum, files, err
}

func summarizeFile(sum *summarizer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	w := newWireReader(f, 0, info.Size())
	var line lineSummer
	var spans []span
	end := info.Size()
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num != xspacePlanes || typ != protowire.BytesType {
			w.skipField(num, typ, end)
			continue
		}
		pend := w.length(end)
		p := newPlaneSummer()
		readPlane(w, pend, p, &line, &spans)
		if w.err == nil {
			sum.addPlane(p)
		}
	}
	if w.err != nil {
		return fmt.Errorf("%s: not an XSpace: %w", name, w.err)
	}
	return nil
}

// Field numbers of xplane.proto that the summary reads.
const (
	xspacePlanes         = 1
	xplaneName           = 2
	xplaneLines          = 3
	xplaneEventMetadata  = 4
	xlineName            = 2
	xlineTimestampNs     = 3
	xlineEvents          = 4
	xeventMetadataID     = 1
	xeventOffsetPs       = 2
	xeventDurationPs     = 3
	xeventNumOccurrences = 5
	xmetadataName        = 2
	xmetadataDisplayName = 4
	mapKey, mapValue     = 1, 2
)

func readPlane(w *wireReader, end int64, p *planeSummer, line *lineSummer, spans *[]span) {
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xplaneName && typ == protowire.BytesType:
			p.name = w.str(end)
		case num == xplaneLines && typ == protowire.BytesType:
			lend := w.length(end)
			readLine(w, lend, p, line, spans)
		case num == xplaneEventMetadata && typ == protowire.BytesType:
			eend := w.length(end)
			var id int64
			var names opNames
			for num, typ, ok := w.next(eend); ok; num, typ, ok = w.next(eend) {
				switch {
				case num == mapKey && typ == protowire.VarintType:
					id = int64(w.varint())
				case num == mapValue && typ == protowire.BytesType:
					// A message field given twice is merged, as proto.Unmarshal does.
					vend := w.length(eend)
					for num, typ, ok := w.next(vend); ok; num, typ, ok = w.next(vend) {
						switch {
						case num == xmetadataName && typ == protowire.BytesType:
							names.name = w.str(vend)
						case num == xmetadataDisplayName && typ == protowire.BytesType:
							names.display = w.str(vend)
						default:
							w.skipField(num, typ, vend)
						}
					}
				default:
					w.skipField(num, typ, eend)
				}
			}
			p.meta[id] = names
		default:
			w.skipField(num, typ, end)
		}
	}
}

// readLine summarises one line. Its events are taken as they come while
// they are in order; when one is not, the line is read again and sorted.
func readLine(w *wireReader, end int64, p *planeSummer, line *lineSummer, spans *[]span) {
	start := w.pos
	var name string
	var ts int64
	line.reset()
	inOrder := true
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xlineName && typ == protowire.BytesType:
			name = w.str(end)
		case num == xlineTimestampNs && typ == protowire.VarintType:
			ts = int64(w.varint())
		case num == xlineEvents && typ == protowire.BytesType:
			e := readEvent(w, w.length(end))
			if inOrder {
				inOrder = line.add(e.md, e.offset, e.dur)
			}
		default:
			w.skipField(num, typ, end)
		}
	}
	if !inOrder && w.err == nil {
		w.seek(start, end)
		*spans = (*spans)[:0]
		for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
			if num == xlineEvents && typ == protowire.BytesType {
				*spans = append(*spans, readEvent(w, w.length(end)))
			} else {
				w.skipField(num, typ, end)
			}
		}
		line.addUnsorted(*spans)
	}
	if w.err == nil {
		p.addLine(line, name, ts)
	}
}

func readEvent(w *wireReader, end int64) span {
	var e span
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xeventMetadataID && typ == protowire.VarintType:
			e.md = int64(w.varint())
		case num == xeventOffsetPs && typ == protowire.VarintType:
			e.offset = int64(w.varint())
		case num == xeventNumOccurrences && typ == protowire.VarintType:
			w.varint()
			e.offset = 0 // the other member of the oneof: no offset
		case num == xeventDurationPs && typ == protowire.VarintType:
			e.dur = int64(w.varint())
		default:
			w.skipField(num, typ, end)
		}
	}
	return e
}

// span is one event of a line: its metadata id, offset from the line's
// start and duration, in picoseconds.
type span struct{ md, offset, dur int64 }

// opStats are the events of one metadata id.
type opStats struct{ count, totalPs, selfPs int64 }

// lineSummer computes the self time of a line's events, which come in
// order of start, the enclosing event first (as TensorFlow sorts them):
// each event's self time is its duration minus that of the events nested
// directly in it, found with a stack of the events still open.
type lineSummer struct {
	open        []openEvent
	ops         map[int64]*opStats
	n           int
	prev        span
	first, last int64 // ps from the line's start
}

type openEvent struct{ md, end, dur, child int64 }

func (l *lineSummer) reset() {
	if l.ops == nil {
		l.ops = map[int64]*opStats{}
	}
	clear(l.ops)
	l.open, l.n = l.open[:0], 0
}

// add takes the next event, or reports false when it comes before the
// previous one (the line must then be given again with addUnsorted).
func (l *lineSummer) add(md, offset, dur int64) bool {
	end := offset + dur
	if l.n > 0 && (offset < l.prev.offset || offset == l.prev.offset && end > l.prev.offset+l.prev.dur) {
		return false
	}
	l.prev = span{md, offset, dur}
	if l.n == 0 || offset < l.first {
		l.first = offset
	}
	if l.n == 0 || end > l.last {
		l.last = end
	}
	l.n++
	for len(l.open) > 0 && l.open[len(l.open)-1].end <= offset {
		l.close()
	}
	if k := len(l.open) - 1; k >= 0 && end <= l.open[k].end {
		l.open[k].child += dur
	}
	l.open = append(l.open, openEvent{md: md, end: end, dur: dur})
	return true
}

// addUnsorted starts the line again with all its events, in any order.
func (l *lineSummer) addUnsorted(events []span) {
	sort.SliceStable(events, func(a, b int) bool {
		ea, eb := events[a], events[b]
		if ea.offset != eb.offset {
			return ea.offset < eb.offset
		}
		return ea.offset+ea.dur > eb.offset+eb.dur // the enclosing event first
	})
	l.reset()
	for _, e := range events {
		l.add(e.md, e.offset, e.dur)
	}
}

func (l *lineSummer) close() {
	e := l.open[len(l.open)-1]
	l.open = l.open[:len(l.open)-1]
	st := l.ops[e.md]
	if st == nil {
		st = &opStats{}
		l.ops[e.md] = st
	}
	st.count++
	st.totalPs += e.dur
	st.selfPs += e.dur - e.child
}

func (l *lineSummer) finish() {
	for len(l.open) > 0 {
		l.close()
	}
}

type opNames struct{ name, display string }

// planeSummer collects one plane's lines; whether the plane counts is known
// at its end, when its name surely has been read.
type planeSummer struct {
	name        string
	meta        map[int64]opNames
	ops         map[int64]*opStats
	counted     bool  // has a line that is not loadprof's
	first, last int64 // ps since the epoch; first < 0: no event yet
}

func newPlaneSummer() *planeSummer {
	return &planeSummer{meta: map[int64]opNames{}, ops: map[int64]*opStats{}, first: -1}
}

func (p *planeSummer) addLine(l *lineSummer, name string, timestampNs int64) {
	l.finish()
	if strings.HasPrefix(name, ClientLinePrefix) {
		return // loadprof's own requests, not the server's work
	}
	p.counted = true
	for md, st := range l.ops {
		sum := p.ops[md]
		if sum == nil {
			sum = &opStats{}
			p.ops[md] = sum
		}
		sum.count += st.count
		sum.totalPs += st.totalPs
		sum.selfPs += st.selfPs
	}
	if l.n > 0 {
		base := timestampNs * 1000
		if p.first < 0 || base+l.first < p.first {
			p.first = base + l.first
		}
		if base+l.last > p.last {
			p.last = base + l.last
		}
	}
}

// summarizer groups the server's planes' events by name per plane.
type summarizer struct {
	sum         Summary
	ops         map[[2]string]*Op // plane, op
	first, last int64
	seen        bool
}

func (s *summarizer) addPlane(p *planeSummer) {
	if !(strings.HasPrefix(p.name, "/host:") || strings.HasPrefix(p.name, "/device:")) {
		return
	}
	if p.counted {
		s.sum.Planes = append(s.sum.Planes, p.name)
	}
	if s.ops == nil {
		s.ops = map[[2]string]*Op{}
	}
	for md, st := range p.ops {
		names := p.meta[md]
		opName := names.display
		if opName == "" {
			opName = names.name
		}
		k := [2]string{p.name, opName}
		op := s.ops[k]
		if op == nil {
			op = &Op{Name: opName, Plane: p.name}
			// TensorFlow names op events "name:Type"; C++ scopes
			// ("ExecutorState::Process") and labels ("EagerLocalExecute:
			// _EagerConst") are not that.
			if j := strings.LastIndexByte(opName, ':'); j > 0 && j < len(opName)-1 && !strings.Contains(opName, "::") && !strings.Contains(opName, ": ") {
				op.Name, op.Type = opName[:j], opName[j+1:]
			}
			s.ops[k] = op
		}
		op.Count += st.count
		op.TotalMs += float64(st.totalPs) / 1e9
		op.SelfMs += float64(st.selfPs) / 1e9
	}
	if p.first >= 0 {
		if !s.seen || p.first < s.first {
			s.first = p.first
		}
		if !s.seen || p.last > s.last {
			s.last = p.last
		}
		s.seen = true
	}
}

func (s *summarizer) result() Summary {
	sum := s.sum
	if s.seen {
		sum.SpanMs = float64(s.last-s.first) / 1e9
	}
	for _, op := range s.ops {
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
