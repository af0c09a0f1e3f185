package payloads

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON kinds a Value can hold.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "list"
	case Object:
		return "object"
	}
	return "unknown"
}

// Value is one parsed JSON value. Numbers keep their source text so that
// integer dtypes can be converted without a round trip through float64.
type Value struct {
	Kind    Kind
	Line    int // 1-based line where the value starts in its source
	Bool    bool
	Num     float64
	NumText string // source text of a Number (NaN, Infinity and -Infinity included)
	Str     string
	Items   []Value  // Array elements
	Members []Member // Object members in source order
}

// Member is one key of a JSON object.
type Member struct {
	Key   string
	Value Value
}

// Get returns the member named key of an object, or nil.
func (v *Value) Get(key string) *Value {
	for i := range v.Members {
		if v.Members[i].Key == key {
			return &v.Members[i].Value
		}
	}
	return nil
}

// MaxDepth is how deeply JSON values may nest. Tensors of rank 30 and more do
// not exist in practice, and a bound keeps a hostile file from exhausting the
// stack.
const MaxDepth = 64

// SyntaxError is a malformed JSON document.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseJSON parses one JSON document. Beside standard JSON it accepts the
// tokens NaN, Infinity and -Infinity, as TensorFlow Serving does.
func ParseJSON(data []byte) (Value, error) {
	p := parser{data: data, line: 1}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return Value{}, p.errorf("unexpected %s after the end of the JSON value", p.describe())
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
	line int
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) describe() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	c := p.data[p.pos]
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return strconv.Quote(string(c))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '\n':
			p.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		p.pos++
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errorf("JSON nested deeper than %d levels", MaxDepth)
	}
	if p.pos >= len(p.data) {
		return Value{}, p.errorf("unexpected end of input, expected a value")
	}
	line := p.line
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return Value{Kind: String, Line: line, Str: s}, err
	case c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I':
		return p.number()
	case p.literal("true"):
		return Value{Kind: Bool, Line: line, Bool: true}, nil
	case p.literal("false"):
		return Value{Kind: Bool, Line: line}, nil
	case p.literal("null"):
		return Value{Kind: Null, Line: line}, nil
	}
	return Value{}, p.errorf("unexpected %s, expected a value", p.describe())
}

func (p *parser) literal(word string) bool {
	if len(p.data)-p.pos >= len(word) && string(p.data[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *parser) object(depth int) (Value, error) {
	v := Value{Kind: Object, Line: p.line}
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.errorf("unexpected %s, expected an object key in double quotes", p.describe())
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		if v.Get(key) != nil {
			return Value{}, p.errorf("duplicate key %q", key)
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.errorf("unexpected %s, expected ':' after key %q", p.describe(), key)
		}
		p.pos++
		p.skipSpace()
		member, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Members = append(v.Members, Member{Key: key, Value: member})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input, expected ',' or '}'")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errorf("unexpected %s, expected ',' or '}'", p.describe())
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	v := Value{Kind: Array, Line: p.line}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		v.Items = []Value{}
		return v, nil
	}
	for {
		p.skipSpace()
		item, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Items = append(v.Items, item)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input, expected ',' or ']'")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return Value{}, p.errorf("unexpected %s, expected ',' or ']'", p.describe())
		}
	}
}

func (p *parser) number() (Value, error) {
	v := Value{Kind: Number, Line: p.line}
	start := p.pos
	switch {
	case p.literal("NaN"):
		v.Num = math.NaN()
	case p.literal("Infinity"):
		v.Num = math.Inf(1)
	case p.literal("-Infinity"):
		v.Num = math.Inf(-1)
	default:
		if p.data[p.pos] == '-' {
			p.pos++
		}
		intStart := p.pos
		if !p.digits() {
			return Value{}, p.errorf("malformed number: expected a digit, got %s", p.describe())
		}
		if p.data[intStart] == '0' && p.pos-intStart > 1 {
			return Value{}, p.errorf("malformed number %q: leading zero", p.data[start:p.pos])
		}
		if p.pos < len(p.data) && p.data[p.pos] == '.' {
			p.pos++
			if !p.digits() {
				return Value{}, p.errorf("malformed number: expected a digit after '.', got %s", p.describe())
			}
		}
		if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
			p.pos++
			if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
				p.pos++
			}
			if !p.digits() {
				return Value{}, p.errorf("malformed number: expected a digit in the exponent, got %s", p.describe())
			}
		}
		f, err := strconv.ParseFloat(string(p.data[start:p.pos]), 64)
		if err != nil && !isRangeError(err) {
			return Value{}, p.errorf("malformed number %q", p.data[start:p.pos])
		}
		v.Num = f // out-of-range numbers are ±Inf or 0; dtype checks report them
	}
	v.NumText = string(p.data[start:p.pos])
	return v, nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func (p *parser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character 0x%02x inside a string", c)
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character 0x%02x inside a string", c)
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					p.pos += 2
					if r2, err = p.hex4(); err != nil {
						return "", err
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape '\\%c' in a string", e)
		}
	}
	return "", p.errorf("unexpected end of input inside a string")
}

func (p *parser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.errorf("unexpected end of input in a \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errorf("invalid \\u escape %q", p.data[p.pos:p.pos+4])
	}
	p.pos += 4
	return rune(n), nil
}
