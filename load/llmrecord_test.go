package load

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Events as a stream delivers them.
var (
	roleEvent    = SSEEvent{Kind: SSEChunk, PromptTokens: -1, CompletionTokens: -1}
	tokenEvent   = SSEEvent{Kind: SSEChunk, Tokens: 1, PromptTokens: -1, CompletionTokens: -1}
	doneEvent    = SSEEvent{Kind: SSEDone, PromptTokens: -1, CompletionTokens: -1}
	badEvent     = SSEEvent{Kind: SSEMalformed, PromptTokens: -1, CompletionTokens: -1}
	errorEvent   = SSEEvent{Kind: SSEError, PromptTokens: -1, CompletionTokens: -1, ErrorMessage: []byte("out of memory")}
	usageEventOf = func(prompt, completion int64) SSEEvent {
		return SSEEvent{Kind: SSEChunk, HasUsage: true, PromptTokens: prompt, CompletionTokens: completion}
	}
)

const ms = time.Millisecond

func TestLLMStreamRecoversTTFTAndEveryGapFromTheEventTimes(t *testing.T) {
	var s LLMStreamTimer
	s.Begin(100 * ms) // the intended send time
	s.Event(&roleEvent, 110*ms)
	s.Event(&tokenEvent, 130*ms)
	s.Event(&tokenEvent, 135*ms)
	s.Event(&badEvent, 136*ms)
	s.Event(&tokenEvent, 142*ms)
	s.Event(&tokenEvent, 142*ms)
	u := usageEventOf(17, 4)
	s.Event(&u, 143*ms)
	s.Event(&doneEvent, 144*ms)
	s.Event(&tokenEvent, 150*ms) // after [DONE]: ignored
	r := s.Finish(145*ms, LLMOK)
	want := LLMRequest{
		Start: 100 * ms, End: 145 * ms, TTFT: 30 * ms, Gaps: []time.Duration{5 * ms, 7 * ms, 0},
		E2E: 45 * ms, Chunks: 4, OutputTokens: 4, OutputFrom: TokensFromUsage, InputTokens: 17,
		TPOT: 5 * ms, Done: true, Malformed: 1, Failure: LLMMalformed,
	}
	if !reflect.DeepEqual(*r, want) {
		t.Fatalf("got  %+v\nwant %+v", *r, want)
	}

	// Reused: nothing of the first request stays.
	s.Begin(200 * ms)
	s.Event(&tokenEvent, 210*ms)
	s.Event(&tokenEvent, 213*ms)
	s.Event(&tokenEvent, 219*ms)
	s.Event(&doneEvent, 219*ms)
	r = s.Finish(220*ms, LLMOK)
	want = LLMRequest{
		Start: 200 * ms, End: 220 * ms, TTFT: 10 * ms, Gaps: []time.Duration{3 * ms, 6 * ms},
		E2E: 20 * ms, Chunks: 3, OutputTokens: 3, OutputFrom: TokensFromChunks, InputTokens: -1,
		TPOT: 5 * ms, Done: true,
	}
	if !reflect.DeepEqual(*r, want) {
		t.Fatalf("reused: got  %+v\nwant %+v", *r, want)
	}
}

func TestLLMStreamClassifiesHowAStreamEnded(t *testing.T) {
	cases := []struct {
		name    string
		events  []*SSEEvent
		engine  LLMFailure
		want    LLMFailure
		message string
	}{
		{"done", []*SSEEvent{&tokenEvent, &doneEvent}, LLMOK, LLMOK, ""},
		{"body ended before [DONE]", []*SSEEvent{&tokenEvent}, LLMOK, LLMClosedMidStream, ""},
		{"error event", []*SSEEvent{&tokenEvent, &errorEvent, &doneEvent}, LLMOK, LLMStreamError, "out of memory"},
		{"malformed event", []*SSEEvent{&badEvent, &tokenEvent, &doneEvent}, LLMOK, LLMMalformed, ""},
		{"stalled, as the engine saw", []*SSEEvent{&tokenEvent}, LLMStalled, LLMStalled, ""},
		{"HTTP error", nil, LLMHTTPError, LLMHTTPError, ""},
	}
	for _, c := range cases {
		var s LLMStreamTimer
		s.Begin(0)
		for i, ev := range c.events {
			s.Event(ev, time.Duration(i+1)*ms)
		}
		r := s.Finish(10*ms, c.engine)
		if r.Failure != c.want || r.ErrorMessage != c.message {
			t.Errorf("%s: %v %q, want %v %q", c.name, r.Failure, r.ErrorMessage, c.want, c.message)
		}
	}
}

