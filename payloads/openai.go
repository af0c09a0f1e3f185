package payloads

// OpenAI-compatible request bodies (POST /v1/completions and
// /v1/chat/completions, as vLLM, SGLang, TGI and Triton's OpenAI frontend
// serve them): read from a JSON file, a .jsonl file of many or a
// directory, and validated before any load starts, with errors that name
// the file and the line.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loadprof/loadprof/internal/setting"
)

// OpenAIEndpoint is the OpenAI-compatible route a body is for.
type OpenAIEndpoint uint8

// The OpenAI-compatible routes.
const (
	Completions     OpenAIEndpoint = iota + 1 // POST /v1/completions: a "prompt"
	ChatCompletions                           // POST /v1/chat/completions: "messages"
)

func (e OpenAIEndpoint) String() string {
	switch e {
	case Completions:
		return "/v1/completions"
	case ChatCompletions:
		return "/v1/chat/completions"
	}
	return "unknown OpenAI endpoint"
}

// OpenAIEndpointOf recognises an OpenAI-compatible route from a URL path:
// one ending in /v1/completions or /v1/chat/completions (a prefix before
// /v1 is allowed, for servers mounted under a path).
func OpenAIEndpointOf(path string) (OpenAIEndpoint, bool) {
	path = strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(path, "/v1/chat/completions"):
		return ChatCompletions, true
	case strings.HasSuffix(path, "/v1/completions"):
		return Completions, true
	}
	return 0, false
}

// OpenAIRequest is what a load generator and a simulator need to know of
// an OpenAI-compatible request body.
type OpenAIRequest struct {
	Endpoint     OpenAIEndpoint
	Model        string
	Stream       bool // "stream": true asks for Server-Sent Events
	IncludeUsage bool // "stream_options": {"include_usage": true}: a final usage chunk
	// MaxTokens caps the output: max_tokens, or on chat
	// max_completion_tokens, which takes precedence as vLLM does; 0 when
	// the body sets neither.
	MaxTokens int
	N         int // choices asked for ("n"); 1 when absent
	// PromptTexts are the prompt's texts (completions) or the text
	// contents of the messages (chat), in order.
	PromptTexts []string
	// PromptTokenIDs counts the token ids a completions prompt gives
	// instead of text.
	PromptTokenIDs int
	// Prompts counts the prompts of a completions body: more than one for
	// a batch (a list of strings, or a list of token-id lists); 1 on chat.
	Prompts int
}

// PromptWords counts the whitespace-separated words of the prompt's texts,
// the basis of a prompt-token estimate where no tokenizer is at hand.
func (r *OpenAIRequest) PromptWords() int {
	n := 0
	for _, t := range r.PromptTexts {
		n += len(strings.Fields(t))
	}
	return n
}

// openAIFieldError is a field of a body that is wrong, at its line.
type openAIFieldError struct {
	Line int
	Msg  string
}

