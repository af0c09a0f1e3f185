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

// referenceSummary is the summary as loadprof computed it before it read
// traces as a stream: all of a line's events sorted, then a stack. The
// streaming summary must agree with it.
func referenceSummary(space *tfproto.XSpace) Summary {
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
				continue
			}
			if !counted {
				sum.Planes, counted = append(sum.Planes, name), true
			}
			events := line.GetEvents()
			type sp struct{ start, end int64 }
			spans := make([]sp, len(events))
			order := make([]int, len(events))
			for i, e := range events {
				start := line.GetTimestampNs()*1000 + e.GetOffsetPs()
				spans[i] = sp{start, start + e.GetDurationPs()}
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool {
				sa, sb := spans[order[a]], spans[order[b]]
				if sa.start != sb.start {
					return sa.start < sb.start
				}
				return sa.end > sb.end
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

// sameSummary compares two summaries, op by op in a fixed order (equal
// self times may sort either way when float sums differ in the last bit).
func sameSummary(t *testing.T, what string, got, want Summary) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !near(got.SpanMs, want.SpanMs) || strings.Join(got.Planes, ",") != strings.Join(want.Planes, ",") || len(got.Ops) != len(want.Ops) {
		t.Fatalf("%s: span %v planes %v, %d ops; want span %v planes %v, %d ops", what, got.SpanMs, got.Planes, len(got.Ops), want.SpanMs, want.Planes, len(want.Ops))
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

// randomSpace is a trace with nested, overlapping and repeated events, on
// lines sorted as TensorFlow writes them or shuffled, and planes the summary
// must leave out.
func randomSpace(rng *rand.Rand) *tfproto.XSpace {
	space := &tfproto.XSpace{}
	names := []string{"/host:CPU", "/device:GPU:0", "/device:TPU:1", "Task Environment", "/host:metadata"}
	for p := 0; p < 1+rng.Intn(4); p++ {
		plane := &tfproto.XPlane{Id: int64(p), Name: names[rng.Intn(len(names))], EventMetadata: map[int64]*tfproto.XEventMetadata{}}
		for id := int64(1); id <= 6; id++ {
			md := &tfproto.XEventMetadata{Id: id, Name: "scope/op" + strconv.Itoa(int(id)) + ":Type" + strconv.Itoa(int(id%3))}
			if id == 5 {
				md.DisplayName = "shown" // display names win
			}
			plane.EventMetadata[id] = md
		}
		for l := 0; l < rng.Intn(5); l++ {
			line := &tfproto.XLine{Id: int64(l), TimestampNs: int64(rng.Intn(1000)) * 1000}
			if rng.Intn(5) == 0 {
				line.Name = ClientLinePrefix + strconv.Itoa(l)
			}
			var at int64
			for e := 0; e < rng.Intn(40); e++ {
				at += int64(rng.Intn(3)) * 1000 // equal starts happen
				dur := int64(rng.Intn(5000))
				md := int64(rng.Intn(8)) // 0 and 7 have no metadata
				line.Events = append(line.Events, ev(md, at/1000, dur/1000))
				if rng.Intn(3) == 0 { // a nested one
					line.Events = append(line.Events, ev(int64(rng.Intn(8)), (at+dur/4)/1000, dur/2000))
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

func TestStreamingSummaryAgreesWithTheReferenceOnRandomTraces(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	dir := t.TempDir()
	for i := 0; i < 300; i++ {
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
	both := &tfproto.XSpace{Planes: append(append([]*tfproto.XPlane(nil), a.Planes...), b.Planes...)}
	sameSummary(t, "two files", got, referenceSummary(both))
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
	for _, s := range []*tfproto.XSpace{craftedSpace(), randomSpace(rand.New(rand.NewSource(3)))} {
		data, _ := proto.Marshal(s)
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
