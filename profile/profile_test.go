package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/proto"
)

func ev(md int64, offsetNs, durNs int64) *tfproto.XEvent {
	return &tfproto.XEvent{MetadataId: md, Data: &tfproto.XEvent_OffsetPs{OffsetPs: offsetNs * 1000}, DurationPs: durNs * 1000}
}

// craftedSpace: on /host:CPU, a 10 ms "SessionRun" holding MatMul (4 ms)
// and Relu (1 ms) on one thread, another MatMul (2 ms) on a second thread;
// a GPU plane with one 3 ms kernel; and loadprof's client plane, which is
// not the server's and must be left out.
func craftedSpace() *tfproto.XSpace {
	md := map[int64]*tfproto.XEventMetadata{
		1: {Id: 1, Name: "SessionRun"},
		2: {Id: 2, Name: "model/dense/MatMul:MatMul"},
		3: {Id: 3, Name: "model/dense/Relu:Relu"},
		4: {Id: 4, Name: "ExecutorState::Process"},
		5: {Id: 5, Name: "EagerLocalExecute: _EagerConst"},
	}
	host := &tfproto.XPlane{Id: 1, Name: "/host:CPU", EventMetadata: md, Lines: []*tfproto.XLine{
		{Id: 1, TimestampNs: 1_000_000, Events: []*tfproto.XEvent{ev(1, 0, 10_000_000), ev(2, 1_000_000, 4_000_000), ev(3, 6_000_000, 1_000_000)}},
		{Id: 2, TimestampNs: 1_000_000, Events: []*tfproto.XEvent{ev(2, 12_000_000, 2_000_000)}},
		{Id: 3, TimestampNs: 1_000_000, Events: []*tfproto.XEvent{ev(4, 0, 500_000), ev(5, 1_000_000, 250_000)}},
	}}
	gpu := &tfproto.XPlane{Id: 2, Name: "/device:GPU:0", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "volta_sgemm", DisplayName: "sgemm"}},
		Lines: []*tfproto.XLine{{Id: 1, TimestampNs: 3_000_000, Events: []*tfproto.XEvent{ev(1, 0, 3_000_000)}}}}
	client := &tfproto.XPlane{Id: 3, Name: "/host:CPU", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "request ok"}},
		Lines: []*tfproto.XLine{{Id: 1, Name: ClientLinePrefix + "1", TimestampNs: 0, Events: []*tfproto.XEvent{ev(1, 0, 99_000_000)}}}}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{host, gpu, client}}
}

func TestSummarizeCraftedSpaceExactly(t *testing.T) {
	s := Summarize(craftedSpace())
	// The host's ops start at 2 ms (line timestamp 1 ms + 1 ms) and end at
	// 15 ms; SessionRun and the executor's markers are not ops.
	if s.SpanMs != 13 || strings.Join(s.Planes, ",") != "/host:CPU,/device:GPU:0" {
		t.Fatalf("span %v planes %v", s.SpanMs, s.Planes)
	}
	wantStats := []PlaneStats{
		{Plane: "/host:CPU", Lines: 2, OpMs: 7, LineMs: 8, SpanMs: 13, Ops: 2},
		{Plane: "/device:GPU:0", Device: true, Lines: 1, OpMs: 3, LineMs: 3, SpanMs: 3, Ops: 1},
	}
	if len(s.Stats) != 2 || s.Stats[0] != wantStats[0] || s.Stats[1] != wantStats[1] {
		t.Fatalf("plane stats %+v, want %+v", s.Stats, wantStats)
	}
	want := []Op{
		{Name: "model/dense/MatMul", Type: "MatMul", Plane: "/host:CPU", Count: 2, TotalMs: 6, SelfMs: 6, Share: 6.0 / 7},
		{Name: "model/dense/Relu", Type: "Relu", Plane: "/host:CPU", Count: 1, TotalMs: 1, SelfMs: 1, Share: 1.0 / 7},
		{Name: "sgemm", Plane: "/device:GPU:0", Count: 1, TotalMs: 3, SelfMs: 3, Share: 1},
	}
	if len(s.Ops) != len(want) {
		t.Fatalf("ops %+v", s.Ops)
	}
	for i, w := range want {
		if got := s.Ops[i]; got != w {
			t.Errorf("op %d: got %+v, want %+v", i, got, w)
		}
	}
}