func TestLLMStatsRecordTheTimingsExactly(t *testing.T) {
	st := NewLLMStats()
	var s LLMStreamTimer
	// Two streams: TTFT 30ms and 50ms; gaps 5, 7 and 9ms.
	s.Begin(0)
	s.Event(&tokenEvent, 30*ms)
	s.Event(&tokenEvent, 35*ms)
	s.Event(&tokenEvent, 42*ms)
	s.Event(&doneEvent, 42*ms)
	st.Add(s.Finish(44*ms, LLMOK))
	s.Begin(time.Second)
	s.Event(&tokenEvent, time.Second+50*ms)
	s.Event(&tokenEvent, time.Second+59*ms)
	u := usageEventOf(8, 2)
	s.Event(&u, time.Second+60*ms)
	s.Event(&doneEvent, time.Second+60*ms)
	st.Add(s.Finish(time.Second+61*ms, LLMOK))
	// A failed stream: its tokens count, its times do not.
	s.Begin(2 * time.Second)
	s.Event(&tokenEvent, 2*time.Second+time.Millisecond)
	st.Add(s.Finish(2*time.Second+90*ms, LLMClosedMidStream))

	if st.Requests != 3 || st.Timed != 2 || st.Errors() != 1 || st.Failures[LLMClosedMidStream] != 1 {
		t.Fatalf("counts %+v", st)
	}
	if st.OutputTokens != 3+2+1 || st.TimedOutputTokens != 5 || st.InputTokens != 8 || st.OutputFromUsage != 1 {
		t.Fatalf("tokens: output %d (timed %d), input %d, from usage %d", st.OutputTokens, st.TimedOutputTokens, st.InputTokens, st.OutputFromUsage)
	}
	for _, c := range []struct {
		name      string
		got       []int64
		wantCount int64
		wantMin   int64
		wantMax   int64
	}{
		{"ttft", []int64{st.TTFT.Min(), st.TTFT.Max()}, 2, 30_000, 50_000},
		{"itl", []int64{st.ITL.Min(), st.ITL.Max()}, 3, 5_000, 9_000},
		{"e2e", []int64{st.E2E.Min(), st.E2E.Max()}, 2, 44_000, 61_000},
		// TPOT: (44-30)/2 = 7ms and (61-50)/1 = 11ms.
		{"tpot", []int64{st.TPOT.Min(), st.TPOT.Max()}, 2, 7_000, 11_000},
	} {
		h := map[string]int64{"ttft": st.TTFT.TotalCount(), "itl": st.ITL.TotalCount(), "e2e": st.E2E.TotalCount(), "tpot": st.TPOT.TotalCount()}[c.name]
		// HDR keeps 3 digits: values up to 2048 are exact, these within 0.1%.
		if h != c.wantCount || !near(c.got[0], c.wantMin) || !near(c.got[1], c.wantMax) {
			t.Errorf("%s: %d values in [%d, %d], want %d in [%d, %d]", c.name, h, c.got[0], c.got[1], c.wantCount, c.wantMin, c.wantMax)
		}
	}
	if got := ValueAtPercentile(st.ITL, 50); !near(got, 7_000) {
		t.Errorf("ITL p50 %dus, want 7000", got)
	}
	if st.FirstAt != 0 || st.LastAt != 2*time.Second+90*ms {
		t.Errorf("span [%v, %v]", st.FirstAt, st.LastAt)
	}
}

// near reports whether an HDR value is within the histograms' precision
// (3 digits) of want.
func near(got, want int64) bool {
	d := got - want
	return d >= -want/1000-1 && d <= want/1000+1
}

