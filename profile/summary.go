package profile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Op is one row of a trace summary: the ops of one name on one plane.
//
// On the host ("/host:CPU") an op is what xprof's framework_op_stats
// (TensorBoard's "TensorFlow stats") counts: an event whose name parses as
// a TensorFlow, JAX, tf.data or memcpy op ("scope/MatMul:MatMul"), or one
// that carries a tf_op stat. Runtime markers (KernelAndDeviceFunc::Run,
// ExecutorState::Process, python scopes) are not ops; an op's self time
// is its time minus that of the ops nested directly inside it on its
// thread, runtime markers in between not counting. On a device plane every
// event of an op line is an op, named by its tf_op stat when it has one:
// kernels that have one are grouped by TensorFlow op as xprof groups them;
// the others, which xprof leaves out (it counts them as IDLE), are rows
// named after the kernel.
type Op struct {
	Name    string  `json:"name"`           // "scope/MatMul", without the type
	Type    string  `json:"type,omitempty"` // "MatMul"
	Plane   string  `json:"plane"`
	Count   int64   `json:"count"`
	TotalMs float64 `json:"total_ms"`
	SelfMs  float64 `json:"self_ms"`
	Share   float64 `json:"share"` // SelfMs over the plane's OpMs: a plane's shares add up to 1
}

// PlaneStats is how busy one summarised plane was.
type PlaneStats struct {
	Plane string `json:"plane"`
	// Device: a "/device:*" plane, summarised on its own; otherwise the host.
	Device bool `json:"device,omitempty"`
	Lines  int  `json:"lines"` // threads (host) or op lines (device) with ops
	// OpMs is the self time of all the plane's ops, summed over its lines:
	// the time they were busy in ops, and the denominator of Op.Share.
	OpMs float64 `json:"op_ms"`
	// LineMs is, summed over the lines, the time from a line's first op's
	// start to its last op's end: xprof's host total, of which OpMs is the
	// part that is not IDLE.
	LineMs float64 `json:"line_ms"`
	SpanMs float64 `json:"span_ms"` // first op start to last op end on the plane
	Ops    int     `json:"ops"`     // distinct ops
}

