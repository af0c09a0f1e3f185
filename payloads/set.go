// Package payloads reads the request bodies a run sends: TF Serving JSON
// predict bodies from a file, a directory of files, a .jsonl file (one body
// per line) or stdin, validated before any load starts.
package payloads

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/loadprof/loadprof/internal/setting"
)

// DefaultMaxBytes bounds one payload file (and stdin). A predict body larger
// than this is almost always a mistake, and reading it whole would cost its
// size in memory for every copy the transports keep.
const DefaultMaxBytes = 64 << 20

// Payload is one request body and where it came from.
type Payload struct {
	Source  string // "data.json", "bodies.jsonl:3" or "-" for stdin
	Body    []byte // the bytes sent over REST to TF Serving, exactly as read
	Request *Request
	// V2 is set instead of Request for a native V2 (Open Inference
	// Protocol) infer body, which only a V2 target takes.
	V2 *V2Request
	// OpenAI is set instead for an OpenAI-compatible body (LoadOpenAI).
	OpenAI *OpenAIRequest
}

// Set is the ordered list of payloads a run sends round-robin.
type Set struct {
	Payloads []Payload
	next     atomic.Uint64
}

// Next returns the index of the next payload in round-robin order. It is
// safe for concurrent use and does not allocate.
func (s *Set) Next() int {
	n := s.next.Add(1) - 1
	return int(n % uint64(len(s.Payloads)))
}

// Len is the number of payloads.
func (s *Set) Len() int { return len(s.Payloads) }

// Error is a payload that cannot be used: which file, where in it, and what
// is wrong.
type Error struct {
	Source string // file name, "bodies.jsonl" or "-"
	Line   int    // 1-based line in the file, 0 when not known
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("payloads: ")
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Options tune Load. The zero value is ready to use.
type Options struct {
	MaxBytes int64     // per file; DefaultMaxBytes when 0
	Stdin    io.Reader // read for path "-"; os.Stdin when nil
}

// Load reads payloads from path: a JSON file with one body, a .jsonl file
// with one body per line, a directory of such files (taken in name order), or
// "-" for stdin (one body, or JSON lines). Every body is validated as a TF
// Serving predict request, or as a native V2 infer request when its
// "inputs" is a list of tensor objects.
func Load(path string, opts Options) (*Set, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	set := &Set{}
	if path == "" {
		return nil, setting.Errorf("payloads.Load.path", "payloads.Load.path: no payload file given")
	}
	if path == "-" {
		in := opts.Stdin
		if in == nil {
			in = os.Stdin
		}
		data, err := readLimited(in, "-", opts.MaxBytes)
		if err != nil {
			return nil, err
		}
		if err := set.addStdin(data); err != nil {
			return nil, err
		}
		return set, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Source: path, Msg: describeOSError(err), Err: err}
	}
	if info.IsDir() {
		if err := set.addDir(path, opts); err != nil {
			return nil, err
		}
		return set, nil
	}
	if err := set.addFile(path, opts); err != nil {
		return nil, err
	}
	return set, nil
}

func describeOSError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file or directory"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

func (s *Set) addDir(dir string, opts Options) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &Error{Source: dir, Msg: describeOSError(err), Err: err}
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".json" || ext == ".jsonl") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return &Error{Source: dir, Msg: "directory has no .json or .jsonl files"}
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.addFile(filepath.Join(dir, name), opts); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) addFile(path string, opts Options) error {
	f, err := os.Open(path)
	if err != nil {
		return &Error{Source: path, Msg: describeOSError(err), Err: err}
	}
	defer f.Close()
	data, err := readLimited(f, path, opts.MaxBytes)
	if err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(path), ".jsonl") {
		return s.addLines(path, data)
	}
	return s.addOne(path, path, data, 0)
}

func readLimited(r io.Reader, source string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &Error{Source: source, Msg: "read failed: " + err.Error(), Err: err}
	}
	if int64(len(data)) > limit {
		return nil, &Error{Source: source, Msg: fmt.Sprintf("larger than the %d-byte limit for one payload file (payloads.Options.MaxBytes)", limit)}
	}
	// Editors on Windows start UTF-8 files with a byte order mark; JSON
	// has no use for it and servers reject it, so it is not sent.
	return bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), nil
}

// addStdin takes one JSON body, or JSON lines when the input holds more
// than one value.
func (s *Set) addStdin(data []byte) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return &Error{Source: "-", Msg: "stdin is empty"}
	}
	if _, err := ParseJSON(trimmed); err == nil || bytes.Count(trimmed, []byte("\n")) == 0 {
		return s.addOne("-", "-", trimmed, 0)
	}
	return s.addLines("-", data)
}

func (s *Set) addLines(source string, data []byte) error {
	before := len(s.Payloads)
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := s.addOne(fmt.Sprintf("%s:%d", source, i+1), source, line, i); err != nil {
			return err
		}
	}
	if len(s.Payloads) == before {
		return &Error{Source: source, Msg: "no JSON lines in the file"}
	}
	return nil
}

// addOne validates one body. lineOffset is the 0-based line of the body in
// its file, so that errors name the line in the file, not in the body.
func (s *Set) addOne(name, file string, body []byte, lineOffset int) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return &Error{Source: file, Msg: "file is empty"}
	}
	req, v2, err := parseAnyBody(trimmed)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			line := se.Line + lineOffset + leadingLines(body)
			return &Error{Source: file, Line: line, Msg: se.Msg, Err: err}
		}
		return &Error{Source: file, Msg: err.Error(), Err: err}
	}
	s.Payloads = append(s.Payloads, Payload{Source: name, Body: trimmed, Request: req, V2: v2})
	return nil
}

// leadingLines counts the newlines TrimSpace removed from the start of body.
func leadingLines(body []byte) int {
	n := 0
	for _, c := range body {
		switch c {
		case '\n':
			n++
		case ' ', '\t', '\r':
		default:
			return n
		}
	}
	return n
}
