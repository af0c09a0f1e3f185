package profile

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// referenceSummary is xprof's framework_op_stats computation written out
// the way xprof writes it (xplane_to_op_metrics_db.cc): per line, a begin
// and an end for every op, stably sorted by time, then an op stack whose
// pop drops everything above the op it looks for (or the whole stack when
// the op is gone). The streaming summary must agree with it.
func referenceSummary(space *tfproto.XSpace) Summary {
	type total struct {
		name, typ              string
		count, totalPs, selfPs int64
	}
	type plane struct {
		name         string
		device       bool
		ops          map[string]*total
		order        []string
		lines        int
		opPs, linePs int64
		first, last  int64
		seen         bool
	}
	var planes []*plane
	hostSeen := false
	for _, xp := range space.GetPlanes() {
		name := xp.GetName()
		var p *plane
		switch {
		case name == "/host:CPU" && !hostSeen:
			hostSeen = true
			p = &plane{name: name}
		case strings.HasPrefix(name, "/device:"):
			p = &plane{name: name, device: true}
		default:
			continue
		}
		p.ops = map[string]*total{}
		var opStat int64
		for id, md := range xp.GetStatMetadata() {
			if md.GetName() == "tf_op" && (opStat == 0 || id < opStat) {
				opStat = id
			}
		}
		strOf := func(stats []*tfproto.XStat) (string, bool) {
			for _, st := range stats {
				if opStat != 0 && st.GetMetadataId() == opStat {
					switch v := st.GetValue().(type) {
					case *tfproto.XStat_StrValue:
						return v.StrValue, true
					case *tfproto.XStat_RefValue:
						return xp.GetStatMetadata()[int64(v.RefValue)].GetName(), true
					}
					return "", true
				}
			}
			return "", false
		}
		type act struct {
			at        int64
			id        int
			begin     bool
			name, typ string
		}
		anyLine := false
		for _, line := range xp.GetLines() {
			if strings.HasPrefix(line.GetName(), ClientLinePrefix) || line.GetId() >= derivedLineMin && line.GetId() <= derivedLineMax ||
				p.device && deviceGroupingLines[line.GetName()] {
				continue
			}
			anyLine = true
			var acts []act
			id := 0
			push := func(e *tfproto.XEvent, name, typ string) {
				id++
				acts = append(acts, act{e.GetOffsetPs(), id, true, name, typ}, act{e.GetOffsetPs() + e.GetDurationPs(), id, false, name, typ})
			}
			for _, e := range line.GetEvents() {
				md, ok := xp.GetEventMetadata()[e.GetMetadataId()]
				if p.device {
					if v, _ := strOf(e.GetStats()); v != "" {
						op := parseOpName(v)
						push(e, op.name, op.typ)
					} else if v, _ := strOf(md.GetStats()); v != "" {
						op := parseOpName(v)
						push(e, op.name, op.typ)
					} else if !ok {
						push(e, "(event metadata "+strconv.Itoa(int(e.GetMetadataId()))+")", "")
					} else if md.GetDisplayName() != "" {
						push(e, md.GetDisplayName(), "")
					} else {
						push(e, md.GetName(), "")
					}
					continue
				}
				if op := parseOpName(md.GetName()); md.GetName() != "" && op.known {
					push(e, op.name, op.typ)
				}
				if v, _ := strOf(e.GetStats()); v != "" {
					op := parseOpName(v)
					push(e, op.name, op.typ)
				}
			}
			if len(acts) == 0 {
				continue
			}
			sort.SliceStable(acts, func(a, b int) bool { return acts[a].at < acts[b].at })
			type frame struct {
				id          int
				start, kids int64
			}
			var stack []frame
			for _, a := range acts {
				if a.begin {
					stack = append(stack, frame{id: a.id, start: a.at})
					continue
				}
				var f *frame
				for len(stack) > 0 {
					top := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					if top.id == a.id {
						f = &top
						break
					}
				}
				if f == nil {
					continue
				}
				dur := a.at - f.start
				t := p.ops[a.name]
				if t == nil {
					t = &total{name: a.name, typ: a.typ}
					p.ops[a.name] = t
					p.order = append(p.order, a.name)
				}
				t.count++
				t.totalPs += dur
				t.selfPs += dur - f.kids
				p.opPs += dur - f.kids
				if len(stack) > 0 {
					stack[len(stack)-1].kids += dur
				}
			}
			p.lines++
			p.linePs += acts[len(acts)-1].at - acts[0].at
			first := line.GetTimestampNs() + acts[0].at/1000
			last := line.GetTimestampNs() + (acts[len(acts)-1].at+999)/1000
			if !p.seen || first < p.first {
				p.first = first
			}
			if !p.seen || last > p.last {
				p.last = last
			}
			p.seen = true
		}
		if !anyLine {
			continue
		}
		merged := false
		for _, q := range planes {
			if q.name == p.name {
				for _, n := range p.order {
					o := p.ops[n]
					t := q.ops[n]
					if t == nil {
						t = &total{name: n, typ: o.typ}
						q.ops[n] = t
					}
					t.count += o.count
					t.totalPs += o.totalPs
					t.selfPs += o.selfPs
				}
				q.lines += p.lines
				q.opPs += p.opPs
				q.linePs += p.linePs
				if p.seen && (!q.seen || p.first < q.first) {
					q.first = p.first
				}
				if p.seen && (!q.seen || p.last > q.last) {
					q.last = p.last
				}
				q.seen = q.seen || p.seen
				merged = true
			}
		}
		if !merged {
			planes = append(planes, p)
		}
	}
	sort.SliceStable(planes, func(i, j int) bool {
		if planes[i].device != planes[j].device {
			return !planes[i].device
		}
		return devicePlaneLess(planes[i].name, planes[j].name)
	})
	var sum Summary
	var first, last int64
	seen := false
	for _, p := range planes {
		st := PlaneStats{Plane: p.name, Device: p.device, Lines: p.lines, OpMs: float64(p.opPs) / 1e9, LineMs: float64(p.linePs) / 1e9}
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
		for _, t := range p.ops {
			op := Op{Name: t.name, Type: t.typ, Plane: p.name, Count: t.count, TotalMs: float64(t.totalPs) / 1e9, SelfMs: float64(t.selfPs) / 1e9}
			if p.opPs > 0 {
				op.Share = float64(t.selfPs) / float64(p.opPs)
			}
			ops = append(ops, op)
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

// sameSummary compares two summaries, op by op in a fixed order (equal
// self times may sort either way when float sums differ in the last bit).
func sameSummary(t *testing.T, what string, got, want Summary) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !near(got.SpanMs, want.SpanMs) || strings.Join(got.Planes, ",") != strings.Join(want.Planes, ",") || len(got.Ops) != len(want.Ops) || len(got.Stats) != len(want.Stats) {
		t.Fatalf("%s: span %v planes %v, %d ops; want span %v planes %v, %d ops", what, got.SpanMs, got.Planes, len(got.Ops), want.SpanMs, want.Planes, len(want.Ops))
	}
	for i, w := range want.Stats {
		g := got.Stats[i]
		if g.Plane != w.Plane || g.Device != w.Device || g.Lines != w.Lines || g.Ops != w.Ops || !near(g.OpMs, w.OpMs) || !near(g.LineMs, w.LineMs) || !near(g.SpanMs, w.SpanMs) {
			t.Fatalf("%s: plane %+v, want %+v", what, g, w)
		}
	}
	byKey := func(ops []Op) []Op {
		out := append([]Op(nil), ops...)
		sort.Slice(out, func(i, j int) bool {
			return out[i].Plane+"\x00"+out[i].Name+"\x00"+out[i].Type < out[j].Plane+"\x00"+out[j].Name+"\x00"+out[j].Type
		})
		return out
	}
	g, w := byKey(got.Ops), byKey(want.Ops)
	for i := range w {
		if g[i].Name != w[i].Name || g[i].Type != w[i].Type || g[i].Plane != w[i].Plane || g[i].Count != w[i].Count ||
			!near(g[i].TotalMs, w[i].TotalMs) || !near(g[i].SelfMs, w[i].SelfMs) || !near(g[i].Share, w[i].Share) {
			t.Fatalf("%s: op %+v, want %+v", what, g[i], w[i])
		}
	}
}

// randomSpace is a trace with nested, overlapping, repeated and
// simultaneous events: TensorFlow ops, runtime markers and events that
// name their op with a tf_op stat, on lines sorted as TensorFlow writes
// them or shuffled, on the planes the summary reads and on planes and
// lines it must leave out.
func randomSpace(rng *rand.Rand) *tfproto.XSpace {
	space := &tfproto.XSpace{}
	names := []string{"/host:CPU", "/host:CPU", "/device:GPU:0", "/device:TPU:1", "/device:GPU:10", "Task Environment", "/host:metadata"}
	opNames := []string{"scope/MatMul:MatMul", "scope/MatMul_1:MatMul", "KernelAndDeviceFunc::Run", "EagerLocalExecute: _EagerConst",
		"bg_fn", "Iterator::Batch", "jit_f/dot:", "MemcpyHToD", "scope/Relu:Relu", ""}
	lineNames := []string{"", "tf_Compute/1", "XLA Ops", "XLA Modules", "Stream #1", "Steps"}
	for p := 0; p < 1+rng.Intn(4); p++ {
		plane := &tfproto.XPlane{Id: int64(p), Name: names[rng.Intn(len(names))], EventMetadata: map[int64]*tfproto.XEventMetadata{},
			StatMetadata: map[int64]*tfproto.XStatMetadata{1: {Id: 1, Name: "tf_op"}, 2: {Id: 2, Name: "scope/ref/AddV2:AddV2"}, 3: {Id: 3, Name: "other"}}}
		if rng.Intn(4) == 0 {
			delete(plane.StatMetadata, 1) // no tf_op stat on this plane
		}
		for id := int64(1); id <= 6; id++ {
			md := &tfproto.XEventMetadata{Id: id, Name: opNames[rng.Intn(len(opNames))]}
			if rng.Intn(3) == 0 {
				md.DisplayName = "shown"
			}
			if rng.Intn(4) == 0 {
				md.Stats = []*tfproto.XStat{{MetadataId: 1, Value: &tfproto.XStat_StrValue{StrValue: "scope/meta/Mul:Mul"}}}
			}
			plane.EventMetadata[id] = md
		}
		for l := 0; l < rng.Intn(5); l++ {
			line := &tfproto.XLine{Id: int64(l), Name: lineNames[rng.Intn(len(lineNames))], TimestampNs: int64(rng.Intn(1000)) * 1000}
			switch rng.Intn(8) {
			case 0:
				line.Name = ClientLinePrefix + strconv.Itoa(l)
			case 1:
				line.Id = derivedLineMin + int64(rng.Intn(3))
			}
			var at int64
			for e := 0; e < rng.Intn(40); e++ {
				at += int64(rng.Intn(3)) * 1000 // equal starts happen
				dur := int64(rng.Intn(5)) * 1000
				md := int64(rng.Intn(8)) // 0 and 7 have no metadata
				event := ev(md, at/1000, dur/1000)
				switch rng.Intn(6) {
				case 0:
					event.Stats = []*tfproto.XStat{{MetadataId: 1, Value: &tfproto.XStat_StrValue{StrValue: opNames[rng.Intn(len(opNames))]}}}
				case 1:
					event.Stats = []*tfproto.XStat{{MetadataId: 3, Value: &tfproto.XStat_Int64Value{Int64Value: 4}}, {MetadataId: 1, Value: &tfproto.XStat_RefValue{RefValue: 2}}}
				case 2:
					event.Stats = []*tfproto.XStat{{MetadataId: 1, Value: &tfproto.XStat_Int64Value{Int64Value: 4}}}
				}
				line.Events = append(line.Events, event)
				if rng.Intn(3) == 0 { // a nested one, or one that ends with its parent
					start := at + dur/4
					if rng.Intn(2) == 0 {
						start = at + dur/2
					}
					line.Events = append(line.Events, ev(int64(rng.Intn(8)), start/1000, (at+dur-start)/1000))
				}
			}
			sort.SliceStable(line.Events, func(a, b int) bool {
				ea, eb := line.Events[a], line.Events[b]
				if ea.GetOffsetPs() != eb.GetOffsetPs() {
					return ea.GetOffsetPs() < eb.GetOffsetPs()
				}
				return ea.GetDurationPs() > eb.GetDurationPs()
			})
			if rng.Intn(3) == 0 {
				rng.Shuffle(len(line.Events), func(a, b int) { line.Events[a], line.Events[b] = line.Events[b], line.Events[a] })
			}
			plane.Lines = append(plane.Lines, line)
		}
		space.Planes = append(space.Planes, plane)
	}
	return space
}

func TestStreamingSummaryAgreesWithXprofsAlgorithmOnRandomTraces(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	dir := t.TempDir()
	for i := 0; i < 1000; i++ {
		space := randomSpace(rng)
		want := referenceSummary(space)
		sameSummary(t, "Summarize", Summarize(space), want)
		data, err := proto.Marshal(space)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, strconv.Itoa(i)+".xplane.pb")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := SummarizeFiles([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		sameSummary(t, "SummarizeFiles", got, want)
	}
}

func TestSummarizeFilesOfTwoFilesIsTheSummaryOfBoth(t *testing.T) {
	a, b := craftedSpace(), randomSpace(rand.New(rand.NewSource(7)))
	b.Planes = append(b.Planes, &tfproto.XPlane{Name: "/host:CPU", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Name: "x/MatMul:MatMul"}},
		Lines: []*tfproto.XLine{{Id: 1, TimestampNs: 20_000_000, Events: []*tfproto.XEvent{ev(1, 0, 1_000_000)}}}})
	dir := t.TempDir()
	var files []string
	for i, s := range []*tfproto.XSpace{a, b} {
		data, _ := proto.Marshal(s)
		files = append(files, filepath.Join(dir, strconv.Itoa(i)+".xplane.pb"))
		if err := os.WriteFile(files[i], data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := SummarizeFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	// Each file's first /host:CPU plane is a host; hosts are combined.
	merged := &tfproto.XSpace{}
	for _, s := range []*tfproto.XSpace{a, b} {
		hostSeen := false
		for _, p := range s.Planes {
			if p.Name == "/host:CPU" {
				if hostSeen {
					continue
				}
				hostSeen = true
				merged.Planes = append(merged.Planes, proto.Clone(p).(*tfproto.XPlane))
				continue
			}
			merged.Planes = append(merged.Planes, p)
		}
	}
	// referenceSummary takes the first host plane of a space: give it the
	// two hosts' lines on one plane, their metadata ids kept apart.
	var host *tfproto.XPlane
	var rest []*tfproto.XPlane
	for _, p := range merged.Planes {
		if p.Name != "/host:CPU" {
			rest = append(rest, p)
			continue
		}
		if host == nil {
			host = p
			continue
		}
		off := int64(1000)
		for id, md := range p.EventMetadata {
			host.EventMetadata[id+off] = md
		}
		for _, l := range p.Lines {
			l = proto.Clone(l).(*tfproto.XLine)
			for _, e := range l.Events {
				e.MetadataId += off
			}
			host.Lines = append(host.Lines, l)
		}
	}
	merged.Planes = append([]*tfproto.XPlane{host}, rest...)
	sameSummary(t, "two files", got, referenceSummary(merged))
	if !strings.Contains(strings.Join(got.Planes, ","), "/host:CPU") || got.Ops[0].Plane != "/host:CPU" {
		t.Fatalf("planes %v ops %+v", got.Planes, got.Ops)
	}
}

// writeBigTrace writes an XSpace of one "/device:GPU:0" plane with lines
// of back-to-back kernels, straight in wire format, and returns its size.
func writeBigTrace(t *testing.T, path string, lines, perLine int) int64 {
	t.Helper()
	var events []byte
	for i := 0; i < perLine; i++ {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(1+i%3))
		e = protowire.AppendTag(e, 2, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(i)*1_000_000)
		e = protowire.AppendTag(e, 3, protowire.VarintType)
		e = protowire.AppendVarint(e, 800_000)
		events = protowire.AppendTag(events, 4, protowire.BytesType)
		events = protowire.AppendBytes(events, e)
	}
	md, _ := proto.Marshal(&tfproto.XPlane{Name: "/device:GPU:0", EventMetadata: map[int64]*tfproto.XEventMetadata{
		1: {Id: 1, Name: "gemm"}, 2: {Id: 2, Name: "relu"}, 3: {Id: 3, Name: "reduce"}}})
	var lineHdr []byte
	lineHdr = protowire.AppendTag(lineHdr, 3, protowire.VarintType)
	lineHdr = protowire.AppendVarint(lineHdr, 1_000_000)
	lineLen := len(lineHdr) + len(events)
	lineField := protowire.AppendTag(nil, 3, protowire.BytesType)
	lineField = protowire.AppendVarint(lineField, uint64(lineLen))
	planeLen := len(md) + lines*(len(lineField)+lineLen)
	head := protowire.AppendTag(nil, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(planeLen))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, b := range [][]byte{head, md} {
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < lines; i++ {
		for _, b := range [][]byte{lineField, lineHdr, events} {
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

func TestSummarizeFilesReadsABigTraceInLittleMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.xplane.pb")
	const lines, perLine = 200, 10_000
	size := writeBigTrace(t, path, lines, perLine)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sum, err := SummarizeFiles([]string{path})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	var events int64
	for _, op := range sum.Ops {
		events += op.Count
	}
	if events != lines*perLine || len(sum.Ops) != 3 || math.Abs(sum.Ops[0].SelfMs-float64(lines*((perLine+2)/3))*0.0008) > 1e-6 {
		t.Fatalf("%d events, ops %+v", events, sum.Ops)
	}
	// Decoding it would take several times its size; reading it as a
	// stream takes a window and the names.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(size)/20 {
		t.Fatalf("summarising a %d-byte trace allocated %d bytes", size, alloc)
	}
}

func TestSummarizeFilesRefusesATruncatedTrace(t *testing.T) {
	data, _ := proto.Marshal(craftedSpace())
	dir := t.TempDir()
	for _, cut := range []int{1, 7, len(data) / 2, len(data) - 1} {
		path := filepath.Join(dir, "cut.xplane.pb")
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := SummarizeFiles([]string{path}); err == nil || !strings.Contains(err.Error(), "not an XSpace") {
			t.Fatalf("cut at %d of %d: %v", cut, len(data), err)
		}
	}
}

// FuzzSummarizeFiles: any bytes either fail cleanly or, when they are an
// XSpace, summarise as the decoded message does.
func FuzzSummarizeFiles(f *testing.F) {
	for _, s := range []*tfproto.XSpace{craftedSpace(), randomSpace(rand.New(rand.NewSource(3))), deviceSpace()} {
		data, _ := proto.Marshal(s)
		f.Add(data)
	}
	if data, err := os.ReadFile(tf221Trace); err == nil {
		f.Add(data)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.xplane.pb")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := SummarizeFiles([]string{path})
		var space tfproto.XSpace
		if proto.Unmarshal(data, &space) != nil {
			return // not every malformed input is noticed by a summary that skips most fields
		}
		if err != nil {
			t.Fatalf("an XSpace proto.Unmarshal accepts: %v", err)
		}
		sameSummary(t, "fuzz", got, Summarize(&space))
	})
}
