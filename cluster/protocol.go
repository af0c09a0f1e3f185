package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/report"
)

// The protocol: every call is a POST from the worker to the coordinator
// with a JSON body and the shared token as a bearer credential.
//
//	/v1/clock      {}                  -> {"now_ns"}         several times at join: the clock offset
//	/v1/join       joinRequest         -> joinReply          held until every worker has joined (bounded)
//	/v1/ready      readyRequest        -> readyReply         after the worker's preflight: held until every worker is ready (bounded); the common start
//	/v1/heartbeat  heartbeat           -> heartbeatReply     every HeartbeatEvery while it runs; says stop
//	/v1/result     resultReport        -> {}                 once a round, at its end
//	/v1/next       nextRequest         -> nextReply          after the result: the next round (a sweep's step), or done
//
// An error is a non-2xx status with {"error": "..."}.
const (
	pathClock     = "/v1/clock"
	pathJoin      = "/v1/join"
	pathReady     = "/v1/ready"
	pathHeartbeat = "/v1/heartbeat"
	pathResult    = "/v1/result"
	pathNext      = "/v1/next"
)

// ProtocolVersion changes when a message changes meaning: a worker of
// another version is refused at join. 2: the run spec carries the LLM
// objective (slo), which a worker of version 1 would drop without a word
// (its goodput missing from the merge), and an interval carries its log
// tag (tag) instead of a warm-up flag (w), so that a version 1
// coordinator would take a worker's TTFT seconds for latencies. 3: the
// common start comes in the reply to /v1/ready, once every worker has
// made its preflight call (an LLM's whole answer may take seconds),
// not in the join reply.
const ProtocolVersion = 3

// TokenEnv is the environment variable that holds the shared token when
// no flag gives it.
const TokenEnv = "LOADPROF_TOKEN"

type clockReply struct {
	NowNs int64 `json:"now_ns"` // the coordinator's wall clock, Unix ns
}

type joinRequest struct {
	Protocol int    `json:"protocol"`
	Name     string `json:"name"`
	Tool     string `json:"tool"`
	// OffsetNs is the worker's clock minus the coordinator's;
	// UncertaintyNs half the round trip it was measured over.
	OffsetNs      int64 `json:"offset_ns"`
	UncertaintyNs int64 `json:"uncertainty_ns"`
}

type joinReply struct {
	Round  int `json:"round"`  // 1-based: a sweep's steps are rounds
	Worker int `json:"worker"` // 1-based, the order of joining
	Of     int `json:"of"`
	// Spec is the worker's share. Its window, if any, has the length
	// only: when it opens comes with the common start (readyReply).
	Spec RunSpec `json:"spec"`
	// HeartbeatEvery is how often the worker reports; the coordinator
	// counts a worker silent for LostAfter as lost, and a worker that
	// cannot reach the coordinator for as long stops.
	HeartbeatEvery time.Duration `json:"heartbeat_every"`
	LostAfter      time.Duration `json:"lost_after"`
}

// readyRequest says that the worker has made its checks and preflight
// call for Round and waits for the common start.
type readyRequest struct {
	Round  int `json:"round"`
	Worker int `json:"worker"`
}

// readyReply is the common start, once every worker is ready (or the
// coordinator stopped waiting for the others); a zero StartAt says "not
// yet, ask again" (the call is held for nextRoundWait at most).
type readyReply struct {
	StartAt    time.Time `json:"start_at,omitzero"`    // the coordinator's clock
	WindowOpen time.Time `json:"window_open,omitzero"` // the profile window's opening, when the round has one
}

type heartbeat struct {
	Round    int    `json:"round"`
	Worker   int    `json:"worker"`
	Phase    string `json:"phase"` // waiting, warmup, steady, done
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
	secondsBatch
}

// secondsBatch carries a worker's finished seconds: the intervals of its
// own interval log (one histogram per phase and second), sent as they
// come with the heartbeats and the rest with the result, so that the
// coordinator can write one merged interval log (--hlog) and keep what a
// worker lost mid-run had measured. From is the index of the first one
// in the worker's sequence: a batch whose answer was lost is sent again
// and counted once.
type secondsBatch struct {
	OriginNs int64          `json:"origin_ns,omitempty"` // second 0's start, on the worker's clock (Unix ns); 0 until known
	From     int            `json:"seconds_from,omitempty"`
	Seconds  []wireInterval `json:"seconds,omitempty"`
}

// wireInterval is one interval of a worker's log.
type wireInterval struct {
	Second int `json:"t"`
	// Tag is the interval's tag in the log, as written: "" for the
	// steady phase's latencies, "warmup" for the warm-up's, and an
	// OpenAI-compatible target's stream figures under their own
	// (seconds.go).
	Tag       string `json:"tag,omitempty"`
	Histogram string `json:"h"` // V2 compressed, base64
}

// maxSecondsPerBeat bounds a heartbeat's intervals (two a second for the
// latencies, eight more for an LLM target's stream figures): a worker
// that could not reach the coordinator for a while catches up over a few
// beats.
const maxSecondsPerBeat = 64

