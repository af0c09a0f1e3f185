package profile

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultRequestEvents are the names of request-level events in a server's
// trace, in order of preference: the first one a trace has is used.
// TensorFlow Serving's BatchingSession marks each request with
// "BatchingSessionRun" (its "SessionRun" events are then per batch);
// without batching, each request is one "SessionRun" (TensorFlow's
// DirectSession::Run); loadprof's simulator emits "Predict".
var DefaultRequestEvents = []string{"BatchingSessionRun", "SessionRun", "Predict"}

// TaskEnvironmentPlane is the plane in which TensorFlow's profiler records
// the window's start and stop times (ns since the epoch, server clock); the
// lines of its other planes count from the start.
const (
	TaskEnvironmentPlane = "Task Environment"
	ProfileStartStat     = "profile_start_time"
	ProfileStopStat      = "profile_stop_time"
)

// Span is an interval in ns since the epoch.
type Span struct{ Start, End int64 }

// ServerTrace is what a server's trace says about its clock.
type ServerTrace struct {
	// StartNs and StopNs are the profile window on the server's clock, ns
	// since the epoch; zero when the trace does not record them.
	StartNs, StopNs int64
	// RequestEvent is the name of the request-level events found (the
	// first of the names asked for that the trace has).
	RequestEvent string
	// Requests are those events on the server's clock, ns since the epoch.
	Requests []Span
}

// Field numbers of xplane.proto read here.
const (
	tlSpacePlanes      = 1
	tlPlaneName        = 2
	tlPlaneLines       = 3
	tlPlaneEventMeta   = 4
	tlPlaneStatMeta    = 5
	tlPlaneStats       = 6
	tlLineTimestampNs  = 3
	tlLineEvents       = 4
	tlEventMetadataID  = 1
	tlEventOffsetPs    = 2
	tlEventDurationPs  = 3
	tlEventOccurrences = 5
	tlMetaID           = 1
	tlMetaName         = 2
	tlStatMetadataID   = 1
	tlStatUint64       = 3
	tlStatInt64        = 4
	tlMapKey           = 1
	tlMapValue         = 2
)

// ReadServerTrace reads the profile window and the request-level events
// (the first of names found) of XSpace files, through a small window like
// SummarizeFiles: only the request events are kept in memory.
func ReadServerTrace(files []string, names []string) (ServerTrace, error) {
	var tr ServerTrace
	found := map[string][]Span{}
	for _, name := range files {
		if err := readServerFile(name, names, &tr, found); err != nil {
			return ServerTrace{}, err
		}
	}
	for _, n := range names {
		if spans := found[n]; len(spans) > 0 {
			tr.RequestEvent, tr.Requests = n, spans
			break
		}
	}
	if tr.StartNs != 0 {
		// The lines count from the start of the profile.
		for i := range tr.Requests {
			tr.Requests[i].Start += tr.StartNs
			tr.Requests[i].End += tr.StartNs
		}
	}
	sort.Slice(tr.Requests, func(i, j int) bool { return tr.Requests[i].Start < tr.Requests[j].Start })
	return tr, nil
}

func readServerFile(name string, names []string, tr *ServerTrace, found map[string][]Span) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	end := info.Size()
	w := newWireReader(f, 0, end)
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num != tlSpacePlanes || typ != protowire.BytesType {
			w.skipField(num, typ, end)
			continue
		}
		pend := w.length(end)
		readPlaneClock(w, pend, names, tr, found)
	}
	if w.err != nil {
		return fmt.Errorf("%s: not an XSpace: %w", name, w.err)
	}
	return nil
}

