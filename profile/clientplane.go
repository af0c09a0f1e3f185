package profile

import (
	"sort"
	"strconv"
	"time"

	"github.com/loadprof/loadprof/tfproto"
)

// ClientEvent is one request as the load generator saw it.
type ClientEvent struct {
	Start  time.Time // intended (open loop) or actual (closed loop) send time
	Sent   time.Time // when it actually left (Start plus the send lag); Start when zero
	End    time.Time
	Status string // "ok", "http_503", "grpc_UNAVAILABLE", "timeout", ...
}

// maxPlacedNs is the furthest from its zero a client event may end: xprof
// turns ns into int64 picoseconds, which hold about 106 days; a placement
// further out than a day means a wrong zero.
const maxPlacedNs = int64(24 * time.Hour)

// ClientSpace returns an XSpace with loadprof's client plane: one event per
// request, spread over lines so that no two events on a line overlap (the
// trace viewer draws a line as one row). Written as its own host file in
// the run, it is a host of its own in TensorBoard's host selector.
//
// Its lines count from zero, the instant (on the client's clock) at which
// the server's profile started: TensorFlow's profiler counts the server's
// lines from there, and xprof draws every host on one axis, so client
// requests and the server's ops line up. The trace viewer drops events at
// negative times (and the other hosts' with them), so a request that began
// before zero is drawn from zero, its full latency in its "latency_ms"
// stat. ClientSpace reports whether it placed the plane at zero: when zero
// is unset, or so far from the requests that picoseconds would overflow,
// the lines count from the first request instead.
func ClientSpace(events []ClientEvent, host string, zero time.Time) (*tfproto.XSpace, bool) {
	sort.Slice(events, func(i, j int) bool { return events[i].Start.Before(events[j].Start) })
	placed := !zero.IsZero()
	for _, e := range events {
		if !placed {
			break
		}
		if e.End.Sub(zero) > time.Duration(maxPlacedNs) || e.Start.Sub(zero) < -time.Duration(maxPlacedNs) {
			placed = false
		}
	}
	if !placed && len(events) > 0 {
		zero = events[0].Start
	}
	plane := &tfproto.XPlane{
		Id: 1, Name: "/host:CPU",
		EventMetadata: map[int64]*tfproto.XEventMetadata{},
		StatMetadata: map[int64]*tfproto.XStatMetadata{
			1: {Id: 1, Name: "status"},
			2: {Id: 2, Name: "latency_ms"},
			3: {Id: 3, Name: "send_lag_ms"},
		},
	}
	statusIDs := map[string]int64{}
	var lanes Lanes
	for _, e := range events {
		if e.End.Before(zero) || e.End.Sub(zero) > time.Duration(maxPlacedNs) {
			continue // nothing of it to draw, or too far to draw without overflow
		}
		id, ok := statusIDs[e.Status]
		if !ok {
			id = int64(len(statusIDs) + 1)
			statusIDs[e.Status] = id
			plane.EventMetadata[id] = &tfproto.XEventMetadata{Id: id, Name: "request " + e.Status}
		}
		from := e.Start
		if from.Before(zero) {
			from = zero
		}
		slot, added := lanes.Place(from, e.End)
		if added {
			plane.Lines = append(plane.Lines, &tfproto.XLine{
				Id: int64(slot + 1), Name: ClientLinePrefix + strconv.Itoa(slot+1),
			})
		}
		line := plane.Lines[slot]
		line.Events = append(line.Events, &tfproto.XEvent{
			MetadataId: id,
			Data:       &tfproto.XEvent_OffsetPs{OffsetPs: from.Sub(zero).Nanoseconds() * 1000},
			DurationPs: e.End.Sub(from).Nanoseconds() * 1000,
			Stats: []*tfproto.XStat{
				{MetadataId: 1, Value: &tfproto.XStat_StrValue{StrValue: e.Status}},
				{MetadataId: 2, Value: &tfproto.XStat_DoubleValue{DoubleValue: float64(e.End.Sub(e.Start).Nanoseconds()) / 1e6}},
				{MetadataId: 3, Value: &tfproto.XStat_DoubleValue{DoubleValue: float64(e.sent().Sub(e.Start).Nanoseconds()) / 1e6}},
			},
		})
	}
	for _, l := range plane.Lines {
		if n := len(l.Events); n > 0 {
			last := l.Events[n-1]
			l.DurationPs = last.GetOffsetPs() + last.GetDurationPs()
		}
	}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{plane}, Hostnames: []string{host}}, placed
}

// sent is when the request left: a request cannot reach the server before
// that, and the send lag before it is the client's, not the network's.
func (e ClientEvent) sent() time.Time {
	if e.Sent.Before(e.Start) {
		return e.Start
	}
	return e.Sent
}