// randomRequests makes n finished requests of varied shapes.
func randomRequests(rng *rand.Rand, n int) []LLMRequest {
	out := make([]LLMRequest, n)
	for i := range out {
		var s LLMStreamTimer
		start := time.Duration(rng.IntN(10_000)) * ms
		s.Begin(start)
		at := start + time.Duration(rng.IntN(500_000))*time.Microsecond
		for k := rng.IntN(20); k > 0; k-- {
			switch rng.IntN(10) {
			case 0:
				s.Event(&badEvent, at)
			case 1:
				s.Event(&roleEvent, at)
			default:
				s.Event(&tokenEvent, at)
			}
			at += time.Duration(rng.IntN(50_000)) * time.Microsecond
		}
		if rng.IntN(2) == 0 {
			u := usageEventOf(int64(rng.IntN(100)), int64(rng.IntN(30)))
			s.Event(&u, at)
		}
		if rng.IntN(5) != 0 {
			s.Event(&doneEvent, at)
		}
		r := *s.Finish(at+ms, LLMFailure(rng.IntN(int(numLLMFailures))))
		r.Gaps = append([]time.Duration(nil), r.Gaps...)
		out[i] = r
	}
	return out
}

func statsEqual(t *testing.T, what string, a, b *LLMStats) {
	t.Helper()
	flat := func(s *LLMStats) string {
		c := *s
		c.TTFT, c.ITL, c.TPOT, c.E2E, c.OutputRate = nil, nil, nil, nil, nil
		return fmt.Sprintf("%+v", c)
	}
	if flat(a) != flat(b) {
		t.Fatalf("%s: counts differ:\n%s\n%s", what, flat(a), flat(b))
	}
	hists := func(s *LLMStats) []*hdrhistogram.Histogram {
		return []*hdrhistogram.Histogram{s.TTFT, s.ITL, s.TPOT, s.E2E, s.OutputRate}
	}
	for i, ha := range hists(a) {
		hb := hists(b)[i]
		// A merge records each bucket at its lowest value: the buckets
		// and the percentiles read from them are what must agree.
		if !reflect.DeepEqual(ha.Export().Counts, hb.Export().Counts) || ha.TotalCount() != hb.TotalCount() ||
			ValueAtPercentile(ha, 99) != ValueAtPercentile(hb, 99) || ValueAtPercentile(ha, 50) != ValueAtPercentile(hb, 50) {
			t.Fatalf("%s: histogram %d (TTFT, ITL, TPOT, E2E, OutputRate) differs", what, i)
		}
	}
}

func TestLLMStatsMergedEqualAllRecordedInOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := randomRequests(rng, 2000)
	one := NewLLMStats()
	parts := []*LLMStats{NewLLMStats(), NewLLMStats(), NewLLMStats()}
	for i := range reqs {
		one.Add(&reqs[i])
		parts[i%len(parts)].Add(&reqs[i])
	}
	merged := NewLLMStats()
	for _, p := range parts {
		merged.Merge(p)
	}
	if one.Timed == 0 || one.ITL.TotalCount() == 0 || one.Errors() == 0 {
		t.Fatalf("the requests do not exercise the stats: %+v", one)
	}
	statsEqual(t, "merged stats", one, merged)
}

func TestLLMRecorderFromConcurrentWorkersEqualsOneRecorder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	reqs := randomRequests(rng, 1200)
	phaseOf := func(i int) (Phase, bool) { return Phase(min(i%3, 1)), i%5 == 0 }

	one := NewLLMRecorder()
	for i := range reqs {
		p, w := phaseOf(i)
		one.Record(p, w, &reqs[i])
	}
	// Workers record concurrently into a shared recorder and into their
	// own, merged at the end.
	shared, run := NewLLMRecorder(), NewLLMRecorder()
	own := []*LLMRecorder{NewLLMRecorder(), NewLLMRecorder(), NewLLMRecorder(), NewLLMRecorder()}
	var wg sync.WaitGroup
	for w := range own {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(reqs); i += len(own) {
				p, win := phaseOf(i)
				shared.Record(p, win, &reqs[i])
				own[w].Record(p, win, &reqs[i])
			}
		}()
	}
	wg.Wait()
	for _, o := range own {
		run.Merge(o)
	}
	want := one.Snapshot()
	for name, got := range map[string]LLMSnapshot{"shared": shared.Snapshot(), "merged": run.Snapshot()} {
		statsEqual(t, name+" warm-up", want.Warmup, got.Warmup)
		statsEqual(t, name+" steady", want.Steady, got.Steady)
		statsEqual(t, name+" window", want.Window, got.Window)
		statsEqual(t, name+" outside", want.Outside, got.Outside)
	}
	if want.Window.Requests == 0 || want.Warmup.Requests == 0 || want.Steady.Requests != want.Window.Requests+want.Outside.Requests {
		t.Fatalf("phases: warm-up %d, steady %d = window %d + outside %d", want.Warmup.Requests, want.Steady.Requests, want.Window.Requests, want.Outside.Requests)
	}
	one.Freeze()
	one.Record(Steady, false, &reqs[0])
	if s := one.Snapshot(); s.Late != 1 || s.Steady.Requests != want.Steady.Requests {
		t.Errorf("after Freeze: late %d, steady %d", s.Late, s.Steady.Requests)
	}
}