// readPlaneClock reads one plane in two passes: its name and metadata
// (which follow the lines in the encoding), then the events of the
// metadata asked for.
func readPlaneClock(w *wireReader, end int64, names []string, tr *ServerTrace, found map[string][]Span) {
	start := w.pos
	var planeName string
	wanted := map[int64]string{}
	statNames := map[int64]string{}
	stats := map[int64]int64{}
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == tlPlaneName && typ == protowire.BytesType:
			planeName = w.str(end)
		case (num == tlPlaneEventMeta || num == tlPlaneStatMeta) && typ == protowire.BytesType:
			id, n := readMetadataEntry(w, w.length(end))
			if num == tlPlaneStatMeta {
				statNames[id] = n
			} else if contains(names, n) {
				wanted[id] = n
			}
		case num == tlPlaneStats && typ == protowire.BytesType:
			id, v := readIntStat(w, w.length(end))
			stats[id] = v
		default:
			w.skipField(num, typ, end)
		}
	}
	if w.err != nil {
		return
	}
	if planeName == TaskEnvironmentPlane {
		for id, v := range stats {
			switch statNames[id] {
			case ProfileStartStat:
				tr.StartNs = v
			case ProfileStopStat:
				tr.StopNs = v
			}
		}
	}
	if len(wanted) == 0 {
		return
	}
	w.seek(start, end)
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		if num != tlPlaneLines || typ != protowire.BytesType {
			w.skipField(num, typ, end)
			continue
		}
		lend := w.length(end)
		var ts int64
		type ev struct {
			name       string
			offset, ps int64
		}
		var events []ev
		for num, typ, ok := w.next(lend); ok; num, typ, ok = w.next(lend) {
			switch {
			case num == tlLineTimestampNs && typ == protowire.VarintType:
				ts = int64(w.varint())
			case num == tlLineEvents && typ == protowire.BytesType:
				eend := w.length(lend)
				var md, offset, dur int64
				aggregated := false
				for num, typ, ok := w.next(eend); ok; num, typ, ok = w.next(eend) {
					switch {
					case num == tlEventMetadataID && typ == protowire.VarintType:
						md = int64(w.varint())
					case num == tlEventOffsetPs && typ == protowire.VarintType:
						offset = int64(w.varint())
					case num == tlEventDurationPs && typ == protowire.VarintType:
						dur = int64(w.varint())
					case num == tlEventOccurrences && typ == protowire.VarintType:
						w.varint()
						aggregated = true // a count, not an event in time
					default:
						w.skipField(num, typ, eend)
					}
				}
				if n, ok := wanted[md]; ok && !aggregated {
					events = append(events, ev{n, offset, dur})
				}
			default:
				w.skipField(num, typ, lend)
			}
		}
		for _, e := range events {
			s := ts + e.offset/1000
			found[e.name] = append(found[e.name], Span{s, s + e.ps/1000})
		}
	}
}

// readMetadataEntry reads one entry of an event_metadata or stat_metadata
// map: the id and the name.
func readMetadataEntry(w *wireReader, end int64) (int64, string) {
	var id int64
	var name string
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == tlMapKey && typ == protowire.VarintType:
			id = int64(w.varint())
		case num == tlMapValue && typ == protowire.BytesType:
			vend := w.length(end)
			for num, typ, ok := w.next(vend); ok; num, typ, ok = w.next(vend) {
				if num == tlMetaName && typ == protowire.BytesType {
					name = w.str(vend)
				} else {
					w.skipField(num, typ, vend)
				}
			}
		default:
			w.skipField(num, typ, end)
		}
	}
	return id, name
}

// readIntStat reads an XStat's metadata id and its integer value.
func readIntStat(w *wireReader, end int64) (int64, int64) {
	var id, v int64
	for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
		switch {
		case num == tlStatMetadataID && typ == protowire.VarintType:
			id = int64(w.varint())
		case (num == tlStatUint64 || num == tlStatInt64) && typ == protowire.VarintType:
			v = int64(w.varint())
		default:
			w.skipField(num, typ, end)
		}
	}
	return id, v
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// ProfileCall is the client's view of the Profile call: when it was sent
// and when its answer came, on the client's clock.
type ProfileCall struct {
	Sent, Answered time.Time
	Window         time.Duration // the window asked for
}

// How the clock offset was estimated.
const (
	// OffsetFromRequests: the offset inside the Profile call's bound that
	// puts the most server request events inside client requests.
	OffsetFromRequests = "request_events"
	// OffsetFromProfileCall: the middle of the bound the Profile call's
	// timing and the server's recorded window give.
	OffsetFromProfileCall = "profile_call"
	// OffsetFromCallOnly: the server's trace is not on this machine; the
	// server's window start is taken in the middle of the time it could
	// have started, the call's timing alone.
	OffsetFromCallOnly = "profile_call_only"
)