type heartbeatReply struct {
	Stop bool `json:"stop"` // the coordinator was interrupted: stop and send what you have
	// SecondsHave is how many of the worker's intervals the coordinator
	// holds: the worker need not send them again.
	SecondsHave int `json:"seconds_have"`
	// WindowEndNs, with Stop, is when the profile window really closed
	// (the coordinator's clock, Unix ns): the interrupt, before its
	// planned end. Requests sent after it are outside the window.
	WindowEndNs int64 `json:"window_end_ns,omitempty"`
}

type resultReport struct {
	Round  int            `json:"round"`
	Worker int            `json:"worker"`
	Result *report.Result `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
	// Events are the requests the worker sent in the profile window, on
	// its own clock, for the trace's client plane.
	Events    []clientEvent `json:"events,omitempty"`
	Truncated bool          `json:"truncated,omitempty"`
	// BeganNs is when the worker's load began (Unix ns, its own clock):
	// the common start, or later when the reply that gave it came after
	// it or its preflight call ended after it. 0 when it did not begin.
	BeganNs int64 `json:"began_ns,omitempty"`
	// The intervals the coordinator does not hold yet.
	secondsBatch
}

// clientEvent is profile.ClientEvent in Unix ns, compact on the wire.
type clientEvent struct {
	Start  int64  `json:"s"`
	Sent   int64  `json:"t,omitempty"`
	End    int64  `json:"e"`
	Status string `json:"c"`
}

func eventsToWire(events []profile.ClientEvent) []clientEvent {
	out := make([]clientEvent, len(events))
	for i, e := range events {
		out[i] = clientEvent{Start: e.Start.UnixNano(), End: e.End.UnixNano(), Status: e.Status}
		if !e.Sent.IsZero() {
			out[i].Sent = e.Sent.UnixNano()
		}
	}
	return out
}

// eventsFromWire returns the events moved by shift (onto the
// coordinator's clock).
func eventsFromWire(events []clientEvent, shift time.Duration) []profile.ClientEvent {
	out := make([]profile.ClientEvent, len(events))
	for i, e := range events {
		out[i] = profile.ClientEvent{Start: time.Unix(0, e.Start).Add(shift), End: time.Unix(0, e.End).Add(shift), Status: e.Status}
		if e.Sent != 0 {
			out[i].Sent = time.Unix(0, e.Sent).Add(shift)
		}
	}
	return out
}

type nextRequest struct {
	Worker int `json:"worker"`
	After  int `json:"after"` // the round whose result it sent
}

// nextReply is the next round's share, done (no round follows), or
// neither: ask again.
type nextReply struct {
	Next *joinReply `json:"next,omitempty"`
	Done bool       `json:"done,omitempty"`
}

type errorReply struct {
	Error string `json:"error"`
}

// maxMessage bounds a message read by either side: a result with its
// histograms and the window's events (200,000 at most) fits many times.
const maxMessage = 256 << 20

// maxHeartbeat bounds a heartbeat: maxSecondsPerBeat histograms of a
// second each (a V2 histogram of one second's latencies stays well under
// 64 KiB even spread over the whole range) and a few counts.
const maxHeartbeat = maxSecondsPerBeat*(64<<10) + 64<<10

// maxSmallMessage bounds a join and a call for the next round: a name,
// a few numbers.
const maxSmallMessage = 64 << 10

// guarded serves h only to a call made with method and the bearer token
// want: every endpoint of the coordinator and of ServeResults goes
// through it, so none can forget a check. refused, when not nil, hears of
// each call turned away for its token.
func guarded(method, want string, refused func(*http.Request), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			writeError(w, http.StatusMethodNotAllowed, "%s only", method)
			return
		}
		if !tokenOK(r, want) {
			if refused != nil {
				refused(r)
			}
			writeError(w, http.StatusUnauthorized, "wrong or missing token (--token or %s)", TokenEnv)
			return
		}
		h(w, r)
	}
}

// tokenOK compares the presented bearer token with want in constant
// time, so that the time a refusal takes says nothing of the token.
func tokenOK(r *http.Request, want string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorReply{Error: fmt.Sprintf(format, args...)})
}

// StatusError is a call the coordinator answered with an error.
type StatusError struct {
	Path   string
	Status int
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("coordinator refused %s (%d): %s", e.Path, e.Status, e.Msg)
}

// UnreachableError is a coordinator that could not be reached (not up
// within the join timeout, or gone mid-run).
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// client is the worker's side of the protocol.
type client struct {
	base  string // http://host:port
	token string
	http  *http.Client
}

// call posts in to path and decodes the answer into out. timeout bounds
// the whole call.
func (c *client) call(ctx context.Context, path string, in, out any, timeout time.Duration) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e errorReply
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &StatusError{Path: path, Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// refused reports whether err is the coordinator saying no (as opposed to
// not being reachable): there is no point in trying again.
func refused(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status != http.StatusServiceUnavailable && se.Status != http.StatusBadGateway
}

// baseURL turns ADDR (host:port, or a URL) into the coordinator's base URL.
func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}
