package sim

import (
	"bytes"
	"encoding/json"

	"github.com/loadprof/loadprof/payloads"
)

// ExampleBody returns a TF Serving REST predict body of rows rows that
// fits s: what `loadprof demo` sends, whatever --input made the signature.
// Inputs whose first dimension is the batch (-1) go in the row format
// ("instances"); a signature with an input that has no batch dimension
// gets the columnar format ("inputs"), shapes taken as they are. Unknown
// sizes (-1) beyond the batch are 3; values are 1.5, 1, true or "hello" by
// dtype.
func (s Signature) ExampleBody(rows int) []byte {
	batched := true
	for _, in := range s.Inputs {
		if len(in.Shape) == 0 || in.Shape[0] != -1 {
			batched = false
		}
	}
	var b bytes.Buffer
	b.WriteString("{")
	if s.Name != "" && s.Name != DefaultSignature().Name {
		name, _ := json.Marshal(s.Name)
		b.WriteString(`"signature_name": ` + string(name) + ", ")
	}
	if batched {
		b.WriteString(`"instances": [`)
		for r := 0; r < rows; r++ {
			if r > 0 {
				b.WriteString(", ")
			}
			if len(s.Inputs) == 1 {
				writeExample(&b, s.Inputs[0], s.Inputs[0].Shape[1:])
				continue
			}
			writeObject(&b, s.Inputs, func(in TensorSpec) []int64 { return in.Shape[1:] })
		}
		b.WriteString("]}")
		return b.Bytes()
	}
	b.WriteString(`"inputs": `)
	writeObject(&b, s.Inputs, func(in TensorSpec) []int64 { return in.Shape })
	b.WriteString("}")
	return b.Bytes()
}

func writeObject(b *bytes.Buffer, inputs []TensorSpec, shape func(TensorSpec) []int64) {
	b.WriteString("{")
	for i, in := range inputs {
		if i > 0 {
			b.WriteString(", ")
		}
		name, _ := json.Marshal(in.Name)
		b.Write(name)
		b.WriteString(": ")
		writeExample(b, in, shape(in))
	}
	b.WriteString("}")
}

// writeExample writes a value of in's dtype with the given shape.
func writeExample(b *bytes.Buffer, in TensorSpec, shape []int64) {
	if len(shape) == 0 {
		switch dtypeKinds[in.DType] {
		case payloads.StringLeaves:
			b.WriteString(`"hello"`)
		case payloads.BoolLeaves:
			b.WriteString("true")
		default:
			if in.DType == "DT_FLOAT" || in.DType == "DT_DOUBLE" {
				b.WriteString("1.5")
			} else {
				b.WriteString("1")
			}
		}
		return
	}
	n := shape[0]
	if n < 0 {
		n = 3
	}
	b.WriteString("[")
	for i := int64(0); i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		writeExample(b, in, shape[1:])
	}
	b.WriteString("]")
}