// ClockEstimate is the offset between the server's clock and the client's
// (server minus client), and the bound it is known to lie in.
type ClockEstimate struct {
	Method   string  `json:"method"`
	OffsetMs float64 `json:"offset_ms"`
	// The offset lies in [MinMs, MaxMs]; UncertaintyMs is the distance from
	// the estimate to the further end.
	MinMs         float64 `json:"min_ms"`
	MaxMs         float64 `json:"max_ms"`
	UncertaintyMs float64 `json:"uncertainty_ms"`
	// CallMinMs..CallMaxMs is the bound from the Profile call alone.
	CallMinMs float64 `json:"call_min_ms"`
	CallMaxMs float64 `json:"call_max_ms"`
	// RequestEvent is the server event used; ServerRequests how many the
	// trace has, Inside how many lie inside a client request at the
	// estimated offset.
	RequestEvent   string `json:"request_event,omitempty"`
	ServerRequests int    `json:"server_requests"`
	Inside         int    `json:"inside"`
	// NearBest: the bound holds the offsets at which at least this many
	// of the sampled events fit inside a client request.
	NearBest int `json:"near_best,omitempty"`
	// Relative: the server's trace counts from its own zero (it records no
	// start), so the offset places that zero on the client's clock; it is
	// not a difference of clocks.
	Relative bool   `json:"relative,omitempty"`
	Note     string `json:"note,omitempty"`

	offset, lo, hi int64 // ns
}

// Offset is the estimated offset, server minus client.
func (c ClockEstimate) Offset() time.Duration { return time.Duration(c.offset) }

func nsToMs(ns int64) float64 { return float64(ns) / 1e6 }

func (c *ClockEstimate) fill() {
	c.OffsetMs, c.MinMs, c.MaxMs = nsToMs(c.offset), nsToMs(c.lo), nsToMs(c.hi)
	// The estimate need not be the bound's middle (the widest place where
	// the requests fit): the uncertainty reaches its further end.
	c.UncertaintyMs = nsToMs(max(c.offset-c.lo, c.hi-c.offset))
}

// maxEstimateEvents bounds the server events the estimate looks at: a
// sample spread over the window gives the same offset as all of them.
const maxEstimateEvents = 2000

// EstimateOffset estimates the offset between the server's clock and the
// client's from the Profile call and, when the trace has request events,
// the client's requests.
//
// The server's window lies inside the call: sent <= start-offset and
// stop-offset <= answered, so offset is in [stop-answered, start-sent]. A
// server request event [s, e] lies inside client request [a, b] when
// a+offset <= s and e <= b+offset. Of the offsets in the call's bound, the
// ones that put the most server events inside a client request form one or
// more intervals; the estimate is the middle of the widest (ties: the one
// nearest the middle of the call's bound), which is the bound reported.
func EstimateOffset(call ProfileCall, tr ServerTrace, client []ClientEvent) ClockEstimate {
	sent, answered := call.Sent.UnixNano(), call.Answered.UnixNano()
	var est ClockEstimate
	if tr.StartNs == 0 {
		if len(tr.Requests) == 0 {
			// Nothing on the server's clock: the server's time is taken as
			// the client's.
			est.Method = OffsetFromCallOnly
			est.fill()
			return est
		}
		// No recorded window: its events lie inside it.
		tr.StartNs, tr.StopNs = tr.Requests[0].Start, tr.Requests[0].End
		if tr.StartNs < relativeBefore {
			est.Relative = true
			est.Note = "the server's trace records no start time (no Task Environment plane) and counts from its own zero: the offset is its timeline's against the client's clock, not its clock's"
		}
		for _, r := range tr.Requests {
			tr.StopNs = max(tr.StopNs, r.End)
		}
	}
	stop := max(tr.StopNs, tr.StartNs)
	est.lo, est.hi = stop-answered, tr.StartNs-sent
	if est.lo > est.hi {
		// Clocks stepped during the call: no offset fits, take the middle.
		est.lo, est.hi = est.hi, est.lo
	}
	est.CallMinMs, est.CallMaxMs = nsToMs(est.lo), nsToMs(est.hi)
	est.offset = est.lo + (est.hi-est.lo)/2
	est.Method = OffsetFromProfileCall
	est.RequestEvent, est.ServerRequests = tr.RequestEvent, len(tr.Requests)
	reqs := clientSpans(client)
	if len(tr.Requests) > 0 && len(reqs) > 0 {
		refine(&est, tr.Requests, reqs)
	}
	est.Inside = countInside(tr.Requests, reqs, est.offset)
	est.fill()
	return est
}