// Summary is the ops of a trace, plane by plane.
type Summary struct {
	SpanMs float64      `json:"span_ms"` // first op start to last op end, over the planes summarised
	Planes []string     `json:"planes"`  // the host first, then the devices
	Stats  []PlaneStats `json:"plane_stats,omitempty"`
	Ops    []Op         `json:"ops"` // plane by plane in the order of Planes, by self time, largest first
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

// Summarize summarises a decoded XSpace like SummarizeFiles summarises
// one file: its first "/host:CPU" plane is the host.
func Summarize(space *tfproto.XSpace) Summary {
	var sum summarizer
	hostSeen := false
	var line lineOps
	for _, plane := range space.GetPlanes() {
		p := newPlaneInfo(plane.GetName(), &hostSeen)
		if p == nil {
			continue
		}
		for id, md := range plane.GetStatMetadata() {
			p.statNames[id] = md.GetName()
		}
		p.findOpStat()
		for id, md := range plane.GetEventMetadata() {
			m := eventMeta{name: md.GetName(), display: md.GetDisplayName()}
			for _, st := range md.GetStats() {
				if p.device && p.opStat != 0 && st.GetMetadataId() == p.opStat {
					m.stats = append(m.stats, statOf(st))
				}
			}
			p.meta[id] = m
		}
		p.resolve()
		for _, l := range plane.GetLines() {
			if !p.countsLine(l.GetId(), l.GetName()) {
				continue
			}
			p.anyLines = true
			events := l.GetEvents()
			addEvent := func(e *tfproto.XEvent) bool {
				st := noStat
				if id := p.opStat; id != 0 {
					for _, s := range e.GetStats() {
						if s.GetMetadataId() == id {
							st = statOf(s)
							break
						}
					}
				}
				return p.event(&line, e.GetMetadataId(), st, e.GetOffsetPs(), e.GetDurationPs())
			}
			line.reset(false)
			for _, e := range events {
				if !addEvent(e) {
					line.reset(true)
					for _, e := range events {
						addEvent(e)
					}
					break
				}
			}
			p.addLine(&line, l.GetTimestampNs())
		}
		sum.addPlane(p)
	}
	return sum.result()
}

func statOf(s *tfproto.XStat) stat {
	switch v := s.GetValue().(type) {
	case *tfproto.XStat_StrValue:
		return stat{id: s.GetMetadataId(), str: v.StrValue, kind: statStr}
	case *tfproto.XStat_RefValue:
		return stat{id: s.GetMetadataId(), ref: int64(v.RefValue), kind: statRef}
	}
	return stat{id: s.GetMetadataId(), kind: statOther}
}

// SummarizeFiles summarises the server's planes of XSpace files: the
// host's TensorFlow ops as xprof's framework_op_stats counts them, and
// each "/device:*" plane on its own. It reads the files through a small
// window instead of decoding them: the memory it needs is the names, the
// ops' totals and the nesting depth of a line, whatever the size of the
// trace. A plane's names follow its lines: the plane is read for its
// name and stat names, then for its event names, then for its lines,
// each once; a line whose events are not in order of start (TensorFlow
// sorts them) is read again and costs 32 bytes an op while its ops are
// sorted.
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
	var line lineOps
	hostSeen := false
	end := info.Size()
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num != xspacePlanes || typ != protowire.BytesType {
			w.skipField(num, typ, end)
			continue
		}
		pend := w.length(end)
		start := w.pos
		p := readPlaneNames(w, pend, &hostSeen)
		if p != nil && w.err == nil {
			w.seek(start, pend)
			readPlaneLines(w, pend, p, &line)
			if w.err == nil {
				sum.addPlane(p)
			}
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
	xplaneStatMetadata   = 5
	xlineID              = 1
	xlineName            = 2
	xlineTimestampNs     = 3
	xlineEvents          = 4
	xeventMetadataID     = 1
	xeventOffsetPs       = 2
	xeventDurationPs     = 3
	xeventStats          = 4
	xeventNumOccurrences = 5
	xmetadataName        = 2
	xmetadataDisplayName = 4
	xmetadataStats       = 5
	xstatMetadataName    = 2
	xstatMetadataID      = 1
	xstatStr             = 5
	xstatRef             = 7
	mapKey, mapValue     = 1, 2
)

// readPlaneNames reads a plane's name and names, skipping its lines, and
// returns nil for a plane that is not summarised. The stat names come
// first, so that of the event metadata's stats only the tf_op stat of a
// device's is kept.
func readPlaneNames(w *wireReader, end int64, hostSeen *bool) *planeInfo {
	start := w.pos
	var name string
	statNames := map[int64]string{}
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xplaneName && typ == protowire.BytesType:
			name = w.str(end)
		case num == xplaneStatMetadata && typ == protowire.BytesType:
			id, sname := readMetadataEntry(w, w.length(end))
			statNames[id] = sname
		default:
			w.skipField(num, typ, end)
		}
	}
	p := newPlaneInfo(name, hostSeen)
	if p == nil || w.err != nil {
		return nil
	}
	p.statNames = statNames
	p.findOpStat()
	w.seek(start, end)
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num != xplaneEventMetadata || typ != protowire.BytesType {
			w.skipField(num, typ, end)
			continue
		}
		eend := w.length(end)
		var id int64
		var m eventMeta
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
						m.name = w.str(vend)
					case num == xmetadataDisplayName && typ == protowire.BytesType:
						m.display = w.str(vend)
					case num == xmetadataStats && typ == protowire.BytesType && p.device && p.opStat != 0:
						if st := readStat(w, w.length(vend)); st.id == p.opStat {
							m.stats = append(m.stats, st)
						}
					default:
						w.skipField(num, typ, vend)
					}
				}
			default:
				w.skipField(num, typ, eend)
			}
		}
		p.meta[id] = m
	}
	p.resolve()
	return p
}