func (e *openAIFieldError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

func fieldErrorf(v *Value, format string, args ...any) error {
	return &openAIFieldError{Line: v.Line, Msg: fmt.Sprintf(format, args...)}
}

// ParseOpenAIBody validates body as a request to endpoint ep and returns
// what it asks for. Fields it does not know (sampling parameters, tools)
// are left to the server.
func ParseOpenAIBody(body []byte, ep OpenAIEndpoint) (*OpenAIRequest, error) {
	root, err := ParseJSON(body)
	if err != nil {
		return nil, err
	}
	return parseOpenAIRoot(&root, ep)
}

func parseOpenAIRoot(root *Value, ep OpenAIEndpoint) (*OpenAIRequest, error) {
	if root.Kind != Object {
		return nil, fieldErrorf(root, "an OpenAI %s body must be a JSON object, got %s", ep, root.Kind)
	}
	r := &OpenAIRequest{Endpoint: ep, N: 1}
	model := root.Get("model")
	switch {
	case model == nil:
		return nil, fieldErrorf(root, `"model" is missing (the served model's name)`)
	case model.Kind != String || model.Str == "":
		return nil, fieldErrorf(model, `"model" must be a non-empty string, got %s`, describeOpenAIValue(model))
	}
	r.Model = model.Str
	switch ep {
	case Completions:
		if root.Get("messages") != nil {
			return nil, fieldErrorf(root.Get("messages"), `"messages" belongs to /v1/chat/completions; /v1/completions takes "prompt"`)
		}
		if err := r.parsePrompt(root); err != nil {
			return nil, err
		}
	case ChatCompletions:
		if root.Get("prompt") != nil {
			return nil, fieldErrorf(root.Get("prompt"), `"prompt" belongs to /v1/completions; /v1/chat/completions takes "messages"`)
		}
		if err := r.parseMessages(root); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("payloads: OpenAI endpoint %d is neither Completions nor ChatCompletions", uint8(ep))
	}
	var err error
	if r.MaxTokens, err = optionalCount(root, "max_tokens"); err != nil {
		return nil, err
	}
	if ep == ChatCompletions {
		n, err := optionalCount(root, "max_completion_tokens")
		if err != nil {
			return nil, err
		}
		if n > 0 {
			r.MaxTokens = n
		}
	}
	if n, err := optionalCount(root, "n"); err != nil {
		return nil, err
	} else if n > 0 {
		r.N = n
	}
	if v := root.Get("stream"); v != nil && v.Kind != Null {
		if v.Kind != Bool {
			return nil, fieldErrorf(v, `"stream" must be true or false, got %s`, describeOpenAIValue(v))
		}
		r.Stream = v.Bool
	}
	if v := root.Get("stream_options"); v != nil && v.Kind != Null {
		if v.Kind != Object {
			return nil, fieldErrorf(v, `"stream_options" must be an object, got %s`, describeOpenAIValue(v))
		}
		if !r.Stream {
			return nil, fieldErrorf(v, `"stream_options" is only allowed with "stream": true`)
		}
		if u := v.Get("include_usage"); u != nil && u.Kind != Null {
			if u.Kind != Bool {
				return nil, fieldErrorf(u, `"stream_options.include_usage" must be true or false, got %s`, describeOpenAIValue(u))
			}
			r.IncludeUsage = u.Bool
		}
	}
	return r, nil
}

// optionalCount reads a positive integer member, 0 when it is absent or
// null.
func optionalCount(root *Value, key string) (int, error) {
	v := root.Get(key)
	if v == nil || v.Kind == Null {
		return 0, nil
	}
	if v.Kind != Number || v.Num != math.Trunc(v.Num) || v.Num < 1 || v.Num > math.MaxInt32 {
		return 0, fieldErrorf(v, "%q must be a positive integer, got %s", key, describeOpenAIValue(v))
	}
	return int(v.Num), nil
}

func (r *OpenAIRequest) parsePrompt(root *Value) error {
	p := root.Get("prompt")
	if p == nil {
		return fieldErrorf(root, `"prompt" is missing (a string, a list of strings, or token ids)`)
	}
	switch p.Kind {
	case String:
		r.PromptTexts = append(r.PromptTexts, p.Str)
		r.Prompts = 1
		return nil
	case Array:
		if len(p.Items) == 0 {
			return fieldErrorf(p, `"prompt" is an empty list`)
		}
		// One kind throughout: strings, token ids, or lists of token ids.
		first := promptItemKind(&p.Items[0])
		for i := range p.Items {
			if k := promptItemKind(&p.Items[i]); k != first && k != "" && first != "" {
				return fieldErrorf(&p.Items[i], `"prompt"[%d] is a %s among %ss: a prompt list holds one kind`, i, k, first)
			}
		}
		for i := range p.Items {
			item := &p.Items[i]
			switch {
			case item.Kind == String:
				r.PromptTexts = append(r.PromptTexts, item.Str)
				r.Prompts++
			case isTokenID(item):
				r.PromptTokenIDs++
				r.Prompts = 1 // a flat list of ids is one prompt
			case item.Kind == Array && len(item.Items) > 0:
				for j := range item.Items {
					if !isTokenID(&item.Items[j]) {
						return fieldErrorf(&item.Items[j], `"prompt"[%d][%d] must be a token id (an integer of at least 0), got %s`, i, j, describeOpenAIValue(&item.Items[j]))
					}
				}
				r.PromptTokenIDs += len(item.Items)
				r.Prompts++
			default:
				return fieldErrorf(item, `"prompt"[%d] must be a string, a token id or a list of token ids, got %s`, i, describeOpenAIValue(item))
			}
		}
		return nil
	}
	return fieldErrorf(p, `"prompt" must be a string, a list of strings, or token ids, got %s`, describeOpenAIValue(p))
}

// promptItemKind names what a prompt list's item is, "" for anything else.
func promptItemKind(v *Value) string {
	switch {
	case v.Kind == String:
		return "string"
	case isTokenID(v):
		return "token id"
	case v.Kind == Array:
		return "token-id list"
	}
	return ""
}

func isTokenID(v *Value) bool {
	return v.Kind == Number && v.Num == math.Trunc(v.Num) && v.Num >= 0 && v.Num <= math.MaxInt32
}

// chatRoles are the message roles OpenAI's API and vLLM accept.
var chatRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

func (r *OpenAIRequest) parseMessages(root *Value) error {
	msgs := root.Get("messages")
	switch {
	case msgs == nil:
		return fieldErrorf(root, `"messages" is missing (a list of {"role", "content"} objects)`)
	case msgs.Kind != Array:
		return fieldErrorf(msgs, `"messages" must be a list of {"role", "content"} objects, got %s`, describeOpenAIValue(msgs))
	case len(msgs.Items) == 0:
		return fieldErrorf(msgs, `"messages" is an empty list`)
	}
	r.Prompts = 1
	for i := range msgs.Items {
		m := &msgs.Items[i]
		if m.Kind != Object {
			return fieldErrorf(m, `"messages"[%d] must be an object with "role" and "content", got %s`, i, describeOpenAIValue(m))
		}
		role := m.Get("role")
		switch {
		case role == nil:
			return fieldErrorf(m, `"messages"[%d]: "role" is missing`, i)
		case role.Kind != String || !chatRoles[role.Str]:
			return fieldErrorf(role, `"messages"[%d].role must be one of system, developer, user, assistant, tool, function; got %s`, i, describeOpenAIValue(role))
		}
		content := m.Get("content")
		switch {
		case content == nil || content.Kind == Null:
			// An assistant's turn that only calls tools has no content.
			if role.Str != "assistant" {
				return fieldErrorf(m, `"messages"[%d]: "content" is missing`, i)
			}
		case content.Kind == String:
			r.PromptTexts = append(r.PromptTexts, content.Str)
		case content.Kind == Array:
			for j := range content.Items {
				part := &content.Items[j]
				if part.Kind != Object || part.Get("type") == nil || part.Get("type").Kind != String {
					return fieldErrorf(part, `"messages"[%d].content[%d] must be a content part object with a "type", got %s`, i, j, describeOpenAIValue(part))
				}
				if part.Get("type").Str != "text" {
					continue // images, audio: the server's business
				}
				text := part.Get("text")
				if text == nil || text.Kind != String {
					return fieldErrorf(part, `"messages"[%d].content[%d]: a "text" part needs a string "text"`, i, j)
				}
				r.PromptTexts = append(r.PromptTexts, text.Str)
			}
		default:
			return fieldErrorf(content, `"messages"[%d].content must be a string or a list of content parts, got %s`, i, describeOpenAIValue(content))
		}
	}
	return nil
}

// describeOpenAIValue names a value's kind, with a short string shown.
func describeOpenAIValue(v *Value) string {
	switch v.Kind {
	case String:
		s := v.Str
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("string %q", s)
	case Number:
		return "number " + v.NumText
	case Bool:
		return fmt.Sprint(v.Bool)
	}
	return v.Kind.String()
}

// LoadOpenAI reads OpenAI request bodies for endpoint ep from path: a JSON
// file with one body (or a list of bodies), a .jsonl file with one body per
// line, a directory of such files (taken in name order), or "-" for stdin
// (one body or a list, or JSON lines). Every body is
// validated; the first that is wrong is an *Error naming its file and line.
// Each payload's Body is the body as read (for a list, each element's own
// bytes re-encoded compactly) and its OpenAI field what it asks for.
func LoadOpenAI(path string, ep OpenAIEndpoint, opts Options) (*Set, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if path == "" {
		return nil, setting.Errorf("payloads.LoadOpenAI.path", "payloads.LoadOpenAI.path: no payload file given")
	}
	if path == "-" {
		return loadOpenAIStdin(ep, opts)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Source: path, Msg: describeOSError(err), Err: err}
	}
	set := &Set{}
	files := []string{path}
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, &Error{Source: path, Msg: describeOSError(err), Err: err}
		}
		files = files[:0]
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".json" || ext == ".jsonl") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		if len(files) == 0 {
			return nil, &Error{Source: path, Msg: "directory has no .json or .jsonl files"}
		}
		sort.Strings(files)
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, &Error{Source: file, Msg: describeOSError(err), Err: err}
		}
		data, err := readLimited(f, file, opts.MaxBytes)
		f.Close()
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(filepath.Ext(file), ".jsonl") {
			err = set.addOpenAILines(file, data, ep)
		} else {
			err = set.addOpenAIDocument(file, data, ep)
		}
		if err != nil {
			return nil, err
		}
	}
	return set, nil
}