// refine narrows est to the offsets that put the most server events inside
// client requests (reqs, as clientSpans gives them).
//
// Each (server event, client request) pair that fits somewhere in the
// bound gives an interval of offsets; the union of a server event's
// intervals counts once. The counts are kept in a difference array over
// the bound, at most maxRefineBins bins wide, so memory does not grow with
// the rate or the width of the bound; server events are sampled so that
// no more than maxRefinePairs pairs are looked at.
func refine(est *ClockEstimate, server []Span, reqs []Span) {
	var maxDur int64
	for _, r := range reqs {
		maxDur = max(maxDur, r.End-r.Start)
	}
	// Requests that can hold s at an offset in [lo, hi] start in
	// [s.End-hi-maxDur, s.Start-lo].
	candidates := func(s Span) (int, int) {
		first := sort.Search(len(reqs), func(j int) bool { return reqs[j].Start >= s.End-est.hi-maxDur })
		last := sort.Search(len(reqs), func(j int) bool { return reqs[j].Start > s.Start-est.lo })
		return first, max(first, last)
	}
	step := 1
	if len(server) > maxEstimateEvents {
		step = (len(server) + maxEstimateEvents - 1) / maxEstimateEvents
	}
	pairs := 0
	for i := 0; i < len(server); i += step {
		first, last := candidates(server[i])
		pairs += last - first
	}
	if pairs > maxRefinePairs {
		step *= (pairs + maxRefinePairs - 1) / maxRefinePairs
	}
	width := est.hi - est.lo
	bins := int64(maxRefineBins)
	if width+1 < bins {
		bins = width + 1
	}
	res := (width + bins) / bins // ns a bin; bins*res > width
	diff := make([]int32, bins+1)
	bin := func(at int64) int64 { return (at - est.lo) / res }
	var ivs []Span
	sampled := 0
	for i := 0; i < len(server); i += step {
		s := server[i]
		sampled++
		first, last := candidates(s)
		ivs = ivs[:0]
		for _, r := range reqs[first:last] {
			lo, hi := max(s.End-r.End, est.lo), min(s.Start-r.Start, est.hi)
			if lo <= hi {
				ivs = append(ivs, Span{bin(lo), bin(hi)})
			}
		}
		// The offsets at which s is inside some request: a union.
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].Start < ivs[b].Start })
		for k := 0; k < len(ivs); {
			u := ivs[k]
			for k++; k < len(ivs) && ivs[k].Start <= u.End+1; k++ {
				u.End = max(u.End, ivs[k].End)
			}
			diff[u.Start]++
			diff[u.End+1]--
		}
	}
	// Runs of bins where the most server events fit, and the hull of the
	// bins where nearly as many do.
	var best int32
	var top []Span // in bins, inclusive
	counts := make([]int32, bins)
	n := int32(0)
	for b := int64(0); b < bins; b++ {
		n += diff[b]
		counts[b] = n
		switch {
		case n == 0 || n < best:
		case n > best:
			best, top = n, []Span{{b, b}}
		case len(top) > 0 && top[len(top)-1].End == b-1:
			top[len(top)-1].End = b
		default:
			top = append(top, Span{b, b})
		}
	}
	if best == 0 {
		return
	}
	if int(best) < sampled*9/10 {
		// Most of the server's request events fit no request of this
		// client anywhere: other clients' traffic (or requests this client
		// did not keep). Their events can fit its requests at wrong offsets
		// better than its own do at the right one: no narrowing.
		est.Note = fmt.Sprintf("at best %d of %d sampled %q events fit inside this client's requests: the server had other traffic, whose events cannot place the clock", best, sampled, est.RequestEvent)
		return
	}
	// Requests that happen to fit at a wrong offset do so at isolated
	// points; at the true one they fit over an interval as wide as the
	// smallest round trip outside the handler. The widest interval wins,
	// ties toward the middle of the call's bound.
	mid := bin(est.lo + width/2)
	pick, dist := top[0], int64(math.MaxInt64)
	for _, t := range top {
		d := int64(0)
		if mid < t.Start {
			d = t.Start - mid
		} else if mid > t.End {
			d = mid - t.End
		}
		w, pw := t.End-t.Start, pick.End-pick.Start
		if w > pw || (w == pw && d < dist) {
			pick, dist = t, d
		}
	}
	// The true offset puts every sampled event inside its own request (the
	// client's window holds the requests in flight when it opened too), but
	// for a stray few: it lies where nearly the best count fits, which is
	// the bound reported. When requests overlap a lot (queueing before the
	// handler, many in flight), that is most of the call's bound, and the
	// requests do not narrow it.
	slack := max(1, best/200)
	near := Span{-1, -1}
	for b, c := range counts {
		if c >= best-slack {
			if near.Start < 0 {
				near.Start = int64(b)
			}
			near.End = int64(b)
		}
	}
	lo, hi := est.lo+near.Start*res, min(est.lo+(near.End+1)*res-1, est.hi)
	offset := est.lo + (pick.Start+pick.End+1)*res/2
	est.offset = min(max(offset, lo), hi)
	est.lo, est.hi = lo, hi
	est.NearBest = int(best - slack)
	if hi-lo < width/2 {
		est.Method = OffsetFromRequests
	} else {
		// No one place stands out: the middle of where they fit.
		est.offset = lo + (hi-lo)/2
		est.Method = OffsetFromProfileCall
		est.Note = fmt.Sprintf("the %q events did not narrow the Profile call's bound: they fit inside client requests at most offsets in it (requests overlap: queueing or many in flight)", est.RequestEvent)
	}
}