func readStat(w *wireReader, end int64) stat {
	var s stat
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xstatMetadataID && typ == protowire.VarintType:
			s.id = int64(w.varint())
		case num == xstatStr && typ == protowire.BytesType:
			s.str, s.kind = w.str(end), statStr
		case num == xstatRef && typ == protowire.VarintType:
			s.ref, s.kind, s.str = int64(w.varint()), statRef, ""
		default:
			// The other members of the value oneof replace a string.
			if num >= 2 && num <= 6 {
				s.kind, s.str = statOther, ""
			}
			w.skipField(num, typ, end)
		}
	}
	return s
}

// readPlaneLines summarises a plane's lines, its names known.
func readPlaneLines(w *wireReader, end int64, p *planeInfo, line *lineOps) {
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num == xplaneLines && typ == protowire.BytesType {
			readLine(w, w.length(end), p, line)
		} else {
			w.skipField(num, typ, end)
		}
	}
}

// readLine summarises one line. As TensorFlow writes a line, its id and
// name come before its events, which are taken as they come while they are
// in order of start; an id or name after an event, or an event out of
// order, has the line's events read again and its ops sorted.
func readLine(w *wireReader, end int64, p *planeInfo, line *lineOps) {
	start := w.pos
	var id, ts int64
	var name string
	line.reset(false)
	decided, counts, again := false, false, false
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xlineID && typ == protowire.VarintType:
			id = int64(w.varint())
			again = again || decided
		case num == xlineName && typ == protowire.BytesType:
			name = w.str(end)
			again = again || decided
		case num == xlineTimestampNs && typ == protowire.VarintType:
			ts = int64(w.varint())
		case num == xlineEvents && typ == protowire.BytesType:
			if !decided {
				decided, counts = true, p.countsLine(id, name)
			}
			if !counts || again {
				w.skipField(num, typ, end)
				continue
			}
			md, st, offset, dur := readEvent(w, w.length(end), p.opStat)
			if w.err == nil && !p.event(line, md, st, offset, dur) {
				again = true
			}
		default:
			w.skipField(num, typ, end)
		}
	}
	if w.err != nil {
		return
	}
	if again || !decided {
		counts = p.countsLine(id, name)
	}
	if !counts {
		return
	}
	if again {
		line.reset(true)
		w.seek(start, end)
		for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
			if num != xlineEvents || typ != protowire.BytesType {
				w.skipField(num, typ, end)
				continue
			}
			md, st, offset, dur := readEvent(w, w.length(end), p.opStat)
			if w.err == nil {
				p.event(line, md, st, offset, dur)
			}
		}
		if w.err != nil {
			return
		}
	}
	p.anyLines = true
	p.addLine(line, ts)
}

func readEvent(w *wireReader, end, opStat int64) (md int64, st stat, offset, dur int64) {
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == xeventMetadataID && typ == protowire.VarintType:
			md = int64(w.varint())
		case num == xeventOffsetPs && typ == protowire.VarintType:
			offset = int64(w.varint())
		case num == xeventNumOccurrences && typ == protowire.VarintType:
			w.varint()
			offset = 0 // the other member of the oneof: no offset
		case num == xeventDurationPs && typ == protowire.VarintType:
			dur = int64(w.varint())
		case num == xeventStats && typ == protowire.BytesType && opStat != 0 && st.kind == statNone:
			sEnd := w.length(end)
			if s := readStat(w, sEnd); s.id == opStat {
				st = s
				if st.kind == statNone {
					st.kind = statOther // present, without a string
				}
			}
		default:
			w.skipField(num, typ, end)
		}
	}
	return md, st, offset, dur
}

// stat is a string-valued stat of an event or of its metadata.
type stat struct {
	id   int64
	kind statKind
	str  string
	ref  int64 // a stat metadata id, whose name is the value
}

type statKind uint8

const (
	statNone  statKind = iota // no stat
	statOther                 // a stat whose value is not a string
	statStr
	statRef
)

var noStat stat

type eventMeta struct {
	name, display string
	stats         []stat
}

