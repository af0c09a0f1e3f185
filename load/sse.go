package load

// An incremental parser of the Server-Sent Events an OpenAI-compatible
// server streams (vLLM, SGLang, TGI, Triton's OpenAI frontend): the REST
// engines feed it the response body as it comes off the socket, in
// whatever pieces the reads return, and it tells them per event whether
// output tokens arrived, the usage block, the end ([DONE]) and errors.
// It keeps no goroutine and, once its buffers have grown to the events'
// size, allocates nothing.

import (
	"bytes"
	"errors"
)

// SSEKind is what one event of an OpenAI stream was.
type SSEKind uint8

// The kinds of events.
const (
	// SSEChunk is a completion chunk: JSON with choices or usage. It may
	// carry no output (chat's role-only first delta, the usage chunk).
	SSEChunk SSEKind = iota + 1
	// SSEDone is "data: [DONE]", the end of the answer.
	SSEDone
	// SSEError is an error inside the stream: an event named "error"
	// (event: error), data with an "error" member ({"error": {...}} or
	// {"error": "..."}), or the bare {"object": "error", ...} older vLLM
	// versions send.
	SSEError
	// SSEMalformed is data that is not JSON, or JSON that is not an
	// object with choices, usage or error. The caller counts it.
	SSEMalformed
)

func (k SSEKind) String() string {
	switch k {
	case SSEChunk:
		return "chunk"
	case SSEDone:
		return "done"
	case SSEError:
		return "error"
	case SSEMalformed:
		return "malformed"
	}
	return "none"
}

// SSEEvent is one dispatched event. Its byte slices point into the
// parser's buffers and are valid until the next call of Feed.
type SSEEvent struct {
	Kind SSEKind
	// Tokens is the output chunks the event carried: one per choice with
	// output, that is a non-empty text (completions), or a delta (chat)
	// with a non-empty content, reasoning_content or reasoning string or
	// a non-empty tool_calls list. A reasoning model's thinking and a
	// tool call are output the server generated token by token: leaving
	// them out would time the whole reasoning phase as the first token.
	// The usage block, when a server sends one, gives the exact count
	// (LLMStreamTimer prefers it).
	Tokens int
	// HasUsage is set when the chunk had a usage object; PromptTokens and
	// CompletionTokens are its members (-1 when absent or not integers).
	HasUsage         bool
	PromptTokens     int64
	CompletionTokens int64
	// ErrorMessage is an SSEError's message (the JSON string's raw
	// content, escapes kept), and ErrorCode its integer code or 0.
	ErrorMessage []byte
	ErrorCode    int64
	// Data is the event's data (the data lines joined by '\n').
	Data []byte
}

// DefaultSSEMaxEvent bounds the bytes the parser buffers for one line or
// one event when SSEParser.MaxEvent is 0.
const DefaultSSEMaxEvent = 1 << 20

// ErrSSETooLong is Feed's error when a line or an event grows past the
// parser's bound: a server that never ends a line must not grow the
// client's memory without limit. The parser stays failed.
var ErrSSETooLong = errors.New("server-sent event longer than the parser's bound")

// SSEParser parses one response body's event stream. The zero value is
// ready; Reset readies it for the next response on the same connection.
// It is not safe for concurrent use: one belongs to one connection.
type SSEParser struct {
	// MaxEvent bounds a buffered partial line and an event's data, in
	// bytes; DefaultSSEMaxEvent when 0.
	MaxEvent int

	line   []byte // the partial line carried over from the previous Feed
	data   []byte // the current event's data lines, each followed by '\n'
	inData bool   // the current event has a data field (possibly empty)
	skipLF bool   // the previous line ended with CR: a leading LF belongs to it
	failed bool
	// errorEvent: the current event is named "error" (event: error).
	errorEvent bool
	// bom is how many bytes of a leading UTF-8 byte-order mark were
	// taken; bomDone is set once the stream's first bytes were checked
	// for one (the SSE standard strips it, servers on Windows send it).
	bom     int
	bomDone bool
	ev      SSEEvent
}

// Reset forgets any partial line or event, keeping the buffers.
func (p *SSEParser) Reset() {
	p.line, p.data = p.line[:0], p.data[:0]
	p.inData, p.skipLF, p.failed = false, false, false
	p.errorEvent, p.bom, p.bomDone = false, 0, false
}

