package load

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A ResponseCheck reports why a serialized response message is not a valid
// answer, or nil when it is. It runs on every response, so it must not
// allocate when the answer is valid.
type ResponseCheck func(msg []byte) error

// maxWireDepth bounds the nesting a response may have; it stops a hostile
// answer from recursing without end through a self-referencing message type.
const maxWireDepth = 64

// wireKind is how a field's value must be encoded.
type wireKind uint8

const (
	wireUnknown wireKind = iota // not a field of the message: any well-formed value
	wireVarint
	wireFixed32
	wireFixed64
	wireBytes
	wireString // bytes that must be UTF-8 (proto3 strings)
	wireMessage
	wireGroup
)

// fieldSchema is what a field number accepts.
type fieldSchema struct {
	kind   wireKind
	packed bool // a repeated scalar: its values may also come packed in one bytes field
	msg    *messageSchema
}

// messageSchema is a message descriptor reduced to what the wire check
// needs, indexed by field number so that the check does no map look-ups.
type messageSchema struct {
	name   protoreflect.FullName
	fields []fieldSchema // by field number; wireUnknown where there is none
}

// NewResponseCheck returns a check that a response parses as message type
// md: every field of md has a wire type its kind allows, nested messages
// parse as their types, proto3 strings are UTF-8. Fields md does not know
// are accepted when well formed, as proto3 parsers do.
func NewResponseCheck(md protoreflect.MessageDescriptor) ResponseCheck {
	schema := compileSchema(md, map[protoreflect.FullName]*messageSchema{})
	return func(msg []byte) error {
		if err := schema.check(msg, 0); err != nil {
			return fmt.Errorf("not a %s: %w", md.FullName(), err)
		}
		return nil
	}
}

func compileSchema(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*messageSchema) *messageSchema {
	if s, ok := seen[md.FullName()]; ok {
		return s
	}
	s := &messageSchema{name: md.FullName()}
	seen[md.FullName()] = s
	fields := md.Fields()
	maxNum := protowire.Number(0)
	for i := 0; i < fields.Len(); i++ {
		maxNum = max(maxNum, fields.Get(i).Number())
	}
	s.fields = make([]fieldSchema, maxNum+1)
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		f := fieldSchema{packed: fd.IsList()}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind,
			protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
			f.kind = wireVarint
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.kind = wireFixed32
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.kind = wireFixed64
		case protoreflect.StringKind:
			f.kind, f.packed = wireBytes, false
			if fd.ParentFile() != nil && fd.ParentFile().Syntax() == protoreflect.Proto3 {
				f.kind = wireString
			}
		case protoreflect.BytesKind:
			f.kind, f.packed = wireBytes, false
		case protoreflect.MessageKind:
			f.kind, f.packed, f.msg = wireMessage, false, compileSchema(fd.Message(), seen)
		case protoreflect.GroupKind:
			f.kind, f.packed = wireGroup, false
		}
		s.fields[fd.Number()] = f
	}
	return s
}

// check walks msg field by field. It allocates only to describe a failure.
func (s *messageSchema) check(msg []byte, depth int) error {
	if depth > maxWireDepth {
		return &wireError{in: s.name, err: fmt.Errorf("nested more than %d deep", maxWireDepth)}
	}
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return s.wireErr(0, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return s.wireErr(0, fmt.Errorf("field number %d is out of range", num))
		}
		msg = msg[n:]
		var f fieldSchema
		if int(num) < len(s.fields) {
			f = s.fields[num]
		}
		if typ == protowire.EndGroupType {
			return s.wireErr(num, errors.New("end of group outside a group"))
		}
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			return s.wireErr(num, protowire.ParseError(n))
		}
		value := msg[:n]
		msg = msg[n:]
		if f.kind == wireUnknown {
			continue
		}
		if err := s.checkValue(num, f, typ, value, depth); err != nil {
			return err
		}
	}
	return nil
}