func TestLLMRecordingAllocatesNothing(t *testing.T) {
	rec := NewLLMRecorder()
	var s LLMStreamTimer
	u := usageEventOf(10, 8)
	stream := func() {
		s.Begin(0)
		for i := 0; i < 8; i++ {
			s.Event(&tokenEvent, time.Duration(i+1)*ms)
		}
		s.Event(&u, 9*ms)
		s.Event(&doneEvent, 9*ms)
		rec.Record(Steady, false, s.Finish(10*ms, LLMOK))
	}
	stream()
	if a := testing.AllocsPerRun(100, stream); a != 0 {
		t.Errorf("%v allocations per recorded stream, want 0", a)
	}
}

// endingAt is a one-token completed request that ended at end.
func endingAt(end time.Duration) *LLMRequest {
	var s LLMStreamTimer
	s.Begin(end - 5*ms)
	s.Event(&tokenEvent, end-ms)
	s.Event(&doneEvent, end)
	return s.Finish(end, LLMOK)
}

// closedSeconds records what CloseSeconds emits, copied.
type closedSeconds struct {
	seconds        []int
	warmup, steady map[int]*LLMStats
}

func (c *closedSeconds) emit(second int, warmup, steady *LLMStats) {
	if c.warmup == nil {
		c.warmup, c.steady = map[int]*LLMStats{}, map[int]*LLMStats{}
	}
	if n := len(c.seconds); n > 0 && c.seconds[n-1] >= second {
		panic(fmt.Sprintf("second %d emitted after %d", second, c.seconds[n-1]))
	}
	c.seconds = append(c.seconds, second)
	if warmup != nil {
		c.warmup[second] = warmup.Clone()
	}
	if steady != nil {
		c.steady[second] = steady.Clone()
	}
}

func TestLLMRecorderKeepsEachSecondUntilTheTickClosesIt(t *testing.T) {
	rec := NewLLMRecorder()
	rec.KeepSeconds()
	var got closedSeconds
	rec.Record(Warmup, false, endingAt(300*ms))
	rec.Record(Steady, false, endingAt(1100*ms))
	rec.Record(Steady, false, endingAt(2500*ms)) // ended before second 1 closes: kept for second 2
	rec.CloseSeconds(1, got.emit)
	rec.Record(Steady, false, endingAt(1900*ms))        // recorded after its second closed: the earliest open one
	rec.Record(Steady, false, endingAt(30*time.Second)) // far ahead: the last open second
	rec.CloseSeconds(3, got.emit)
	rec.CloseAllSeconds(got.emit)

	if want := []int{0, 1, 2, 2 + llmOpenSeconds - 1}; !reflect.DeepEqual(got.seconds, want) {
		t.Fatalf("seconds emitted %v, want %v", got.seconds, want)
	}
	if got.warmup[0] == nil || got.warmup[0].Timed != 1 || got.steady[0] != nil {
		t.Errorf("second 0: warm-up %v, steady %v", got.warmup[0], got.steady[0])
	}
	for sec, n := range map[int]int64{1: 1, 2: 2, 2 + llmOpenSeconds - 1: 1} {
		if got.steady[sec] == nil || got.steady[sec].Timed != n || got.warmup[sec] != nil {
			t.Errorf("second %d: steady %v, want %d requests", sec, got.steady[sec], n)
		}
	}
	// Closing a second far past the open ones leaves the seconds before
	// it closed: a request that ended in one goes to the next open one.
	rec.CloseSeconds(100, got.emit)
	rec.Record(Steady, false, endingAt(50*time.Second))
	got.seconds = nil
	rec.CloseAllSeconds(got.emit)
	if !reflect.DeepEqual(got.seconds, []int{101}) {
		t.Errorf("after closing second 100, a request of second 50 is in %v, want [101]", got.seconds)
	}
}