// planeInfo is one summarised plane: its names, which events are ops, and
// the totals of its ops.
type planeInfo struct {
	name      string
	device    bool
	meta      map[int64]eventMeta
	statNames map[int64]string
	// opStat is the id of the "tf_op" stat (0: none; TensorFlow numbers
	// stats from 1): an event names the TensorFlow op it belongs to with it.
	opStat int64
	// byMeta are the ops of each metadata id (-1: not an op).
	byMeta map[int64]int32
	byStat map[string]int32 // ops named by tf_op stats
	// variants are the (name, type) pairs the lines' ops refer to; totals
	// are by name, typed by the first of a name to close, as in xprof.
	variants  []opVariant
	variantID map[opVariant]int32
	totals    map[string]*opTotals
	order     []string

	lines          int
	opPs, linePs   int64
	first, last    int64 // ns since the lines' clock's epoch
	seen, anyLines bool
}

type opVariant struct{ name, typ string }

type opTotals struct {
	typ                    string
	count, totalPs, selfPs int64
}

// newPlaneInfo starts the summary of a plane, or returns nil for a plane
// that is not summarised: xprof counts the first "/host:CPU" plane of a
// file as the host; "/device:*" planes are summarised each on its own.
func newPlaneInfo(name string, hostSeen *bool) *planeInfo {
	p := &planeInfo{name: name, meta: map[int64]eventMeta{}, statNames: map[int64]string{},
		byMeta: map[int64]int32{}, byStat: map[string]int32{}, variantID: map[opVariant]int32{}, totals: map[string]*opTotals{}}
	switch {
	case name == hostPlaneName && !*hostSeen:
		*hostSeen = true
	case strings.HasPrefix(name, "/device:"):
		p.device = true
	default:
		return nil
	}
	return p
}

const hostPlaneName = "/host:CPU"

// findOpStat finds the tf_op stat.
func (p *planeInfo) findOpStat() {
	p.opStat = 0
	for id, name := range p.statNames {
		// Several ids of one name: xprof takes one of them; the lowest here.
		if name == "tf_op" && (p.opStat == 0 || id < p.opStat) {
			p.opStat = id
		}
	}
}

// resolve finds which metadata are ops.
func (p *planeInfo) resolve() {
	ids := make([]int64, 0, len(p.meta))
	for id := range p.meta {
		ids = append(ids, id)
	}
	// In order of id, so that the type of a name given two is always the same.
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		m := p.meta[id]
		p.byMeta[id] = -1
		if p.device {
			name := m.display
			if name == "" {
				name = m.name
			}
			typ := ""
			if op, ok := p.metaStatOp(m); ok {
				name, typ = op.name, op.typ
			}
			p.byMeta[id] = p.opID(name, typ)
			continue
		}
		if m.name == "" {
			continue
		}
		if op := parseOpName(m.name); op.known {
			p.byMeta[id] = p.opID(op.name, op.typ)
		}
	}
	p.meta = nil // byMeta has all the lines need
}

// metaStatOp is the op a device event's metadata names with a tf_op stat.
func (p *planeInfo) metaStatOp(m eventMeta) (tfOp, bool) {
	if p.opStat == 0 {
		return tfOp{}, false
	}
	for _, s := range m.stats {
		if s.id == p.opStat {
			if v := p.statValue(s); v != "" {
				return parseOpName(v), true
			}
			return tfOp{}, false
		}
	}
	return tfOp{}, false
}

func (p *planeInfo) statValue(s stat) string {
	switch s.kind {
	case statStr:
		return s.str
	case statRef:
		return p.statNames[s.ref]
	}
	return ""
}

func (p *planeInfo) opID(name, typ string) int32 {
	v := opVariant{name, typ}
	if id, ok := p.variantID[v]; ok {
		return id
	}
	id := int32(len(p.variants))
	p.variants = append(p.variants, v)
	p.variantID[v] = id
	return id
}

func (p *planeInfo) add(v opVariant, st opStats) {
	t := p.totals[v.name]
	if t == nil {
		t = &opTotals{typ: v.typ}
		p.totals[v.name] = t
		p.order = append(p.order, v.name)
	}
	t.count += st.count
	t.totalPs += st.totalPs
	t.selfPs += st.selfPs
	p.opPs += st.selfPs
}