// relativeBefore: server times before 1980 are not wall-clock times but
// counted from the start of the trace.
const relativeBefore = int64(315532800) * 1e9

// maxRefineBins bounds the resolution of the refined offset: the call's
// bound is cut into at most this many bins (4 MB of counts), 1 us each
// for a bound of a second.
const maxRefineBins = 1 << 20

// maxRefinePairs bounds the (server event, client request) pairs the
// refinement looks at, so its time does not grow with the rate times the
// width of the call's bound.
const maxRefinePairs = 4 << 20

// holders calls fn with each server event (index) and the client requests
// (indexes into reqs, sorted by start) that hold it at offset, in one
// sweep: a request is dropped once it ends before the events still to
// come start, so the work is the events times the requests in flight.
func holders(server []Span, reqs []Span, offset int64, fn func(s int, held []int)) {
	order := make([]int, len(server))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return server[order[a]].Start < server[order[b]].Start })
	var active, held []int
	next := 0
	for _, i := range order {
		s := server[i]
		for next < len(reqs) && reqs[next].Start+offset <= s.Start {
			active = append(active, next)
			next++
		}
		kept := active[:0]
		held = held[:0]
		for _, j := range active {
			if reqs[j].End+offset < s.Start {
				continue // over before this event and every later one
			}
			kept = append(kept, j)
			if s.End <= reqs[j].End+offset {
				held = append(held, j)
			}
		}
		active = kept
		fn(i, held)
	}
}

// clientSpans are the client's requests in ns since the epoch, from when
// they actually left to their end, by start; order maps each back to its
// event.
func clientSpans(client []ClientEvent) []Span {
	spans, _ := clientSpansOrder(client)
	return spans
}

func clientSpansOrder(client []ClientEvent) ([]Span, []int) {
	order := make([]int, len(client))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return client[order[a]].sent().Before(client[order[b]].sent()) })
	out := make([]Span, len(client))
	for i, k := range order {
		out[i] = Span{client[k].sent().UnixNano(), client[k].End.UnixNano()}
	}
	return out, order
}

// countInside counts the server events inside some client request (reqs,
// as clientSpans gives them) at offset.
func countInside(server []Span, reqs []Span, offset int64) int {
	n := 0
	holders(server, reqs, offset, func(_ int, held []int) {
		if len(held) > 0 {
			n++
		}
	})
	return n
}