// loadOpenAIStdin reads stdin as one document (a body or a list of them)
// when it is one JSON value, and as JSON lines when it holds more than one
// line and is not.
func loadOpenAIStdin(ep OpenAIEndpoint, opts Options) (*Set, error) {
	in := opts.Stdin
	if in == nil {
		in = os.Stdin
	}
	data, err := readLimited(in, "-", opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &Error{Source: "-", Msg: "stdin is empty"}
	}
	set := &Set{}
	if _, perr := ParseJSON(trimmed); perr == nil || bytes.Count(trimmed, []byte("\n")) == 0 {
		err = set.addOpenAIDocument("-", data, ep)
	} else {
		err = set.addOpenAILines("-", data, ep)
	}
	if err != nil {
		return nil, err
	}
	return set, nil
}

// addOpenAILines takes one body per non-blank line.
func (s *Set) addOpenAILines(file string, data []byte, ep OpenAIEndpoint) error {
	before := len(s.Payloads)
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		root, err := ParseJSON(line)
		if err == nil {
			var req *OpenAIRequest
			if req, err = parseOpenAIRoot(&root, ep); err == nil {
				s.Payloads = append(s.Payloads, Payload{Source: fmt.Sprintf("%s:%d", file, i+1), Body: line, OpenAI: req})
				continue
			}
		}
		// A line is one body: the error's line is the file's.
		return &Error{Source: file, Line: i + 1, Msg: openAIErrorMsg(err), Err: err}
	}
	if len(s.Payloads) == before {
		return &Error{Source: file, Msg: "no JSON lines in the file"}
	}
	return nil
}

