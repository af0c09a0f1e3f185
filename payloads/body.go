package payloads

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// Format says how a TF Serving JSON body lays out its tensors.
type Format uint8

// The two TF Serving request formats.
const (
	RowFormat      Format = iota + 1 // {"instances": [...]}: one element per example, stacked on dim 0
	ColumnarFormat                   // {"inputs": ...}: each tensor given whole
)

func (f Format) String() string {
	if f == RowFormat {
		return "instances"
	}
	return "inputs"
}

// LeafKind is the JSON type of the scalars of one tensor.
type LeafKind uint8

// The scalar kinds a tensor can be written with.
const (
	NumberLeaves LeafKind = iota + 1
	StringLeaves          // strings and {"b64": ...} objects
	BoolLeaves
)

func (k LeafKind) String() string {
	switch k {
	case NumberLeaves:
		return "numbers"
	case StringLeaves:
		return "strings"
	case BoolLeaves:
		return "booleans"
	}
	return "nothing"
}

// Tensor is one named input of a request, flattened in row-major order.
// Name is empty for the unnamed single input of `{"instances": [1, 2]}` or
// `{"inputs": [[1, 2]]}`: the model's only input.
type Tensor struct {
	Name   string
	Shape  []int
	Kind   LeafKind
	Leaves []Leaf
}

// Leaf is one scalar of a tensor. Bytes holds the decoded value of a string
// or of a {"b64": ...} object.
type Leaf struct {
	Num     float64
	NumText string
	Bytes   []byte
	Bool    bool
	Line    int
}

// Request is a validated TF Serving predict body.
type Request struct {
	Format        Format
	SignatureName string
	Inputs        []Tensor // sorted by name
}

// ParseBody validates a TF Serving predict request body (row or columnar
// form) and returns its tensors. Errors carry the line of the offending
// value.
func ParseBody(data []byte) (*Request, error) {
	root, err := ParseJSON(data)
	if err != nil {
		return nil, err
	}
	return parseTFRoot(&root)
}

// parseAnyBody parses a body once and validates it as what it is: a native
// V2 infer request, or a TF Serving predict request.
func parseAnyBody(data []byte) (*Request, *V2Request, error) {
	root, err := ParseJSON(data)
	if err != nil {
		return nil, nil, err
	}
	if isV2Body(&root) {
		v2, err := parseV2Root(&root, nil)
		return nil, v2, err
	}
	req, err := parseTFRoot(&root)
	return req, nil, err
}