// Percentiles summarise durations, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentilesOf(ns []int64) Percentiles {
	if len(ns) == 0 {
		return Percentiles{}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(ns)))) - 1
		return nsToMs(ns[max(i, 0)])
	}
	return Percentiles{P50: at(50), P90: at(90), P99: at(99), Max: nsToMs(ns[len(ns)-1])}
}

// LatencySplit is how the latency of the client's requests that were
// matched to a server request event splits into the time inside that
// event and the time outside it (network, tunnel, queueing before the
// handler, the response's way back).
type LatencySplit struct {
	ClientRequests int `json:"client_requests"` // in the window
	ServerRequests int `json:"server_requests"` // request events in the trace
	Matched        int `json:"matched"`
	// Ambiguous counts the matched server events that more than one
	// unmatched request could hold (requests closer together than the
	// time outside the handler): they were matched first come, first
	// served, which is right for a server that starts requests in the
	// order they arrive.
	Ambiguous int         `json:"ambiguous"`
	ClientMs  Percentiles `json:"client_ms"` // latency of the matched requests
	// SendLagMs: how late they left against their schedule (open loop),
	// the client's own delay, before the network.
	SendLagMs Percentiles `json:"send_lag_ms"`
	ServerMs  Percentiles `json:"server_ms"`  // inside the server's request event
	OutsideMs Percentiles `json:"outside_ms"` // the rest once sent: network, tunnel, queueing before the handler
	// Reliable is false when the clock is known less well than half the
	// typical gap between requests: pairs may then be a few requests off.
	Reliable bool `json:"reliable"`
}

// SplitLatency matches client requests to the server request events they
// contain at offset (server minus client), one to one, and splits the
// latency of the matched requests. Server events are taken in the order
// they started, each matched to the earliest sent request that holds it
// and is not yet matched: when the server starts requests in the order
// they arrive, that is its own request however many are in flight (the
// tightest fit is not: a later request with a shorter latency often fits
// tighter).
func SplitLatency(client []ClientEvent, server []Span, offset time.Duration) LatencySplit {
	split := LatencySplit{ClientRequests: len(client), ServerRequests: len(server)}
	reqs, order := clientSpansOrder(client)
	used := make([]bool, len(reqs))
	var total, lag, inside, outside []int64
	holders(server, reqs, int64(offset), func(i int, held []int) {
		pick, free := -1, 0
		for _, j := range held {
			if !used[j] {
				if pick < 0 {
					pick = j
				}
				free++
			}
		}
		if pick < 0 {
			return
		}
		used[pick] = true
		if free > 1 {
			split.Ambiguous++
		}
		e, r, s := client[order[pick]], reqs[pick], server[i]
		total = append(total, e.End.Sub(e.Start).Nanoseconds())
		lag = append(lag, r.Start-e.Start.UnixNano())
		inside = append(inside, s.End-s.Start)
		outside = append(outside, (r.End-r.Start)-(s.End-s.Start))
	})
	split.Matched = len(total)
	split.ClientMs, split.SendLagMs = percentilesOf(total), percentilesOf(lag)
	split.ServerMs, split.OutsideMs = percentilesOf(inside), percentilesOf(outside)
	return split
}

// Where the client plane's zero was put.
const (
	// PlacedAtServerStart: the plane counts from the server's profile
	// start, recorded in its trace, through the estimated clock offset.
	PlacedAtServerStart = "server_start"
	// PlacedAtEstimatedStart: the server's trace is not on this machine;
	// the plane counts from an estimate of the server's start made from
	// the Profile call's timing alone.
	PlacedAtEstimatedStart = "estimated_start"
	// PlacedAtFirstRequest: no usable zero (the server's trace counts from
	// the epoch, or the estimate is too far off to draw without overflow):
	// the plane counts from its first request and does not line up with
	// the server's.
	PlacedAtFirstRequest = "first_request"
)