func TestReadXSpaceFindsTheNewestRunOfALogdir(t *testing.T) {
	logdir := t.TempDir()
	data, _ := proto.Marshal(craftedSpace())
	for _, run := range []string{"2026_01_01_00_00_00", "2026_02_01_00_00_00"} {
		if _, err := (Store{LogDir: logdir, Run: run}).Write("host.xplane.pb", data); err != nil {
			t.Fatal(err)
		}
	}
	// A run with only loadprof's client trace has no server trace.
	if _, err := (Store{LogDir: logdir, Run: "2026_03_01_00_00_00"}).Write(ClientFile, data); err != nil {
		t.Fatal(err)
	}
	_, files, err := ReadXSpace(logdir)
	if err != nil || len(files) != 1 || !strings.Contains(files[0], "2026_02_01") {
		t.Fatalf("files %v err %v", files, err)
	}
	if _, _, err := ReadXSpace(t.TempDir()); err == nil {
		t.Fatal("an empty directory gave a trace")
	}
	bad := filepath.Join(t.TempDir(), "x.xplane.pb")
	os.WriteFile(bad, []byte("\xff\xff\xff"), 0o644)
	if _, _, err := ReadXSpace(bad); err == nil || !strings.Contains(err.Error(), "not an XSpace") {
		t.Fatalf("got %v", err)
	}
}

func TestStoreRefusesUnsafeNamesAndNeverOverwrites(t *testing.T) {
	st := Store{LogDir: t.TempDir(), Run: "r"}
	for _, name := range []string{"../x", "a/b", `a\b`, "..", ".", "", ".hidden", strings.Repeat("a", 300)} {
		if _, err := st.Write(name, []byte("x")); err == nil {
			t.Errorf("Write(%q) accepted", name)
		}
	}
	if _, err := st.Write("t.pb", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write("t.pb", []byte("two")); !errors.Is(err, ErrExists) {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(st.Dir(), "t.pb")); string(b) != "one" {
		t.Fatalf("file now holds %q", b)
	}
}

func TestClientSpaceSpreadsOverlappingRequestsOverLines(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	space, placed := ClientSpace([]ClientEvent{{Start: ms(0), End: ms(10), Status: "ok"}, {Start: ms(5), End: ms(8), Status: "http_503"}, {Start: ms(10), End: ms(12), Status: "ok"}}, "h", t0)
	p := space.Planes[0]
	if p.Name != "/host:CPU" || !strings.HasPrefix(p.Lines[0].Name, ClientLinePrefix) || len(p.Lines) != 2 || len(p.Lines[0].Events) != 2 || len(p.Lines[1].Events) != 1 || len(p.EventMetadata) != 2 {
		t.Fatalf("plane %v", p)
	}
	if !placed || p.Lines[0].TimestampNs != 0 || p.Lines[0].Events[1].GetOffsetPs() != 10_000_000_000 {
		t.Fatalf("line 0 %v", p.Lines[0])
	}
}

func TestRunNameLikeThePythonClient(t *testing.T) {
	if got := RunName(time.Date(2026, 11, 24, 18, 30, 0, 0, time.UTC)); got != "2026_11_24_18_30_00" {
		t.Fatal(got)
	}
}

func TestReserveRunAddsASuffixAndNeverHandsOutANameTwice(t *testing.T) {
	logdir := t.TempDir()
	names := make(chan string, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, err := ReserveRun(logdir, "r")
			if err != nil {
				t.Error(err)
			}
			names <- name
		}()
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Fatalf("%s handed out twice", n)
		}
		seen[n] = true
	}
	if !seen["r"] || !seen["r_2"] || !seen["r_20"] {
		t.Fatalf("names %v", seen)
	}
	if fi, err := os.Stat(Store{LogDir: logdir, Run: "r_20"}.Dir()); err != nil || !fi.IsDir() {
		t.Fatalf("the run's directory was not made: %v", err)
	}
}