func (p *SSEParser) maxEvent() int {
	if p.MaxEvent > 0 {
		return p.MaxEvent
	}
	return DefaultSSEMaxEvent
}

// Feed consumes b up to the end of the next complete event. It returns
// how many bytes it consumed and the event, or nil when b ran out before
// an event ended (then n is len(b)). Call it again with b[n:] until b is
// empty:
//
//	for len(b) > 0 {
//		n, ev, err := p.Feed(b)
//		if err != nil { ... }
//		b = b[n:]
//		if ev != nil { ... }
//	}
//
// The event is valid until the next call. Lines end with LF, CRLF or CR;
// comments (":...") and fields other than data are skipped.
func (p *SSEParser) Feed(b []byte) (n int, ev *SSEEvent, err error) {
	if p.failed {
		return 0, nil, ErrSSETooLong
	}
	limit := p.maxEvent()
	for !p.bomDone && n < len(b) {
		if b[n] != utf8BOM[p.bom] {
			// A partial mark (not UTF-8) is dropped with the mark.
			p.bomDone = true
			break
		}
		n++
		p.bom++
		p.bomDone = p.bom == len(utf8BOM)
	}
	for n < len(b) {
		if p.skipLF {
			p.skipLF = false
			if b[n] == '\n' {
				n++
				continue
			}
		}
		rest := b[n:]
		end, eol := sseLineEnd(rest)
		if end < 0 {
			if len(p.line)+len(rest) > limit {
				p.failed = true
				return len(b), nil, ErrSSETooLong
			}
			p.line = append(p.line, rest...)
			return len(b), nil, nil
		}
		line := rest[:end]
		if len(p.line) > 0 {
			if len(p.line)+len(line) > limit {
				p.failed = true
				return n, nil, ErrSSETooLong
			}
			p.line = append(p.line, line...)
			line = p.line
		}
		n += end + eol
		if eol == 1 && rest[end] == '\r' {
			p.skipLF = true // a CRLF split between two reads
		}
		dispatch, lerr := p.takeLine(line, limit)
		p.line = p.line[:0]
		if lerr != nil {
			p.failed = true
			return n, nil, lerr
		}
		if dispatch {
			p.classify()
			return n, &p.ev, nil
		}
	}
	return n, nil, nil
}

// utf8BOM is the byte-order mark a stream may start with.
const utf8BOM = "\xef\xbb\xbf"

// sseLineEnd finds the end of the first line of b and the length of its
// terminator (CRLF is 2); end is -1 when b holds no complete line. A CR
// as b's last byte ends the line: a following LF is skipped by Feed.
func sseLineEnd(b []byte) (end, eol int) {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		if cr+1 < len(b) && b[cr+1] == '\n' {
			return cr, 2
		}
		return cr, 1
	}
	if lf >= 0 {
		return lf, 1
	}
	return -1, 0
}