// Timeline is how loadprof's client plane was put on the server's
// timeline: the clock offset, where the plane's zero is, and how the
// client's latency splits around the server's request events.
type Timeline struct {
	Placement string         `json:"placement"`
	Clock     *ClockEstimate `json:"clock,omitempty"` // nil when the server's trace is not here
	// ZeroUncertaintyMs: the server's start is known on the client's
	// clock within plus or minus this (the clock's uncertainty, or the
	// Profile call's when the trace is not here).
	ZeroUncertaintyMs float64       `json:"zero_uncertainty_ms"`
	Split             *LatencySplit `json:"latency_split,omitempty"`
	Note              string        `json:"note,omitempty"`
	// ClientTruncated: the window held more requests than loadprof keeps
	// one by one; the plane and the split cover the first ones.
	ClientTruncated bool `json:"client_truncated,omitempty"`
	// RequestEvents are the event names looked for, in order.
	RequestEvents []string `json:"request_events,omitempty"`
	// NotDrawn counts the window's requests that were over before the
	// server's window started: the client plane leaves them out (the
	// trace viewer cannot draw negative times).
	NotDrawn int `json:"not_drawn"`

	zero time.Time
	span time.Duration // of the server's recorded window; 0 when not recorded
}

// ServerWindow is the interval the server traced, on the client's clock,
// when its trace records it and the plane was placed by it.
func (tl *Timeline) ServerWindow() (from, to time.Time, ok bool) {
	if tl.Placement != PlacedAtServerStart || tl.span <= 0 {
		return time.Time{}, time.Time{}, false
	}
	return tl.zero, tl.zero.Add(tl.span), true
}

// Align works out the clock offset from the Profile call and, when the
// server's trace is here (tr not nil), its recorded window and request
// events; it says where the client plane's zero is (the server's profile
// start on the client's clock) and splits the latency of the client's
// requests.
func Align(call ProfileCall, tr *ServerTrace, client []ClientEvent) Timeline {
	if tr == nil || (tr.StartNs == 0 && len(tr.Requests) == 0) {
		// The server starts its window after the call arrives and stops it
		// a window before it answers.
		latest := call.Answered.Add(-call.Window)
		if latest.Before(call.Sent) {
			latest = call.Sent
		}
		half := latest.Sub(call.Sent) / 2
		tl := Timeline{Placement: PlacedAtEstimatedStart, ZeroUncertaintyMs: nsToMs(int64(half)), zero: call.Sent.Add(half)}
		tl.Note = "the server's trace is not on this machine"
		if tr != nil {
			tl.Note = "the server's trace records neither its window nor request events"
		}
		return tl
	}
	est := EstimateOffset(call, *tr, client)
	var span time.Duration
	if tr.StartNs != 0 && tr.StopNs > tr.StartNs {
		span = time.Duration(tr.StopNs - tr.StartNs)
	}
	tl := Timeline{Placement: PlacedAtServerStart, Clock: &est, ZeroUncertaintyMs: est.UncertaintyMs, span: span}
	// The server's lines count from its start, or from the epoch when the
	// trace does not record a start.
	tl.zero = time.Unix(0, tr.StartNs-est.offset)
	if len(tr.Requests) > 0 {
		split := SplitLatency(client, tr.Requests, est.Offset())
		// An offset off by more than half the gap between requests pairs
		// events with their neighbours' requests.
		split.Reliable = est.hi-est.lo < medianGap(client)
		tl.Split = &split
	}
	return tl
}

// medianGap is the median time between consecutive sends, in ns.
func medianGap(client []ClientEvent) int64 {
	spans := clientSpans(client)
	if len(spans) < 2 {
		return math.MaxInt64
	}
	gaps := make([]int64, len(spans)-1)
	for i := range gaps {
		gaps[i] = spans[i+1].Start - spans[i].Start
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// ClientPlane is ClientSpace placed on tl's timeline; it updates the
// placement when the plane could not be put there.
func (tl *Timeline) ClientPlane(events []ClientEvent, host string) *tfproto.XSpace {
	space, placed := ClientSpace(events, host, tl.zero)
	drawn := 0
	for _, l := range space.GetPlanes()[0].GetLines() {
		drawn += len(l.GetEvents())
	}
	tl.NotDrawn = len(events) - drawn
	if !placed && len(events) > 0 {
		tl.Placement = PlacedAtFirstRequest
		tl.Note = "the client plane counts from its first request: at the estimated offset it would lie too far from the server's timeline to draw (picoseconds would overflow)"
	}
	return space
}
