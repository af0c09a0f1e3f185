package profile

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// wireReader walks protobuf wire format in a file (or any io.ReaderAt)
// through a small window, so that a trace of any size is read in constant
// memory. A message is walked field by field: next returns each field's
// number and type, and the caller reads the value (varint, str), walks
// into it (a message: its end is pos+len), or skips it. Errors are sticky:
// after one, every read returns zero values and err says what went wrong.
type wireReader struct {
	src  io.ReaderAt
	end  int64  // bytes readable: the section's end
	buf  []byte // window onto src
	base int64  // offset in src of buf[0]
	pos  int64  // offset in src of the next byte
	err  error
}

// wireWindow is the size of a wireReader's window.
const wireWindow = 1 << 20

func newWireReader(src io.ReaderAt, start, end int64) *wireReader {
	return newWireReaderSize(src, start, end, wireWindow)
}

func newWireReaderSize(src io.ReaderAt, start, end int64, window int) *wireReader {
	return &wireReader{src: src, pos: start, base: start, end: end, buf: make([]byte, 0, window)}
}

// errTruncated is a field that claims more bytes than its message has.
var errTruncated = errors.New("truncated: a field runs past the end of its message")

func (w *wireReader) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// fill makes at least n bytes from pos available in the window (fewer at
// the end of the section) and returns them.
func (w *wireReader) fill(n int) []byte {
	off := int(w.pos - w.base)
	if off >= 0 && off+n <= len(w.buf) {
		return w.buf[off:]
	}
	if off >= 0 && off <= len(w.buf) {
		// Keep what is left of the window, read behind it.
		rest := copy(w.buf[:cap(w.buf)], w.buf[off:])
		w.buf, w.base = w.buf[:rest], w.pos
	} else {
		w.buf, w.base = w.buf[:0], w.pos
	}
	want := min(int64(cap(w.buf)), w.end-w.base)
	for int64(len(w.buf)) < want {
		got, err := w.src.ReadAt(w.buf[len(w.buf):want], w.base+int64(len(w.buf)))
		w.buf = w.buf[:len(w.buf)+got]
		if err != nil && int64(len(w.buf)) < want {
			if err == io.EOF {
				err = errTruncated
			}
			w.fail(err)
			break
		}
	}
	return w.buf
}

// varint reads one varint.
func (w *wireReader) varint() uint64 {
	if w.err != nil {
		return 0
	}
	b := w.fill(binaryMaxVarintLen)
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		if len(b) < binaryMaxVarintLen && w.err == nil {
			w.fail(errTruncated)
		} else {
			w.fail(fmt.Errorf("at byte %d: %w", w.pos, protowire.ParseError(n)))
		}
		return 0
	}
	w.pos += int64(n)
	return v
}

const binaryMaxVarintLen = 10

// next reads the tag of the next field of a message that ends at end, and
// reports false at the end of the message (or after an error).
func (w *wireReader) next(end int64) (protowire.Number, protowire.Type, bool) {
	if w.err != nil || w.pos >= end {
		if w.pos > end {
			w.fail(errTruncated)
		}
		return 0, 0, false
	}
	num, typ := protowire.DecodeTag(w.varint())
	if w.err == nil && num < protowire.MinValidNumber {
		w.fail(fmt.Errorf("at byte %d: invalid field number %d", w.pos, num))
	}
	return num, typ, w.err == nil
}

// length reads the length of a bytes field and returns where it ends.
func (w *wireReader) length(end int64) int64 {
	n := w.varint()
	if w.err == nil && n > uint64(end-w.pos) {
		w.fail(errTruncated)
	}
	if w.err != nil {
		return w.pos
	}
	return w.pos + int64(n)
}

// skip skips the value of a field of type typ in a message that ends at end.
func (w *wireReader) skip(typ protowire.Type, end int64) {
	switch typ {
	case protowire.VarintType:
		w.varint()
	case protowire.Fixed32Type:
		w.seek(w.pos+4, end)
	case protowire.Fixed64Type:
		w.seek(w.pos+8, end)
	case protowire.BytesType:
		w.seek(w.length(end), end)
	default:
		w.fail(fmt.Errorf("at byte %d: unexpected wire type %d", w.pos, typ))
	}
}

// skipField skips the value of field num of type typ, groups included
// (proto2's, which proto.Unmarshal keeps as unknown fields).
func (w *wireReader) skipField(num protowire.Number, typ protowire.Type, end int64) {
	w.skipNested(num, typ, end, 0)
}

// maxGroupDepth is proto.Unmarshal's limit of nesting.
const maxGroupDepth = 10_000

func (w *wireReader) skipNested(num protowire.Number, typ protowire.Type, end int64, depth int) {
	if typ != protowire.StartGroupType {
		w.skip(typ, end)
		return
	}
	if depth >= maxGroupDepth {
		w.fail(fmt.Errorf("at byte %d: groups nested too deep", w.pos))
		return
	}
	for {
		inner, ityp, ok := w.next(end)
		switch {
		case !ok:
			w.fail(errTruncated)
			return
		case ityp == protowire.EndGroupType:
			if inner != num {
				w.fail(fmt.Errorf("at byte %d: group %d ended as %d", w.pos, num, inner))
			}
			return
		}
		w.skipNested(inner, ityp, end, depth+1)
	}
}

// seek moves to to, which must not be past end.
func (w *wireReader) seek(to, end int64) {
	if to > end {
		w.fail(errTruncated)
		return
	}
	w.pos = to
}

// str reads a bytes field as a string.
func (w *wireReader) str(end int64) string {
	stop := w.length(end)
	if w.err != nil {
		return ""
	}
	n := int(stop - w.pos)
	if n <= cap(w.buf) {
		b := w.fill(n)
		if w.err != nil {
			return ""
		}
		w.pos = stop
		return string(b[:n])
	}
	b := make([]byte, n)
	if _, err := w.src.ReadAt(b, w.pos); err != nil {
		w.fail(err)
		return ""
	}
	w.pos = stop
	return string(b)
}