// takeLine handles one complete line and reports whether it ended an
// event that has data.
func (p *SSEParser) takeLine(line []byte, limit int) (bool, error) {
	if len(line) == 0 {
		if !p.inData {
			p.errorEvent = false // an event without data is not dispatched
		}
		return p.inData, nil
	}
	if line[0] == ':' {
		return false, nil // a comment, such as a keep-alive
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if string(name) == "event" {
		p.errorEvent = string(value) == "error"
		return false, nil
	}
	if string(name) != "data" {
		return false, nil // id, retry: nothing an OpenAI client needs
	}
	if len(p.data)+len(value)+1 > limit {
		return false, ErrSSETooLong
	}
	p.data = append(p.data, value...)
	p.data = append(p.data, '\n')
	p.inData = true
	return false, nil
}

// classify turns the finished event's data into p.ev and starts a new
// event.
func (p *SSEParser) classify() {
	data := p.data[:len(p.data)-1] // the last data line's '\n'
	errorEvent := p.errorEvent
	p.data, p.inData, p.errorEvent = p.data[:0], false, false
	p.ev = SSEEvent{Data: data, PromptTokens: -1, CompletionTokens: -1}
	if string(bytes.TrimSpace(data)) == "[DONE]" && !errorEvent {
		p.ev.Kind = SSEDone
		return
	}
	s := chunkScanner{errorEvent: errorEvent}
	s.scan(data, &p.ev)
	if errorEvent {
		// The event's name says it is an error whatever its data: the
		// data's message when it has one, else the data itself.
		msg, code := p.ev.ErrorMessage, p.ev.ErrorCode
		if p.ev.Kind != SSEError {
			msg, code = data, 0
		}
		p.ev = SSEEvent{Kind: SSEError, Data: data, PromptTokens: -1, CompletionTokens: -1, ErrorMessage: msg, ErrorCode: code}
	}
}

// chunkScanner validates one JSON document and picks out the members an
// OpenAI stream chunk is read for, without building it.
type chunkScanner struct {
	b     []byte
	i     int
	bad   bool
	depth int
	// errorEvent: the data is an error event's (event: error), whose
	// object's message member is the error's message.
	errorEvent bool
}

// maxJSONDepth bounds nesting, so that hostile data cannot exhaust the
// stack.
const maxJSONDepth = 256

func (s *chunkScanner) scan(data []byte, ev *SSEEvent) {
	s.b, s.i = data, 0
	ev.Kind = SSEMalformed
	s.ws()
	if !s.peek('{') {
		return
	}
	// A repeated member counts as its last occurrence, as encoding/json
	// reads it.
	var choices, usage, errObj, objectIsError bool
	tokens := 0
	s.object(func(key []byte) {
		switch string(key) {
		case "choices":
			choices, tokens = false, 0
			if s.peek('[') {
				choices = true
				s.array(func() { tokens += s.choice() })
				return
			}
		case "usage":
			usage, ev.PromptTokens, ev.CompletionTokens = false, -1, -1
			if s.peek('{') {
				usage = true
				s.usage(ev)
				return
			}
		case "error":
			errObj = false
			switch {
			case s.peek('{'):
				errObj = true
				s.errorObject(ev)
				return
			case s.peek('"'): // {"error": "message"}
				errObj = true
				ev.ErrorMessage, _ = s.str()
				return
			}
		case "object":
			objectIsError = false
			if s.peek('"') {
				v, _ := s.str()
				objectIsError = string(v) == "error"
				return
			}
		case "message":
			if s.peek('"') { // the bare error object's message
				ev.ErrorMessage, _ = s.str()
				return
			}
		case "code":
			if n, ok := s.integer(); ok {
				ev.ErrorCode = n
			}
			return
		}
		s.value()
	})
	s.ws()
	if s.bad || s.i != len(s.b) {
		ev.Kind, ev.Tokens, ev.HasUsage = SSEMalformed, 0, false
		ev.PromptTokens, ev.CompletionTokens, ev.ErrorMessage, ev.ErrorCode = -1, -1, nil, 0
		return
	}
	switch {
	case errObj || ((objectIsError || s.errorEvent) && !choices):
		ev.Kind = SSEError
	case choices || usage:
		ev.Kind, ev.Tokens, ev.HasUsage = SSEChunk, tokens, usage
		ev.ErrorMessage, ev.ErrorCode = nil, 0
	default:
		ev.ErrorMessage, ev.ErrorCode = nil, 0
	}
}

// choice reads one element of choices and returns 1 when it carries
// output text.
func (s *chunkScanner) choice() int {
	if !s.peek('{') {
		s.value()
		return 0
	}
	var text, delta bool
	s.object(func(key []byte) {
		switch string(key) {
		case "text":
			text = s.nonEmptyString()
			return
		case "delta":
			delta = false
			if s.peek('{') {
				// The delta's members, each by its last occurrence.
				var content, reasoningContent, reasoning, toolCalls bool
				s.object(func(key []byte) {
					switch string(key) {
					case "content":
						content = s.nonEmptyString()
					case "reasoning_content":
						reasoningContent = s.nonEmptyString()
					case "reasoning":
						reasoning = s.nonEmptyString()
					case "tool_calls":
						toolCalls = false
						if s.peek('[') {
							elems := 0
							s.array(func() { elems++; s.value() })
							toolCalls = elems > 0
							return
						}
						s.value()
					default:
						s.value()
					}
				})
				delta = content || reasoningContent || reasoning || toolCalls
				return
			}
		}
		s.value()
	})
	if text || delta {
		return 1
	}
	return 0
}

// nonEmptyString reads a value and reports whether it is a non-empty
// string.
func (s *chunkScanner) nonEmptyString() bool {
	if s.peek('"') {
		v, ok := s.str()
		return ok && len(v) > 0
	}
	s.value()
	return false
}

func (s *chunkScanner) usage(ev *SSEEvent) {
	s.object(func(key []byte) {
		switch string(key) {
		case "prompt_tokens":
			if n, ok := s.integer(); ok {
				ev.PromptTokens = n
			}
			return
		case "completion_tokens":
			if n, ok := s.integer(); ok {
				ev.CompletionTokens = n
			}
			return
		}
		s.value()
	})
}

func (s *chunkScanner) errorObject(ev *SSEEvent) {
	s.object(func(key []byte) {
		switch string(key) {
		case "message":
			if s.peek('"') {
				ev.ErrorMessage, _ = s.str()
				return
			}
		case "code":
			if n, ok := s.integer(); ok {
				ev.ErrorCode = n
			}
			return
		}
		s.value()
	})
}

func (s *chunkScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek reports whether the next value starts with c (after spaces).
func (s *chunkScanner) peek(c byte) bool {
	s.ws()
	return !s.bad && s.i < len(s.b) && s.b[s.i] == c
}

// object reads an object, calling member with each key with the scanner
// at the member's value, which member must consume.
func (s *chunkScanner) object(member func(key []byte)) {
	s.items('{', '}', func() {
		if !s.peek('"') {
			s.bad = true
			return
		}
		key, _ := s.str()
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.bad = true
			return
		}
		s.i++
		s.ws()
		member(key)
	})
}

// array reads an array, calling elem with the scanner at each element.
func (s *chunkScanner) array(elem func()) {
	s.items('[', ']', elem)
}

// items reads the comma-separated items between open and close (an
// object's members or an array's elements), calling item at each, which
// must consume it.
func (s *chunkScanner) items(open, close byte, item func()) {
	if !s.enter(open) {
		return
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == close {
		s.i++
		s.depth--
		return
	}
	for !s.bad {
		s.ws()
		item()
		if s.bad {
			return
		}
		s.ws()
		if s.i >= len(s.b) {
			s.bad = true
			return
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case close:
			s.i++
			s.depth--
			return
		default:
			s.bad = true
			return
		}
	}
}

func (s *chunkScanner) enter(c byte) bool {
	if s.bad || s.i >= len(s.b) || s.b[s.i] != c {
		s.bad = true
		return false
	}
	s.depth++
	if s.depth > maxJSONDepth {
		s.bad = true
		return false
	}
	s.i++
	return true
}

// value skips any JSON value, checking it.
func (s *chunkScanner) value() {
	s.ws()
	if s.bad || s.i >= len(s.b) {
		s.bad = true
		return
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.object(func([]byte) { s.value() })
	case c == '[':
		s.array(s.value)
	case c == '"':
		s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
				s.i += len(lit)
				return
			}
		}
		s.bad = true
	}
}

