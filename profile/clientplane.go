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
	End    time.Time
	Status string // "ok", "http_503", "grpc_UNAVAILABLE", "timeout", ...
}

// ClientSpace returns an XSpace with loadprof's client plane: one event per
// request, spread over lines so that no two events on a line overlap (the
// trace viewer draws a line as one row). Written as its own host file in
// the run, it is a host of its own in TensorBoard's host selector. Put beside the server's trace, it
// shows client latency against the server's ops on one time axis.
func ClientSpace(events []ClientEvent, host string) *tfproto.XSpace {
	sort.Slice(events, func(i, j int) bool { return events[i].Start.Before(events[j].Start) })
	plane := &tfproto.XPlane{
		Id: 1, Name: "/host:CPU",
		EventMetadata: map[int64]*tfproto.XEventMetadata{},
		StatMetadata:  map[int64]*tfproto.XStatMetadata{1: {Id: 1, Name: "status"}},
	}
	statusIDs := map[string]int64{}
	var lanes Lanes
	var base time.Time
	if len(events) > 0 {
		base = events[0].Start
	}
	for _, e := range events {
		id, ok := statusIDs[e.Status]
		if !ok {
			id = int64(len(statusIDs) + 1)
			statusIDs[e.Status] = id
			plane.EventMetadata[id] = &tfproto.XEventMetadata{Id: id, Name: "request " + e.Status}
		}
		slot, added := lanes.Place(e.Start, e.End)
		if added {
			plane.Lines = append(plane.Lines, &tfproto.XLine{
				Id: int64(slot + 1), Name: ClientLinePrefix + strconv.Itoa(slot+1),
				TimestampNs: base.UnixNano(),
			})
		}
		line := plane.Lines[slot]
		line.Events = append(line.Events, &tfproto.XEvent{
			MetadataId: id,
			Data:       &tfproto.XEvent_OffsetPs{OffsetPs: e.Start.Sub(base).Nanoseconds() * 1000},
			DurationPs: e.End.Sub(e.Start).Nanoseconds() * 1000,
			Stats:      []*tfproto.XStat{{MetadataId: 1, Value: &tfproto.XStat_StrValue{StrValue: e.Status}}},
		})
	}
	for _, l := range plane.Lines {
		if n := len(l.Events); n > 0 {
			last := l.Events[n-1]
			l.DurationPs = last.GetOffsetPs() + last.GetDurationPs()
		}
	}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{plane}, Hostnames: []string{host}}
}