// statOp is the op a tf_op stat names; the stat's value is parsed once.
func (p *planeInfo) statOp(s stat) (int32, bool) {
	v := p.statValue(s)
	if v == "" {
		return 0, false
	}
	if id, ok := p.byStat[v]; ok {
		return id, true
	}
	op := parseOpName(v)
	id := p.opID(op.name, op.typ)
	p.byStat[v] = id
	return id, true
}

// derivedLineMin..derivedLineMax are the ids of the lines xprof derives
// from others (tsl's kThreadIdDerivedMin = 0xdeadbeef, as an int, and the
// slots after it); it leaves them out of the op statistics.
const (
	derivedLineMin = int64(int32(-559038737)) // 0xdeadbeef as a 32-bit int
	derivedLineMax = derivedLineMin + 300
)

// deviceGroupingLines are device lines that regroup the events of the op
// lines (modules, steps, framework scopes): counting them would count the
// device's time twice.
var deviceGroupingLines = map[string]bool{
	"XLA Modules": true, "Steps": true, "TensorFlow Ops": true, "TensorFlow Name Scope": true,
	"Framework Ops": true, "Framework Name Scope": true, "Source code": true, "Launch Stats": true,
	"_counters_": true, "SparseCore Steps": true, "XLA TraceMe": true,
}

func (p *planeInfo) countsLine(id int64, name string) bool {
	switch {
	case strings.HasPrefix(name, ClientLinePrefix):
		return false // loadprof's own requests, not the server's work
	case id >= derivedLineMin && id <= derivedLineMax:
		return false
	case p.device && deviceGroupingLines[name]:
		return false
	}
	return true
}

// event adds one event of a line to it: on the host the op its name
// parses to and the op its tf_op stat names, in that order, as xprof
// does; on a device the op of its tf_op stat, or of its name. It reports
// false when the line's events are not in order of start.
func (p *planeInfo) event(l *lineOps, md int64, st stat, offset, dur int64) bool {
	if p.device {
		op, ok := p.statOp(st)
		if !ok {
			if op, ok = p.byMeta[md]; !ok {
				op = p.opID(fmt.Sprintf("(event metadata %d)", md), "")
				p.byMeta[md] = op
			}
		}
		return l.add(op, offset, dur)
	}
	if op, ok := p.byMeta[md]; ok && op >= 0 {
		if !l.add(op, offset, dur) {
			return false
		}
	}
	if st.kind != statNone {
		if op, ok := p.statOp(st); ok {
			return l.add(op, offset, dur)
		}
	}
	return true
}

func (p *planeInfo) addLine(l *lineOps, timestampNs int64) {
	l.finish()
	if l.n == 0 {
		return
	}
	p.lines++
	for _, op := range l.touched {
		p.add(p.variants[op], l.ops[op])
	}
	p.linePs += l.last - l.first
	first, last := timestampNs+l.first/1000, timestampNs+(l.last+999)/1000
	if !p.seen || first < p.first {
		p.first = first
	}
	if !p.seen || last > p.last {
		p.last = last
	}
	p.seen = true
}

// lineOps computes the self time of a line's ops the way xprof does: each
// op is a begin and an end at its start and end, all of them in order of
// time (ties in the order of the line); a begin opens the op, an end
// closes it and any op opened after it and still open (those are dropped:
// ops that overlap without nesting, or end together with their parent).
// An op's self time is its time less that of the ops it closed over.
//
// While the line's events come in order of start, this is done as they
// come, with a heap of the open ops' ends, in memory of the nesting depth;
// a line that is not in order is given again (reset(true)) and its begins
// and ends are sorted.
type lineOps struct {
	sorting bool
	seq     int32
	n       int
	stack   []openOp
	ends    endHeap
	acts    []activity // sorting: every begin and end
	ops     []opStats  // by op id, of this line
	touched []int32

	lastBegin   int64
	first, last int64 // ps from the line's start
}