// str reads a string and returns its raw content (escapes kept).
func (s *chunkScanner) str() ([]byte, bool) {
	if s.bad || s.i >= len(s.b) || s.b[s.i] != '"' {
		s.bad = true
		return nil, false
	}
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], true
		case c == '\\':
			i++
			if i >= len(s.b) {
				s.bad = true
				return nil, false
			}
			switch s.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.b) || !isHex(s.b[i+1]) || !isHex(s.b[i+2]) || !isHex(s.b[i+3]) || !isHex(s.b[i+4]) {
					s.bad = true
					return nil, false
				}
				i += 4
			default:
				s.bad = true
				return nil, false
			}
		case c < 0x20:
			s.bad = true
			return nil, false
		}
	}
	s.bad = true
	return nil, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number reads a JSON number; it reports the value when the number is a
// non-negative integer that fits an int64.
func (s *chunkScanner) number() (int64, bool) {
	b, i := s.b, s.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	digits := i
	var n int64
	fits := true
	if i < len(b) && b[i] == '0' {
		i++
	} else {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			d := int64(b[i] - '0')
			if n > (1<<63-1-d)/10 {
				fits = false
			}
			n = n*10 + d
			i++
		}
	}
	if i == digits {
		s.bad = true
		return 0, false
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		frac := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == frac {
			s.bad = true
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		exp := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == exp {
			s.bad = true
			return 0, false
		}
	}
	s.i = i
	return n, integer && fits && !neg
}

// integer reads a value that, to be taken, is a non-negative integer; any
// other value is skipped and reported as not one.
func (s *chunkScanner) integer() (int64, bool) {
	s.ws()
	if s.i < len(s.b) && (s.b[s.i] == '-' || (s.b[s.i] >= '0' && s.b[s.i] <= '9')) {
		return s.number()
	}
	s.value()
	return 0, false
}
