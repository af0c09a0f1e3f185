package payloads

import (
	"fmt"
	"sort"
	"strings"
)

// ToV2 converts a TF Serving body into a V2 infer request for a model with
// metadata meta: each tensor takes the datatype of the model's input of
// its name (the unnamed input of a body is the model's only one), and its
// shape must match the model's where the model gives a size (-1 matches
// any). Rows of the "instances" form are already stacked on the first
// dimension. Errors name the input and what does not fit; the line of the
// offending value when there is one. Outputs are left to the server (all).
func (r *Request) ToV2(meta *V2ModelMetadata) (*V2Request, error) {
	names := make([]string, len(meta.Inputs))
	byName := make(map[string]*V2TensorMetadata, len(meta.Inputs))
	for i := range meta.Inputs {
		names[i] = meta.Inputs[i].Name
		byName[meta.Inputs[i].Name] = &meta.Inputs[i]
	}
	sort.Strings(names)
	out := &V2Request{Inputs: make([]V2Input, 0, len(r.Inputs))}
	given := map[string]bool{}
	for i := range r.Inputs {
		t := &r.Inputs[i]
		name := t.Name
		if name == "" {
			if len(names) != 1 {
				return nil, fmt.Errorf("the model has %d inputs (%s): name them (objects in \"instances\", or an object in \"inputs\")", len(names), strings.Join(names, ", "))
			}
			name = names[0]
		}
		info, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("input %q is not in the model's metadata (inputs: %s)", name, strings.Join(names, ", "))
		}
		if !IsV2Datatype(info.Datatype) {
			return nil, fmt.Errorf("input %q: the model's datatype %q is not one loadprof can send", name, info.Datatype)
		}
		in := V2Input{Name: name, Datatype: info.Datatype, Shape: make([]int64, len(t.Shape))}
		for d, n := range t.Shape {
			in.Shape[d] = int64(n)
		}
		if err := checkV2Shape(in.Shape, info.Shape); err != nil {
			return nil, fmt.Errorf("input %q: %v", name, err)
		}
		if err := fillV2(&in, t); err != nil {
			if se, ok := err.(*SyntaxError); ok && se.Line > 0 {
				return nil, fmt.Errorf("input %q: line %d: %s", name, se.Line, se.Msg)
			}
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		given[name] = true
		out.Inputs = append(out.Inputs, in)
	}
	for _, name := range names {
		if !given[name] {
			return nil, fmt.Errorf("input %q of the model is missing from the payload", name)
		}
	}
	return out, nil
}

// CheckV2 checks a native V2 request against the model's metadata: every
// input known with its datatype and a fitting shape, every model input
// given, every requested output known.
func (r *V2Request) CheckV2(meta *V2ModelMetadata) error {
	byName := make(map[string]*V2TensorMetadata, len(meta.Inputs))
	names := make([]string, len(meta.Inputs))
	for i := range meta.Inputs {
		byName[meta.Inputs[i].Name] = &meta.Inputs[i]
		names[i] = meta.Inputs[i].Name
	}
	sort.Strings(names)
	for i := range r.Inputs {
		in := &r.Inputs[i]
		info, ok := byName[in.Name]
		if !ok {
			return fmt.Errorf("input %q is not in the model's metadata (inputs: %s)", in.Name, strings.Join(names, ", "))
		}
		if info.Datatype != in.Datatype {
			return fmt.Errorf("input %q is %s, the model wants %s", in.Name, in.Datatype, info.Datatype)
		}
		if err := checkV2Shape(in.Shape, info.Shape); err != nil {
			return fmt.Errorf("input %q: %v", in.Name, err)
		}
		delete(byName, in.Name)
	}
	for _, name := range names {
		if _, missing := byName[name]; missing {
			return fmt.Errorf("input %q of the model is missing from the payload", name)
		}
	}
	outs := map[string]bool{}
	var outNames []string
	for _, o := range meta.Outputs {
		outs[o.Name] = true
		outNames = append(outNames, o.Name)
	}
	for _, o := range r.Outputs {
		if len(meta.Outputs) > 0 && !outs[o.Name] {
			return fmt.Errorf("output %q is not in the model's metadata (outputs: %s)", o.Name, strings.Join(outNames, ", "))
		}
	}
	return nil
}

// checkV2Shape checks a tensor's shape against the model's, whose -1
// dimensions take any size. A model without a shape takes any.
func checkV2Shape(shape, want []int64) error {
	if want == nil {
		return nil
	}
	if len(shape) != len(want) {
		return fmt.Errorf("rank %d (shape %s) does not match the model's rank %d (shape %s)", len(shape), shape64String(shape), len(want), shape64String(want))
	}
	for i, d := range want {
		if d >= 0 && shape[i] != d {
			return fmt.Errorf("dimension %d is %d, the model wants %d (shape %s vs %s)", i, shape[i], d, shape64String(shape), shape64String(want))
		}
	}
	return nil
}