type openOp struct {
	seq         int32
	op          int32
	start, kids int64
}

type opStats struct{ count, totalPs, selfPs int64 }

type activity struct {
	at  int64
	seq int32
	op  int32 // -1: an end
}

func (l *lineOps) reset(sorting bool) {
	for _, op := range l.touched {
		l.ops[op] = opStats{}
	}
	l.touched = l.touched[:0]
	l.sorting, l.seq, l.n = sorting, 0, 0
	l.stack, l.ends, l.acts = l.stack[:0], l.ends[:0], l.acts[:0]
}

// add takes the next op of the line, or reports false when it starts
// before the previous one and the line is not being sorted.
func (l *lineOps) add(op int32, offset, dur int64) bool {
	end := offset + dur
	if l.n > 0 && offset < l.lastBegin && !l.sorting {
		return false
	}
	if l.n == 0 || offset < l.first {
		l.first = offset
	}
	if l.n == 0 || end > l.last {
		l.last = end
	}
	l.n++
	l.lastBegin = offset
	l.seq++
	if l.sorting {
		l.acts = append(l.acts, activity{offset, l.seq, op}, activity{end, l.seq, -1})
		return true
	}
	// Ends at or before this begin come first (at the same time, the end
	// of an earlier event precedes the begin of a later one).
	for len(l.ends) > 0 && l.ends[0].at <= offset {
		e := l.ends.pop()
		l.close(e.seq, e.at)
	}
	l.stack = append(l.stack, openOp{seq: l.seq, op: op, start: offset})
	l.ends.push(activity{at: end, seq: l.seq})
	return true
}

// close ends the op opened as seq and drops the ops opened after it. An
// op dropped already is not found: like xprof's op stack, its end then
// drops every op still open.
func (l *lineOps) close(seq int32, at int64) {
	i := len(l.stack) - 1
	for i >= 0 && l.stack[i].seq != seq {
		i--
	}
	if i < 0 {
		l.stack = l.stack[:0]
		return
	}
	o := l.stack[i]
	l.stack = l.stack[:i]
	dur := at - o.start
	if int(o.op) >= len(l.ops) {
		l.ops = append(l.ops, make([]opStats, int(o.op)+1-len(l.ops))...)
	}
	st := &l.ops[o.op]
	if st.count == 0 {
		l.touched = append(l.touched, o.op)
	}
	st.count++
	st.totalPs += dur
	st.selfPs += dur - o.kids
	if i > 0 {
		l.stack[i-1].kids += dur
	}
}

func (l *lineOps) finish() {
	if l.sorting {
		sort.SliceStable(l.acts, func(a, b int) bool { return l.acts[a].at < l.acts[b].at })
		for _, a := range l.acts {
			if a.op >= 0 {
				l.stack = append(l.stack, openOp{seq: a.seq, op: a.op, start: a.at})
			} else {
				l.close(a.seq, a.at)
			}
		}
		return
	}
	for len(l.ends) > 0 {
		e := l.ends.pop()
		l.close(e.seq, e.at)
	}
}

// endHeap is a min-heap of ends by time, then by order of the line.
type endHeap []activity

func (h endHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *endHeap) push(a activity) {
	*h = append(*h, a)
	s := *h
	for i := len(s) - 1; i > 0; {
		up := (i - 1) / 2
		if !s.less(i, up) {
			break
		}
		s[i], s[up] = s[up], s[i]
		i = up
	}
}