func parseTFRoot(root *Value) (*Request, error) {
	var err error
	if root.Kind != Object {
		return nil, &SyntaxError{Line: root.Line, Msg: fmt.Sprintf("the body must be a JSON object with \"instances\" or \"inputs\", got %s", root.Kind)}
	}
	req := &Request{}
	if sig := root.Get("signature_name"); sig != nil {
		if sig.Kind != String {
			return nil, &SyntaxError{Line: sig.Line, Msg: fmt.Sprintf("\"signature_name\" must be a string, got %s", sig.Kind)}
		}
		req.SignatureName = sig.Str
	}
	instances, inputs := root.Get("instances"), root.Get("inputs")
	switch {
	case instances != nil && inputs != nil:
		return nil, &SyntaxError{Line: root.Line, Msg: "the body has both \"instances\" and \"inputs\"; use one"}
	case instances != nil:
		req.Format = RowFormat
		req.Inputs, err = parseInstances(instances)
	case inputs != nil:
		req.Format = ColumnarFormat
		req.Inputs, err = parseInputs(inputs)
	default:
		return nil, &SyntaxError{Line: root.Line, Msg: "the body has neither \"instances\" nor \"inputs\""}
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

func isB64(v *Value) bool {
	return v.Kind == Object && len(v.Members) == 1 && v.Members[0].Key == "b64"
}

func parseInstances(v *Value) ([]Tensor, error) {
	if v.Kind != Array {
		return nil, &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("\"instances\" must be a list, got %s", v.Kind)}
	}
	if len(v.Items) == 0 {
		return nil, &SyntaxError{Line: v.Line, Msg: "\"instances\" is an empty list"}
	}
	first := &v.Items[0]
	if first.Kind != Object || isB64(first) {
		// One unnamed input: every instance is one element of it.
		t := Tensor{}
		for i := range v.Items {
			if it := &v.Items[i]; it.Kind == Object && !isB64(it) {
				return nil, &SyntaxError{Line: it.Line, Msg: fmt.Sprintf("instance %d is an object but instance 0 is not: mix of named and unnamed inputs", i)}
			}
		}
		if err := flatten(&t, v, "instances"); err != nil {
			return nil, err
		}
		return []Tensor{t}, nil
	}
	// Named inputs: each instance is an object with the same keys.
	names := make([]string, 0, len(first.Members))
	for _, m := range first.Members {
		names = append(names, m.Key)
	}
	sort.Strings(names)
	tensors := make([]Tensor, len(names))
	for ti, name := range names {
		column := Value{Kind: Array, Line: v.Line, Items: make([]Value, len(v.Items))}
		for i := range v.Items {
			it := &v.Items[i]
			if it.Kind != Object || isB64(it) {
				return nil, &SyntaxError{Line: it.Line, Msg: fmt.Sprintf("instance %d is not an object but instance 0 is: mix of named and unnamed inputs", i)}
			}
			if len(it.Members) != len(names) {
				return nil, &SyntaxError{Line: it.Line, Msg: fmt.Sprintf("instance %d has keys %s, instance 0 has %s", i, keysOf(it), strings.Join(names, ", "))}
			}
			field := it.Get(name)
			if field == nil {
				return nil, &SyntaxError{Line: it.Line, Msg: fmt.Sprintf("instance %d has no input %q (instance 0 has %s)", i, name, strings.Join(names, ", "))}
			}
			column.Items[i] = *field
		}
		tensors[ti].Name = name
		if err := flatten(&tensors[ti], &column, fmt.Sprintf("input %q", name)); err != nil {
			return nil, err
		}
	}
	return tensors, nil
}

func keysOf(v *Value) string {
	keys := make([]string, len(v.Members))
	for i, m := range v.Members {
		keys[i] = m.Key
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func parseInputs(v *Value) ([]Tensor, error) {
	if v.Kind == Object && !isB64(v) {
		if len(v.Members) == 0 {
			return nil, &SyntaxError{Line: v.Line, Msg: "\"inputs\" is an empty object"}
		}
		tensors := make([]Tensor, len(v.Members))
		for i := range v.Members {
			m := &v.Members[i]
			tensors[i].Name = m.Key
			if err := flatten(&tensors[i], &m.Value, fmt.Sprintf("input %q", m.Key)); err != nil {
				return nil, err
			}
		}
		sort.Slice(tensors, func(i, j int) bool { return tensors[i].Name < tensors[j].Name })
		return tensors, nil
	}
	t := Tensor{}
	if err := flatten(&t, v, "inputs"); err != nil {
		return nil, err
	}
	return []Tensor{t}, nil
}

// flatten checks that v is a rectangular nesting of lists with scalars of
// one kind at the bottom, and appends its shape and leaves to t.
func flatten(t *Tensor, v *Value, what string) error {
	// The shape is read down the first elements, then every element is
	// checked against it.
	for cur := v; cur.Kind == Array; cur = &cur.Items[0] {
		t.Shape = append(t.Shape, len(cur.Items))
		if len(cur.Items) == 0 {
			break
		}
	}
	return walk(t, v, 0, what)
}

func walk(t *Tensor, v *Value, dim int, what string) error {
	if dim < len(t.Shape) {
		if v.Kind != Array {
			return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s is ragged: expected a list of %d at depth %d, got %s", what, t.Shape[dim], dim, v.Kind)}
		}
		if len(v.Items) != t.Shape[dim] {
			return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s is ragged: a list at depth %d has %d elements, the first has %d", what, dim, len(v.Items), t.Shape[dim])}
		}
		for i := range v.Items {
			if err := walk(t, &v.Items[i], dim+1, what); err != nil {
				return err
			}
		}
		return nil
	}
	var leaf Leaf
	var kind LeafKind
	switch v.Kind {
	case Number:
		kind, leaf = NumberLeaves, Leaf{Num: v.Num, NumText: v.NumText}
	case String:
		kind, leaf = StringLeaves, Leaf{Bytes: []byte(v.Str)}
	case Bool:
		kind, leaf = BoolLeaves, Leaf{Bool: v.Bool}
	case Object:
		if !isB64(v) {
			return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s: an object inside a tensor must be {\"b64\": \"...\"}, got keys %s", what, keysOf(v))}
		}
		enc := v.Members[0].Value
		if enc.Kind != String {
			return &SyntaxError{Line: enc.Line, Msg: fmt.Sprintf("%s: \"b64\" must be a string, got %s", what, enc.Kind)}
		}
		raw, err := decodeBase64(enc.Str)
		if err != nil {
			return &SyntaxError{Line: enc.Line, Msg: fmt.Sprintf("%s: \"b64\" value is not base64: %v", what, err)}
		}
		kind, leaf = StringLeaves, Leaf{Bytes: raw}
	case Array:
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s is ragged: a list at depth %d where the first element has a scalar", what, dim)}
	default:
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s: null is not a tensor value", what)}
	}
	if t.Kind == 0 {
		t.Kind = kind
	} else if t.Kind != kind {
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s mixes %s and %s", what, t.Kind, kind)}
	}
	leaf.Line = v.Line
	t.Leaves = append(t.Leaves, leaf)
	return nil
}

// decodeBase64 accepts standard base64 with or without padding, which is
// what TF Serving's decoder takes.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