// checkValue checks one well-formed value (as ConsumeFieldValue delimits
// it, so length prefixes are still on it) against its field.
func (s *messageSchema) checkValue(num protowire.Number, f fieldSchema, typ protowire.Type, value []byte, depth int) error {
	want := protowire.BytesType
	switch f.kind {
	case wireVarint:
		want = protowire.VarintType
	case wireFixed32:
		want = protowire.Fixed32Type
	case wireFixed64:
		want = protowire.Fixed64Type
	case wireGroup:
		want = protowire.StartGroupType
	}
	if typ == want {
		switch f.kind {
		case wireString, wireMessage:
			b, _ := protowire.ConsumeBytes(value)
			if f.kind == wireMessage {
				err := f.msg.check(b, depth+1)
				if err != nil {
					err.(*wireError).path = append([]protowire.Number{num}, err.(*wireError).path...)
				}
				return err
			}
			if !utf8.Valid(b) {
				return s.wireErr(num, errors.New("string is not UTF-8"))
			}
		}
		return nil
	}
	if !f.packed || typ != protowire.BytesType {
		return s.wireErr(num, fmt.Errorf("encoded as %s, the field's type is %s", wireTypeName(typ), wireTypeName(want)))
	}
	packed, _ := protowire.ConsumeBytes(value)
	switch f.kind {
	case wireFixed32:
		if len(packed)%4 == 0 {
			return nil
		}
	case wireFixed64:
		if len(packed)%8 == 0 {
			return nil
		}
	case wireVarint:
		for len(packed) > 0 {
			_, n := protowire.ConsumeVarint(packed)
			if n < 0 {
				return s.wireErr(num, protowire.ParseError(n))
			}
			packed = packed[n:]
		}
		return nil
	}
	return s.wireErr(num, errors.New("packed values do not fill the field"))
}

func (s *messageSchema) wireErr(num protowire.Number, err error) error {
	e := &wireError{in: s.name, err: err}
	if num != 0 {
		e.path = []protowire.Number{num}
	}
	return e
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "a varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType:
		return "a group"
	}
	return fmt.Sprintf("wire type %d", t)
}

// wireError says where in a message its encoding went wrong.
type wireError struct {
	path []protowire.Number // field numbers from the outer message in
	in   protoreflect.FullName
	err  error
}

func (e *wireError) Error() string {
	if len(e.path) == 0 {
		return e.err.Error()
	}
	var b strings.Builder
	b.WriteString("field ")
	for i, n := range e.path {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, n)
	}
	fmt.Fprintf(&b, " (in %s): %v", e.in, e.err)
	return b.String()
}

func (e *wireError) Unwrap() error { return e.err }

// Field numbers of TF Serving's PredictResponse that the Predict check reads.
const (
	predictOutputsField = 1 // PredictResponse.outputs, map<string, TensorProto>
	mapEntryValueField  = 2 // the value of a map entry
	tensorDtypeField    = 1 // TensorProto.dtype
)

// PredictResponseCheck returns the check for TF Serving's Predict: the
// answer parses as a tensorflow.serving.PredictResponse and carries at
// least one output tensor whose dtype is a known DataType. The second part
// catches another message type whose bytes happen to parse (an empty
// message parses as anything).
func PredictResponseCheck() ResponseCheck {
	wire := NewResponseCheck((&tfproto.PredictResponse{}).ProtoReflect().Descriptor())
	dtypes := tfproto.DataType(0).Descriptor().Values()
	return func(msg []byte) error {
		if err := wire(msg); err != nil {
			return err
		}
		if !hasValidOutput(msg, dtypes) {
			return errors.New("a tensorflow.serving.PredictResponse without an output tensor of a known dtype")
		}
		return nil
	}
}

// hasValidOutput reports whether a PredictResponse that passed the wire
// check has an output tensor with a dtype in dtypes other than DT_INVALID.
func hasValidOutput(msg []byte, dtypes protoreflect.EnumValueDescriptors) bool {
	for entry := range lengthDelimited(msg, predictOutputsField) {
		// A singular message field that occurs more than once is merged, so
		// the dtype is the last one in any occurrence of the value.
		var dtype uint64
		for tensor := range lengthDelimited(entry, mapEntryValueField) {
			dtype = lastVarint(tensor, tensorDtypeField, dtype)
		}
		if dtype != 0 && dtype < 1<<31 && dtypes.ByNumber(protoreflect.EnumNumber(dtype)) != nil {
			return true
		}
	}
	return false
}

// lengthDelimited yields the values of length-delimited field num in msg,
// which passed a wire check.
func lengthDelimited(msg []byte, num protowire.Number) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(msg) > 0 {
			fieldNum, typ, n := protowire.ConsumeTag(msg)
			msg = msg[n:]
			n = protowire.ConsumeFieldValue(fieldNum, typ, msg)
			value := msg[:n]
			msg = msg[n:]
			if fieldNum == num && typ == protowire.BytesType {
				b, _ := protowire.ConsumeBytes(value)
				if !yield(b) {
					return
				}
			}
		}
	}
}

// lastVarint returns the last value of varint field num in msg, which passed
// a wire check, or def when there is none.
func lastVarint(msg []byte, num protowire.Number, def uint64) uint64 {
	for len(msg) > 0 {
		fieldNum, typ, n := protowire.ConsumeTag(msg)
		msg = msg[n:]
		n = protowire.ConsumeFieldValue(fieldNum, typ, msg)
		if fieldNum == num && typ == protowire.VarintType {
			def, _ = protowire.ConsumeVarint(msg[:n])
		}
		msg = msg[n:]
	}
	return def
}
