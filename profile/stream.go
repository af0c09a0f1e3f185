package profile

import (
	"fmt"
	"io"
	"os"
	"sort"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// streamCodec sends requests as protobuf and hands a ProfileResponse, as
// gRPC's buffers, to a responseSink instead of decoding it.
type streamCodec struct{}

func (streamCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("streamCodec: cannot send a %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (streamCodec) Unmarshal(data mem.BufferSlice, v any) error {
	sink, ok := v.(*responseSink)
	if !ok {
		return fmt.Errorf("streamCodec: cannot receive into a %T", v)
	}
	return sink.receive(data)
}

// Name is empty so that the call's content-type stays "application/grpc",
// what TensorFlow's own client sends (a codec's name would be appended).
func (streamCodec) Name() string { return "" }

var _ encoding.CodecV2 = streamCodec{}

// Field numbers of profiler_service.proto (TensorFlow 2.21's
// tsl/profiler/protobuf/profiler_service.proto, as in proto/).
const (
	responseToolData   = 6 // repeated ProfileToolData
	responseEmptyTrace = 7 // bool
	responseXSpace     = 8 // tensorflow.profiler.XSpace
	toolDataName       = 1 // string
	toolDataData       = 2 // bytes
)

// responseSink is a ProfileResponse received to disk: the XSpace and tool
// data are written, from gRPC's buffers, to temporary files in the run's
// directory, which store commits under their names once the call has
// succeeded. Nothing is decoded but the response's own fields, and the
// XSpace's top level to see whether it has planes.
type responseSink struct {
	store       Store
	emptyTrace  bool
	xspace      *os.File // the XSpace, when it has planes
	xspaceBytes int64
	tools       []toolFile
	refused     []error // tool data under names that are not plain file names
	localErr    error   // writing on this machine failed (not the server's fault)
}

type toolFile struct {
	name string
	file *os.File
}

// receive reads a response from gRPC's buffers, which are only valid
// during the call.
func (s *responseSink) receive(data mem.BufferSlice) error {
	src := newBufferAt(data)
	size := int64(data.Len())
	w := newWireReaderSize(src, 0, size, 4096)
	var xspace [][2]int64 // the message may come in pieces: they merge
	type tool struct {
		name string
		data [2]int64
	}
	var tools []tool
	for num, typ, ok := w.next(size); ok; num, typ, ok = w.next(size) {
		switch {
		case num == responseEmptyTrace && typ == protowire.VarintType:
			s.emptyTrace = w.varint() != 0
		case num == responseXSpace && typ == protowire.BytesType:
			end := w.length(size)
			xspace = append(xspace, [2]int64{w.pos, end})
			w.seek(end, size)
		case num == responseToolData && typ == protowire.BytesType:
			end := w.length(size)
			var t tool
			for num, typ, ok := w.next(end); ok; num, typ, ok = w.next(end) {
				switch {
				case num == toolDataName && typ == protowire.BytesType:
					t.name = w.str(end)
				case num == toolDataData && typ == protowire.BytesType:
					dend := w.length(end)
					t.data = [2]int64{w.pos, dend}
					w.seek(dend, end)
				default:
					w.skipField(num, typ, end)
				}
			}
			tools = append(tools, t)
		default:
			w.skipField(num, typ, size)
		}
	}
	if w.err != nil {
		return fmt.Errorf("not a ProfileResponse: %w", w.err)
	}
	if s.emptyTrace {
		return nil // nothing worth a file
	}
	planes, err := countPlanes(src, xspace)
	if err != nil {
		return err
	}
	if planes > 0 {
		// As before streaming: the XSpace, when it has planes, is the
		// trace; tool data beside it are not written.
		f, n, err := s.write(src, xspace)
		s.xspace, s.xspaceBytes = f, n
		return err
	}
	for _, t := range tools {
		if err := SafeName(t.name); err != nil {
			s.refused = append(s.refused, fmt.Errorf("refusing to write a trace file from the server: %w", err))
			continue
		}
		f, _, err := s.write(src, [][2]int64{t.data})
		if err != nil {
			return err
		}
		s.tools = append(s.tools, toolFile{t.name, f})
	}
	return nil
}

// countPlanes counts XSpace.planes in the pieces of an XSpace, skipping
// over their contents.
func countPlanes(src io.ReaderAt, pieces [][2]int64) (int, error) {
	n := 0
	for _, p := range pieces {
		w := newWireReaderSize(src, p[0], p[1], 4096)
		for num, typ, ok := w.next(p[1]); ok; num, typ, ok = w.next(p[1]) {
			if num == xspacePlanes && typ == protowire.BytesType {
				n++
			}
			w.skipField(num, typ, p[1])
		}
		if w.err != nil {
			return 0, fmt.Errorf("not an XSpace: %w", w.err)
		}
	}
	return n, nil
}

// write writes the byte ranges of src to a new temporary file.
func (s *responseSink) write(src *bufferAt, ranges [][2]int64) (*os.File, int64, error) {
	f, err := s.store.Temp()
	if err != nil {
		s.localErr = err
		return nil, 0, err
	}
	var n int64
	for _, r := range ranges {
		if err := src.writeRange(f, r[0], r[1]); err != nil {
			f.Close()
			os.Remove(f.Name())
			s.localErr = err
			return nil, 0, err
		}
		n += r[1] - r[0]
	}
	return f, n, nil
}

// discard removes the temporary files not committed.
func (s *responseSink) discard() {
	if s == nil {
		return
	}
	files := []*os.File{s.xspace}
	for _, t := range s.tools {
		files = append(files, t.file)
	}
	for _, f := range files {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	s.xspace, s.tools = nil, nil
}

// bufferAt reads gRPC's buffers of one message as one byte sequence.
type bufferAt struct {
	bufs  mem.BufferSlice
	start []int64 // offset of each buffer
}

func newBufferAt(bufs mem.BufferSlice) *bufferAt {
	b := &bufferAt{bufs: bufs, start: make([]int64, len(bufs))}
	var off int64
	for i, buf := range bufs {
		b.start[i] = off
		off += int64(buf.Len())
	}
	return b
}

// at returns the buffer that holds offset off and off's place in it.
func (b *bufferAt) at(off int64) (int, int) {
	i := sort.Search(len(b.start), func(i int) bool { return b.start[i] > off }) - 1
	if i < 0 {
		return 0, 0
	}
	return i, int(off - b.start[i])
}

func (b *bufferAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for i, in := b.at(off); n < len(p) && i < len(b.bufs); i, in = i+1, 0 {
		data := b.bufs[i].ReadOnlyData()
		if in < len(data) {
			n += copy(p[n:], data[in:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// writeRange writes bytes [from, to) to w straight from the buffers.
func (b *bufferAt) writeRange(w io.Writer, from, to int64) error {
	for i, in := b.at(from); from < to && i < len(b.bufs); i, in = i+1, 0 {
		data := b.bufs[i].ReadOnlyData()
		if in >= len(data) {
			continue
		}
		data = data[in:]
		if int64(len(data)) > to-from {
			data = data[:to-from]
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		from += int64(len(data))
	}
	if from < to {
		return io.ErrUnexpectedEOF
	}
	return nil
}