// addOpenAIDocument takes a file holding one body, or a JSON list of
// bodies.
func (s *Set) addOpenAIDocument(file string, data []byte, ep OpenAIEndpoint) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return &Error{Source: file, Msg: "file is empty"}
	}
	offset := leadingLines(data)
	root, err := ParseJSON(trimmed)
	if err != nil {
		return &Error{Source: file, Line: errLine(err) + offset, Msg: openAIErrorMsg(err), Err: err}
	}
	if root.Kind != Array {
		req, err := parseOpenAIRoot(&root, ep)
		if err != nil {
			return &Error{Source: file, Line: errLine(err) + offset, Msg: openAIErrorMsg(err), Err: err}
		}
		s.Payloads = append(s.Payloads, Payload{Source: file, Body: trimmed, OpenAI: req})
		return nil
	}
	if len(root.Items) == 0 {
		return &Error{Source: file, Line: root.Line + offset, Msg: "an empty list of request bodies"}
	}
	// Each element is sent as its own source bytes.
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil || len(raws) != len(root.Items) {
		return &Error{Source: file, Msg: fmt.Sprintf("not standard JSON (NaN and Infinity are TF Serving's, not OpenAI's): %v", err), Err: err}
	}
	for i := range root.Items {
		item := &root.Items[i]
		req, err := parseOpenAIRoot(item, ep)
		if err != nil {
			return &Error{Source: file, Line: errLine(err) + offset, Msg: fmt.Sprintf("body [%d]: %s", i, openAIErrorMsg(err)), Err: err}
		}
		s.Payloads = append(s.Payloads, Payload{Source: fmt.Sprintf("%s[%d]", file, i), Body: bytes.TrimSpace(raws[i]), OpenAI: req})
	}
	return nil
}

// errLine is the in-document line of a syntax or field error, 0 if none.
func errLine(err error) int {
	switch e := err.(type) {
	case *SyntaxError:
		return e.Line
	case *openAIFieldError:
		return e.Line
	}
	return 0
}

// openAIErrorMsg is err's message without its line, which *Error says.
func openAIErrorMsg(err error) string {
	switch e := err.(type) {
	case *SyntaxError:
		return e.Msg
	case *openAIFieldError:
		return e.Msg
	}
	return err.Error()
}