func (h *endHeap) pop() activity {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s.less(l, small) {
			small = l
		}
		if r < len(s) && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

// tfOp is an op's name split as tsl's ParseTfOpFullname splits it.
type tfOp struct {
	name, typ string
	known     bool // a TensorFlow, JAX, tf.data or memcpy op
}

var (
	tfOpNameRE  = regexp.MustCompile(`^[A-Za-z0-9.][A-Za-z0-9_./>-]*$`)
	tfOpTypeRE  = regexp.MustCompile(`^[A-Z_][a-zA-Z0-9_]*$`)
	jaxOpTypeRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\[.*\])?$`)
)

// parseOpName splits "scope/MatMul_1:MatMul" into its name and type; a
// name that is not an op's (a runtime marker such as
// "KernelAndDeviceFunc::Run" or "EagerLocalExecute: _EagerConst") is
// returned whole, not known.
func parseOpName(full string) tfOp {
	head, tail, found := strings.Cut(full, ":")
	if !found {
		for _, m := range []string{"MemcpyHToD", "MemcpyDToH", "MemcpyDToD", "MemcpyHToH"} {
			if len(full) >= len(m) && strings.EqualFold(full[:len(m)], m) {
				return tfOp{full, m, true}
			}
		}
		return tfOp{name: full}
	}
	switch {
	case head == "Iterator":
		return tfOp{full, "Dataset", true}
	case tfOpNameRE.MatchString(head) && tfOpTypeRE.MatchString(tail):
		return tfOp{head, tail, true}
	}
	typ := tail
	if typ == "" {
		typ = derivedOpType(head)
	}
	switch {
	case jaxOpTypeRE.MatchString(typ):
		if i := strings.IndexByte(typ, '['); i >= 0 {
			typ = typ[:i]
		}
		return tfOp{head, typ, true}
	case tail == "":
		return tfOp{head, typ, true}
	}
	return tfOp{name: full}
}

// derivedOpType is the type of an op given without one: the last part of
// its name, without a numeric suffix ("scope/MatMul_1": "MatMul").
func derivedOpType(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, '_'); i >= 0 {
		if _, err := strconv.ParseInt(name[i+1:], 10, 64); err == nil {
			return name[:i]
		}
	}
	return name
}

// summarizer gathers the summarised planes: every host plane into one, as
// xprof combines hosts, and each device plane by name.
type summarizer struct {
	planes []*planeInfo
}

func (s *summarizer) addPlane(p *planeInfo) {
	if !p.anyLines {
		return
	}
	for _, q := range s.planes {
		if q.name == p.name && q.device == p.device {
			q.merge(p)
			return
		}
	}
	s.planes = append(s.planes, p)
}

func (q *planeInfo) merge(p *planeInfo) {
	for _, name := range p.order {
		t := p.totals[name]
		q.add(opVariant{name, t.typ}, opStats{t.count, t.totalPs, t.selfPs})
	}
	q.lines += p.lines
	q.linePs += p.linePs
	if p.seen {
		if !q.seen || p.first < q.first {
			q.first = p.first
		}
		if !q.seen || p.last > q.last {
			q.last = p.last
		}
		q.seen = true
	}
}

func (s *summarizer) result() Summary {
	var sum Summary
	planes := append([]*planeInfo(nil), s.planes...)
	sort.SliceStable(planes, func(i, j int) bool {
		if planes[i].device != planes[j].device {
			return !planes[i].device
		}
		return devicePlaneLess(planes[i].name, planes[j].name)
	})
	var first, last int64
	seen := false
	for _, p := range planes {
		st := PlaneStats{Plane: p.name, Device: p.device, Lines: p.lines, OpMs: psToMs(p.opPs), LineMs: psToMs(p.linePs)}
		if p.seen {
			st.SpanMs = float64(p.last-p.first) / 1e6
			if !seen || p.first < first {
				first = p.first
			}
			if !seen || p.last > last {
				last = p.last
			}
			seen = true
		}
		var ops []Op
		for _, name := range p.order {
			op := p.totals[name]
			o := Op{Name: name, Type: op.typ, Plane: p.name, Count: op.count, TotalMs: psToMs(op.totalPs), SelfMs: psToMs(op.selfPs)}
			if p.opPs > 0 {
				o.Share = float64(op.selfPs) / float64(p.opPs)
			}
			ops = append(ops, o)
		}
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].SelfMs != ops[j].SelfMs {
				return ops[i].SelfMs > ops[j].SelfMs
			}
			return ops[i].Name < ops[j].Name
		})
		st.Ops = len(ops)
		sum.Planes = append(sum.Planes, p.name)
		sum.Stats = append(sum.Stats, st)
		sum.Ops = append(sum.Ops, ops...)
	}
	if seen {
		sum.SpanMs = float64(last-first) / 1e6
	}
	return sum
}

func psToMs(ps int64) float64 { return float64(ps) / 1e9 }

// devicePlaneLess orders "/device:GPU:2" before "/device:GPU:10".
func devicePlaneLess(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, ':'), strings.LastIndexByte(b, ':')
	if ia >= 0 && ib >= 0 && a[:ia] == b[:ib] {
		na, ea := strconv.Atoi(a[ia+1:])
		nb, eb := strconv.Atoi(b[ib+1:])
		if ea == nil && eb == nil {
			return na < nb
		}
	}
	return a < b
}

// Top returns the first n ops of each plane (none when n is not positive).
func (s Summary) Top(n int) []Op {
	var out []Op
	taken := map[string]int{}
	for _, op := range s.Ops {
		if taken[op.Plane] < n {
			taken[op.Plane]++
			out = append(out, op)
		}
	}
	return out
}

// Write prints the top n ops of each plane as a table.
func (s Summary) Write(w io.Writer, n int) {
	if len(s.Planes) == 0 && len(s.Ops) == 0 {
		fmt.Fprintln(w, "  no events on the server's planes (/host:CPU, /device:*)")
		return
	}
	stats := s.Stats
	if len(stats) == 0 {
		// A summary cut down to its ops (an old result.json): planes as
		// the ops name them.
		for _, op := range s.Ops {
			if len(stats) == 0 || stats[len(stats)-1].Plane != op.Plane {
				stats = append(stats, PlaneStats{Plane: op.Plane})
			}
		}
	}
	for i, st := range stats {
		if i > 0 {
			fmt.Fprintln(w)
		}
		var ops []Op
		for _, op := range s.Ops {
			if op.Plane == st.Plane {
				ops = append(ops, op)
			}
		}
		writePlane(w, st, ops, n)
	}
}

func writePlane(w io.Writer, st PlaneStats, ops []Op, n int) {
	what, unit := "TensorFlow ops as xprof's framework_op_stats counts them", "thread"
	if st.Device {
		what, unit = "device ops", "line"
	}
	if st.Lines != 1 {
		unit += "s"
	}
	fmt.Fprintf(w, "  %s, %s", st.Plane, what)
	if st.Lines > 0 {
		if st.Device && st.Lines > 1 {
			// Streams run side by side: their times add up past the span.
			fmt.Fprintf(w, ": %.3f ms in ops summed over %d %s", st.OpMs, st.Lines, unit)
		} else {
			fmt.Fprintf(w, ": %.3f ms busy in ops on %d %s", st.OpMs, st.Lines, unit)
		}
		if st.LineMs > 0 {
			fmt.Fprintf(w, " (%.1f%% of their %.1f ms from first op to last)", 100*st.OpMs/st.LineMs, st.LineMs)
		}
		fmt.Fprintf(w, ", span %.1f ms", st.SpanMs)
	}
	fmt.Fprintln(w)
	if len(ops) == 0 {
		fmt.Fprintln(w, "  no ops on this plane")
		return
	}
	fmt.Fprintf(w, "  %-48s %-18s %8s %11s %11s %7s\n", "op", "type", "count", "self ms", "total ms", "share")
	shown := min(max(n, 0), len(ops))
	for _, op := range ops[:shown] {
		fmt.Fprintf(w, "  %-48s %-18s %8d %11.3f %11.3f %6.1f%%\n", clip(op.Name, 48), clip(op.Type, 18), op.Count, op.SelfMs, op.TotalMs, 100*op.Share)
	}
	fmt.Fprintf(w, "  (%d of %d ops; share is self time over the plane's time in ops: all its ops add up to 100%%)\n", shown, max(len(ops), st.Ops))
}

// clip shortens s to n bytes, keeping its end, which names the op
// ("scope/.../dense_b_1/Relu", "Iterator::...::ParallelMapV2").
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head := n / 3
	return s[:head] + "..." + s[len(s)-(n-head-3):]
}