// TestLLMRecorderSecondsAddUpToThePhases records requests out of order
// while a lagging tick closes seconds: the seconds' stats add up to the
// phases' exactly, and a recorder that does not keep seconds emits none.
func TestLLMRecorderSecondsAddUpToThePhases(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	reqs := randomRequests(rng, 2000)
	slices.SortFunc(reqs, func(a, b LLMRequest) int { return cmp.Compare(a.End, b.End) })
	// Requests reach the recorder up to 300ms out of order.
	for i := range reqs {
		j := min(i+rng.IntN(4), len(reqs)-1)
		if reqs[j].End-reqs[i].End < 300*ms {
			reqs[i], reqs[j] = reqs[j], reqs[i]
		}
	}
	rec, plain := NewLLMRecorder(), NewLLMRecorder()
	rec.KeepSeconds()
	var got, none closedSeconds
	for i := range reqs {
		phase := Phase(min(i%4, 1))
		rec.Record(phase, i%7 == 0, &reqs[i])
		plain.Record(phase, false, &reqs[i])
		if i%50 == 0 {
			// The tick closes the seconds up to one before the
			// latest end, as a tick late by up to a second would.
			tick := int(reqs[i].End/time.Second) - 1
			rec.CloseSeconds(tick, got.emit)
			plain.CloseSeconds(tick, none.emit)
		}
	}
	rec.CloseAllSeconds(got.emit)
	plain.CloseAllSeconds(none.emit)
	if len(none.seconds) != 0 {
		t.Errorf("a recorder without KeepSeconds emitted seconds %v", none.seconds)
	}
	snap := rec.Snapshot()
	for _, p := range []struct {
		name    string
		seconds map[int]*LLMStats
		want    *LLMStats
	}{{"warm-up", got.warmup, snap.Warmup}, {"steady", got.steady, snap.Steady}} {
		sum := NewLLMStats()
		for _, st := range p.seconds {
			sum.Merge(st)
		}
		sum.Good = p.want.Good
		statsEqual(t, p.name+" seconds added up", p.want, sum)
	}
	if len(got.seconds) < 5 {
		t.Errorf("%d seconds emitted", len(got.seconds))
	}
}

// TestLLMRecordingBySecondAllocatesNothing: keeping seconds, and closing
// them, allocates nothing once the first seconds' stats are reused.
func TestLLMRecordingBySecondAllocatesNothing(t *testing.T) {
	rec := NewLLMRecorder()
	rec.KeepSeconds()
	var s LLMStreamTimer
	emitted := 0
	emit := func(int, *LLMStats, *LLMStats) { emitted++ }
	at := time.Duration(0)
	stream := func() {
		s.Begin(at)
		for i := 0; i < 8; i++ {
			s.Event(&tokenEvent, at+time.Duration(i+1)*ms)
		}
		s.Event(&doneEvent, at+9*ms)
		rec.Record(Phase(int(at/time.Second)%2), false, s.Finish(at+10*ms, LLMOK))
		at += 100 * ms // ten requests a second
		rec.CloseSeconds(int(at/time.Second)-1, emit)
	}
	for range 30 {
		stream()
	}
	if a := testing.AllocsPerRun(200, stream); a != 0 {
		t.Errorf("%v allocations per recorded stream with seconds kept, want 0", a)
	}
	if emitted < 20 {
		t.Errorf("%d seconds emitted", emitted)
	}
}

// BenchmarkLLMRecord is the recorder's cost per streamed request of 64
// tokens, the phases' stats alone and with each second's kept
// (KeepSeconds, for the interval log and the series' TTFT).
func BenchmarkLLMRecord(b *testing.B) {
	for _, keep := range []bool{false, true} {
		b.Run(fmt.Sprintf("seconds=%v", keep), func(b *testing.B) {
			rec := NewLLMRecorder()
			if keep {
				rec.KeepSeconds()
			}
			var s LLMStreamTimer
			at := time.Duration(0)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.Begin(at)
				for k := 0; k < 64; k++ {
					s.Event(&tokenEvent, at+time.Duration(k+1)*ms)
				}
				s.Event(&doneEvent, at+65*ms)
				rec.Record(Steady, i%2 == 0, s.Finish(at+66*ms, LLMOK))
				at += time.Millisecond
				if i%1000 == 0 {
					rec.CloseSeconds(int(at/time.Second)-1, func(int, *LLMStats, *LLMStats) {})
				}
			}
		})
	}
}
