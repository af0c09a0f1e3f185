// Package cluster runs one benchmark from several machines: a coordinator
// that waits for its workers, measures their clocks, gives each a share of
// the load and a common start, opens the one profile window itself, and
// merges what the workers measured exactly (their HDR histograms, never
// their percentiles); and workers, which need nothing but the binary: the
// coordinator sends them the whole run, payload files included.
//
// The wire is HTTP/1.1 with JSON bodies (see protocol.go): a handful of
// messages per worker per run, readable with curl and a packet capture,
// and no generated code beside the server's own protos.
package cluster

import (
	"bytes"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
)

// RunSpec is one worker's run as the coordinator sends it: everything
// bench.Config holds that a worker cannot find on its own machine.
type RunSpec struct {
	URL              string            `json:"url,omitempty"`
	GRPC             bench.GRPCTarget  `json:"grpc"`
	Headers          []load.Header     `json:"headers,omitempty"`
	Data             Files             `json:"data"`
	MaxPayloadBytes  int64             `json:"max_payload_bytes,omitempty"`
	PayloadOffset    int               `json:"payload_offset"`
	Plan             PlanSpec          `json:"plan"`
	Timeout          time.Duration     `json:"timeout"`
	MaxResponseBytes int               `json:"max_response_bytes,omitempty"`
	TLS              TLSSpec           `json:"tls"`
	RESTEngine       load.Engine       `json:"rest_engine,omitempty"`
	V2Binary         bool              `json:"v2_binary,omitempty"`
	Settings         map[string]any    `json:"settings,omitempty"`
	Window           *WindowSpec       `json:"window,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	// SLO is --slo as written when it has LLM terms: each worker judges
	// its own streams by them one by one and counts its good requests
	// (Result.Goodput), which the coordinator adds up. Empty for none.
	SLO string `json:"slo,omitempty"`
}

// PlanSpec is the part of load.Plan that travels (no channels or
// callbacks).
type PlanSpec struct {
	Rate           float64       `json:"rate,omitempty"`
	Concurrency    int           `json:"concurrency,omitempty"`
	WarmupDuration time.Duration `json:"warmup_duration,omitempty"`
	WarmupRequests int64         `json:"warmup_requests,omitempty"`
	Duration       time.Duration `json:"duration,omitempty"`
	Requests       int64         `json:"requests,omitempty"`
	MaxInflight    int           `json:"max_inflight,omitempty"`
	Grace          time.Duration `json:"grace,omitempty"`
	SendSlack      time.Duration `json:"send_slack,omitempty"`
}

func planSpecOf(p load.Plan) PlanSpec {
	return PlanSpec{Rate: p.Rate, Concurrency: p.Concurrency, WarmupDuration: p.WarmupDuration, WarmupRequests: p.WarmupRequests,
		Duration: p.Duration, Requests: p.Requests, MaxInflight: p.MaxInflight, Grace: p.Grace, SendSlack: p.SendSlack}
}

func (p PlanSpec) plan() load.Plan {
	return load.Plan{Rate: p.Rate, Concurrency: p.Concurrency, WarmupDuration: p.WarmupDuration, WarmupRequests: p.WarmupRequests,
		Duration: p.Duration, Requests: p.Requests, MaxInflight: p.MaxInflight, Grace: p.Grace, SendSlack: p.SendSlack}
}

// WindowSpec is the profile window the coordinator opens, on the
// coordinator's clock: the worker counts the requests it sends between
// Open and Open+Length as the window's, and keeps its steady phase going
// until then.
type WindowSpec struct {
	Open   time.Time     `json:"open"`
	Length time.Duration `json:"length"`
}

// Files are the contents of an input file (or a directory of them, or
// standard input) as read on the coordinator.
type Files struct {
	Name  string `json:"name"`            // the base name it had there, for messages
	Dir   bool   `json:"dir,omitempty"`   // a directory: Files are its entries
	Stdin bool   `json:"stdin,omitempty"` // read from standard input
	Files []File `json:"files,omitempty"`
}

// File is one file's name and contents.
type File struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// TLSSpec is bench.TLSFiles with the files' contents.
type TLSSpec struct {
	Enabled            bool  `json:"enabled,omitempty"`
	CA                 *File `json:"ca,omitempty"`
	Cert               *File `json:"cert,omitempty"`
	Key                *File `json:"key,omitempty"`
	InsecureSkipVerify bool  `json:"insecure_skip_verify,omitempty"`
}

// LoadPayloads reads the payloads at path in the format of the target at
// url: OpenAI request bodies for an OpenAI-compatible route
// (/v1/completions, /v1/chat/completions), TF Serving or V2 bodies
// otherwise (and for a gRPC target, url empty), as a run from one machine
// reads them.
func LoadPayloads(url, path string, opts payloads.Options) (*payloads.Set, error) {
	if ep, ok := openAIEndpoint(url); ok {
		return payloads.LoadOpenAI(path, ep, opts)
	}
	return payloads.Load(path, opts)
}

// openAIEndpoint is the OpenAI-compatible route of a REST target's URL.
func openAIEndpoint(rawURL string) (payloads.OpenAIEndpoint, bool) {
	if rawURL == "" {
		return 0, false
	}
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return 0, false
	}
	return payloads.OpenAIEndpointOf(u.Path)
}

// ReadData reads the payload path as payloads.Load would take it: a
// file, a directory of .json and .jsonl files, or "-" (stdin).
func ReadData(path string, stdin io.Reader, limit int64) (Files, error) {
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		data, err := io.ReadAll(io.LimitReader(stdin, limit+1))
		if err != nil {
			return Files{}, fmt.Errorf("reading standard input: %w", err)
		}
		return Files{Name: "-", Stdin: true, Files: []File{{Name: "stdin", Content: data}}}, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return Files{}, setting.Errorf("bench.Config.DataPath", "bench.Config.DataPath %s: %w", path, err)
	}
	if !info.IsDir() {
		f, err := readFile("bench.Config.DataPath", path)
		return Files{Name: filepath.Base(path), Files: []File{*f}}, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return Files{}, setting.Errorf("bench.Config.DataPath", "bench.Config.DataPath %s: %w", path, err)
	}
	out := Files{Name: filepath.Base(path), Dir: true}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".json" && ext != ".jsonl") {
			continue // payloads.Load reads no others
		}
		f, err := readFile("bench.Config.DataPath", filepath.Join(path, e.Name()))
		if err != nil {
			return Files{}, err
		}
		out.Files = append(out.Files, *f)
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Name < out.Files[j].Name })
	return out, nil
}

func readFile(name, path string) (*File, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, setting.Errorf(name, "%s %s: %w", name, path, err)
	}
	return &File{Name: filepath.Base(path), Content: data}, nil
}

// materialize writes the data files under dir and returns the path to
// give payloads.Load and, for standard input, the reader.
func (f Files) materialize(dir string) (string, io.Reader, error) {
	if f.Stdin {
		if len(f.Files) != 1 {
			return "", nil, fmt.Errorf("cluster: standard input sent as %d files", len(f.Files))
		}
		return "-", bytes.NewReader(f.Files[0].Content), nil
	}
	if !f.Dir {
		if len(f.Files) != 1 {
			return "", nil, fmt.Errorf("cluster: the payload file sent as %d files", len(f.Files))
		}
		p, err := writeFile(dir, f.Files[0])
		return p, nil, err
	}
	sub := filepath.Join(dir, "data")
	if err := os.Mkdir(sub, 0o700); err != nil {
		return "", nil, err
	}
	for _, file := range f.Files {
		if _, err := writeFile(sub, file); err != nil {
			return "", nil, err
		}
	}
	return sub, nil, nil
}

// writeFile writes f under dir by its base name only: a name with a path
// in it (a coordinator that sends "../x") is refused.
func writeFile(dir string, f File) (string, error) {
	if f.Name == "" || f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." {
		return "", fmt.Errorf("cluster: file name %q is not a plain name", f.Name)
	}
	p := filepath.Join(dir, f.Name)
	return p, os.WriteFile(p, f.Content, 0o600)
}

// share is worker i's part (0-based) of total split over n: the remainder
// goes to the first workers, so that the parts add up to total.
func share(total int64, i, n int) int64 {
	part := total / int64(n)
	if int64(i) < total%int64(n) {
		part++
	}
	return part
}
