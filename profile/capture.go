package profile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Options describe one capture. The zero value of each field has a useful
// default.
type Options struct {
	Duration          time.Duration // window length; 4s when 0
	LogDir            string        // TensorBoard logdir (local); the run goes under plugins/profile
	ServerLogDir      string        // the logdir as the server sees it, when it saves the trace itself; LogDir when empty
	HostName          string        // host_name in the request (the trace file's name); "HOST_PORT" of the address when empty
	Run               string        // run (session) name; RunName(now) when empty
	HostTracerLevel   uint32        // 0-3; 2 when 0
	DeviceTracerLevel uint32        // 0-1; 1 when 0
	PythonTracerLevel uint32
	NoDeviceTracer    bool          // DeviceTracerLevel 0
	Attempts          int           // tries while the server reports an empty trace; 3 when 0
	Slack             time.Duration // RPC deadline beyond the window, for collection; 60s when 0
	Grace             time.Duration // once ctx is cancelled, how long to wait for the trace; 2s when 0
	MaxEvents         uint64        // 1e6 when 0
	MaxFileBytes      int           // largest trace file written from a response; 1 GiB when 0
	Tools             []string      // tools asked of servers that return tool_data
}

func (o *Options) defaults(addr string) {
	if o.Duration <= 0 {
		o.Duration = 4 * time.Second
	}
	if o.HostName == "" {
		// As TensorFlow's python client names it: the address, ':' as '_'.
		o.HostName = strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(addr)
	}
	if o.Run == "" {
		o.Run = RunName(time.Now())
	}
	if o.HostTracerLevel == 0 {
		o.HostTracerLevel = 2
	}
	if o.DeviceTracerLevel == 0 && !o.NoDeviceTracer {
		o.DeviceTracerLevel = 1
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Slack <= 0 {
		o.Slack = 60 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 1 << 30
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = 1_000_000
	}
	if len(o.Tools) == 0 {
		o.Tools = []string{"trace_viewer", "tensorflow_stats", "overview_page"}
	}
	if o.ServerLogDir == "" {
		o.ServerLogDir = o.LogDir
	}
}

// Where a trace ended up.
const (
	SavedLocal  = "local"  // loadprof wrote it under LogDir on this machine
	SavedServer = "server" // the server saved it on its own disk
	SavedNone   = "none"   // nothing was captured
)

// Result says what a capture produced and where it is.
type Result struct {
	Address    string    `json:"address"`
	Run        string    `json:"run"`
	SessionID  string    `json:"session_id"`
	LogDir     string    `json:"logdir"`
	Saved      string    `json:"saved"` // SavedLocal, SavedServer or SavedNone
	Files      []string  `json:"files,omitempty"`
	ServerPath string    `json:"server_path,omitempty"`
	EmptyTrace bool      `json:"empty_trace"`
	Attempts   int       `json:"attempts"`
	Terminated bool      `json:"terminated,omitempty"`  // ended early on request
	NotWritten []string  `json:"not_written,omitempty"` // trace files captured but not written (see the error)
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`

	// Space is the server's trace when it came back in the response.
	Space *tfproto.XSpace `json:"-"`
}

// Error is a capture that failed, with what the user can do about it.
type Error struct {
	Addr string
	Msg  string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("profile %s: %s", e.Addr, e.Msg) }
func (e *Error) Unwrap() error { return e.Err }

// Capture opens a profile window of opts.Duration on the ProfilerService at
// addr over conn and stores what comes back. Cancelling ctx ends the
// window early through Terminate, so the data collected so far is kept.
func Capture(ctx context.Context, conn *grpc.ClientConn, addr string, opts Options) (*Result, error) {
	opts.defaults(addr)
	// A unique run: a capture never lands in another's. When the logdir
	// cannot take it, the capture goes on (the server may save the trace
	// itself, and the summary needs no file); the write says what failed.
	reserved := false
	if name, err := ReserveRun(opts.LogDir, opts.Run); err == nil {
		opts.Run, reserved = name, true
	}
	res := &Result{Address: addr, Run: opts.Run, SessionID: opts.Run, LogDir: opts.LogDir, Saved: SavedNone, Started: time.Now()}
	client := tfproto.NewProfilerServiceClient(conn)
	req := &tfproto.ProfileRequest{
		DurationMs:     uint64(opts.Duration / time.Millisecond),
		MaxEvents:      opts.MaxEvents,
		Tools:          opts.Tools,
		RepositoryRoot: path.Join(filepath.ToSlash(opts.ServerLogDir), "plugins", "profile"),
		SessionId:      opts.Run,
		HostName:       opts.HostName,
		EmitXspace:     true,
		Opts: &tfproto.ProfileOptions{
			Version:           1,
			HostTracerLevel:   opts.HostTracerLevel,
			DeviceTracerLevel: opts.DeviceTracerLevel,
			PythonTracerLevel: opts.PythonTracerLevel,
			DurationMs:        uint64(opts.Duration / time.Millisecond), // the server times the window by this one
			SessionId:         opts.Run,
		},
	}
	var resp *tfproto.ProfileResponse
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		res.Attempts = attempt
		var err error
		resp, err = profileOnce(ctx, client, req, opts, res)
		if err != nil {
			res.Finished = time.Now()
			if reserved {
				os.Remove(Store{LogDir: opts.LogDir, Run: opts.Run}.Dir())
			}
			return res, describe(addr, err, opts)
		}
		if !resp.GetEmptyTrace() || ctx.Err() != nil {
			break
		}
	}
	res.Finished = time.Now()
	res.EmptyTrace = resp.GetEmptyTrace()
	err := store(res, resp, req, opts)
	if reserved && res.Saved == SavedNone {
		os.Remove(Store{LogDir: opts.LogDir, Run: opts.Run}.Dir()) // only when empty: no run without a trace
	}
	return res, err
}

// profileOnce makes one Profile call. When ctx is cancelled during the
// window, it asks the server to end the session (Terminate) and still
// waits for the response, as the data would be lost otherwise, but only
// for opts.Grace: a server that takes the Terminate and never returns the
// trace must not hold an interrupted run for the rest of the window and
// the collection time.
func profileOnce(ctx context.Context, client tfproto.ProfilerServiceClient, req *tfproto.ProfileRequest, opts Options, res *Result) (*tfproto.ProfileResponse, error) {
	callCtx, cancel := context.WithTimeout(context.Background(), opts.Duration+opts.Slack)
	defer cancel()
	done := make(chan struct{})
	terminated := make(chan bool, 1)
	go func() {
		select {
		case <-done:
			terminated <- false
		case <-ctx.Done():
			select {
			case <-done: // the window had already ended
				terminated <- false
				return
			default:
			}
			time.AfterFunc(opts.Grace, cancel) // the call ends as Canceled: "interrupted"
			tctx, tcancel := context.WithTimeout(context.Background(), opts.Grace)
			defer tcancel()
			_, err := client.Terminate(tctx, &tfproto.TerminateRequest{SessionId: req.GetSessionId()})
			if err != nil {
				cancel() // the server cannot end it early: give up on this window
			}
			terminated <- err == nil
		}
	}()
	resp, err := client.Profile(callCtx, req, grpc.MaxCallRecvMsgSize(1<<30))
	close(done)
	if <-terminated {
		res.Terminated = true
	}
	return resp, err
}

func describe(addr string, err error, opts Options) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unimplemented:
		return &Error{Addr: addr, Err: err, Msg: "the server has no ProfilerService (TF Serving: it is on the gRPC port, 8500, unless --enable_profiler=false)"}
	case codes.Unavailable:
		return &Error{Addr: addr, Err: err, Msg: "unreachable: " + st.Message()}
	case codes.DeadlineExceeded:
		return &Error{Addr: addr, Err: err, Msg: fmt.Sprintf("no answer within the %s window plus %s for collection (raise --profile-timeout)", opts.Duration, opts.Slack)}
	case codes.Canceled:
		return &Error{Addr: addr, Err: err, Msg: "interrupted before the server returned the trace"}
	case codes.Internal:
		if strings.Contains(st.Message(), "unmarshal") {
			return &Error{Addr: addr, Err: err, Msg: "the server's answer is not a ProfileResponse (truncated or garbage): " + st.Message()}
		}
	}
	return &Error{Addr: addr, Err: err, Msg: fmt.Sprintf("%s: %s", st.Code(), st.Message())}
}

// store writes the trace the way the response carries it and fills in
// where it is.
func store(res *Result, resp *tfproto.ProfileResponse, req *tfproto.ProfileRequest, opts Options) error {
	st := Store{LogDir: opts.LogDir, Run: opts.Run}
	if resp.GetEmptyTrace() {
		return nil // nothing worth a file: the result says the trace was empty
	}
	switch {
	case resp.GetXspace() != nil && len(resp.GetXspace().GetPlanes()) > 0:
		res.Space = resp.GetXspace()
		data, err := proto.Marshal(res.Space)
		if err != nil {
			return &Error{Addr: res.Address, Msg: err.Error(), Err: err}
		}
		p, err := st.Write(opts.HostName+".xplane.pb", data)
		if err != nil {
			res.NotWritten = append(res.NotWritten, filepath.Join(st.Dir(), opts.HostName+".xplane.pb"))
			return &Error{Addr: res.Address, Msg: "the trace was captured but could not be written: " + err.Error(), Err: err}
		}
		res.Saved, res.Files = SavedLocal, append(res.Files, p)
	case len(resp.GetToolData()) > 0:
		var errs []error
		for _, td := range resp.GetToolData() {
			if len(td.GetData()) > opts.MaxFileBytes {
				errs = append(errs, fmt.Errorf("refusing tool_data %q of %d bytes (over %d)", td.GetName(), len(td.GetData()), opts.MaxFileBytes))
				continue
			}
			p, err := st.Write(td.GetName(), td.GetData())
			if err != nil {
				errs = append(errs, err)
				if SafeName(td.GetName()) == nil && !errors.Is(err, ErrExists) {
					res.NotWritten = append(res.NotWritten, filepath.Join(st.Dir(), td.GetName()))
				}
				continue
			}
			res.Files = append(res.Files, p)
			if res.Space == nil && filepath.Ext(td.GetName()) == ".pb" {
				var space tfproto.XSpace
				if proto.Unmarshal(td.GetData(), &space) == nil && len(space.GetPlanes()) > 0 {
					res.Space = &space
				}
			}
		}
		if len(res.Files) > 0 {
			res.Saved = SavedLocal
		}
		if err := errors.Join(errs...); err != nil {
			msg := err.Error()
			if len(res.NotWritten) > 0 {
				msg = "the trace was captured but not all of it could be written: " + msg
			}
			return &Error{Addr: res.Address, Msg: msg, Err: err}
		}
	default:
		// An older server saved the trace on its own disk.
		res.ServerPath = path.Join(req.GetRepositoryRoot(), req.GetSessionId(), req.GetHostName()+".xplane.pb")
		res.Saved = SavedServer
		local := filepath.Join(st.Dir(), req.GetHostName()+".xplane.pb")
		if opts.ServerLogDir == opts.LogDir {
			if _, err := os.Stat(local); err == nil {
				res.Saved, res.Files = SavedLocal, []string{local} // the server shares this disk
			}
		}
	}
	return nil
}
