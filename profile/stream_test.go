package profile

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// chopped splits data into buffers of 1 to 7 bytes, so that every field
// and varint crosses buffer boundaries somewhere.
func chopped(data []byte, rng *rand.Rand) mem.BufferSlice {
	var out mem.BufferSlice
	for len(data) > 0 {
		n := min(1+rng.Intn(7), len(data))
		out = append(out, mem.SliceBuffer(data[:n]))
		data = data[n:]
	}
	return out
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leftovers lists the files in the run directory but the ones named.
func leftovers(t *testing.T, st Store) []string {
	t.Helper()
	entries, err := os.ReadDir(st.Dir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestResponseSinkWritesTheXSpaceBytesFromGRPCsBuffers(t *testing.T) {
	// The XSpace in two pieces (which merge), empty_trace between them and
	// tool data that the XSpace makes redundant.
	first := marshal(t, craftedSpace())
	second := marshal(t, &tfproto.XSpace{Hostnames: []string{"h"}, Planes: []*tfproto.XPlane{{Id: 9, Name: "/device:GPU:1"}}})
	var msg []byte
	msg = protowire.AppendTag(msg, responseXSpace, protowire.BytesType)
	msg = protowire.AppendBytes(msg, first)
	msg = append(msg, marshal(t, &tfproto.ProfileResponse{EmptyTrace: false, ToolData: []*tfproto.ProfileToolData{{Name: "x.trace.json.gz", Data: []byte("tool")}}})...)
	msg = protowire.AppendTag(msg, 99, protowire.Fixed32Type) // an unknown field
	msg = protowire.AppendFixed32(msg, 7)
	msg = protowire.AppendTag(msg, responseXSpace, protowire.BytesType)
	msg = protowire.AppendBytes(msg, second)

	st := Store{LogDir: t.TempDir(), Run: "run"}
	sink := &responseSink{store: st}
	if err := sink.receive(chopped(msg, rand.New(rand.NewSource(1)))); err != nil {
		t.Fatal(err)
	}
	if sink.xspace == nil || len(sink.tools) != 0 || sink.xspaceBytes != int64(len(first)+len(second)) {
		t.Fatalf("sink %+v", sink)
	}
	res := &Result{}
	if err := store(res, sink, &tfproto.ProfileRequest{}, Options{LogDir: st.LogDir, HostName: "host"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(st.Dir(), "host.xplane.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(append([]byte(nil), first...), second...)) || res.TraceBytes != int64(len(got)) {
		t.Fatalf("wrote %d bytes, want the %d the server sent", len(got), len(first)+len(second))
	}
	var space tfproto.XSpace
	if err := proto.Unmarshal(got, &space); err != nil || len(space.Planes) != 4 || len(space.Hostnames) != 1 {
		t.Fatalf("%v: %d planes", err, len(space.Planes))
	}
	if left := leftovers(t, st); len(left) != 1 || left[0] != "host.xplane.pb" {
		t.Fatalf("run directory holds %v", left)
	}
}

func TestResponseSinkWritesToolDataUnderSafeNamesOnly(t *testing.T) {
	msg := marshal(t, &tfproto.ProfileResponse{ToolData: []*tfproto.ProfileToolData{
		{Name: "good.xplane.pb", Data: marshal(t, craftedSpace())},
		{Name: "../escape.pb", Data: []byte("evil")},
		{Name: "tool.json", Data: []byte(`{"a": 1}`)},
	}})
	// data before name is legal too
	var late []byte
	late = protowire.AppendTag(late, toolDataData, protowire.BytesType)
	late = protowire.AppendBytes(late, []byte("late"))
	late = protowire.AppendTag(late, toolDataName, protowire.BytesType)
	late = protowire.AppendString(late, "late.txt")
	msg = protowire.AppendTag(msg, responseToolData, protowire.BytesType)
	msg = protowire.AppendBytes(msg, late)

	st := Store{LogDir: t.TempDir(), Run: "run"}
	sink := &responseSink{store: st}
	if err := sink.receive(chopped(msg, rand.New(rand.NewSource(2)))); err != nil {
		t.Fatal(err)
	}
	res := &Result{}
	err := store(res, sink, &tfproto.ProfileRequest{}, Options{LogDir: st.LogDir, HostName: "host"})
	if err == nil || !strings.Contains(err.Error(), "path separator") || len(res.Files) != 3 || res.Saved != SavedLocal {
		t.Fatalf("err %v, files %v", err, res.Files)
	}
	for name, want := range map[string]string{"tool.json": `{"a": 1}`, "late.txt": "late"} {
		if got, err := os.ReadFile(filepath.Join(st.Dir(), name)); err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
	}
	if left := leftovers(t, st); len(left) != 3 {
		t.Fatalf("run directory holds %v", left)
	}
	if got := res.TraceFiles(); len(got) != 1 || filepath.Base(got[0]) != "good.xplane.pb" {
		t.Fatalf("trace files %v", got)
	}
}

func TestResponseSinkWritesNothingForAnEmptyTraceOrGarbage(t *testing.T) {
	st := Store{LogDir: t.TempDir(), Run: "run"}
	empty := marshal(t, &tfproto.ProfileResponse{EmptyTrace: true, Xspace: craftedSpace()})
	sink := &responseSink{store: st}
	if err := sink.receive(chopped(empty, rand.New(rand.NewSource(3)))); err != nil || !sink.emptyTrace || sink.xspace != nil {
		t.Fatalf("empty trace: %v, sink %+v", err, sink)
	}
	noPlanes := marshal(t, &tfproto.ProfileResponse{Xspace: &tfproto.XSpace{Hostnames: []string{"h"}}})
	sink = &responseSink{store: st}
	if err := sink.receive(chopped(noPlanes, rand.New(rand.NewSource(4)))); err != nil || sink.xspace != nil {
		t.Fatalf("no planes: %v, sink %+v", err, sink)
	}
	full := marshal(t, &tfproto.ProfileResponse{Xspace: craftedSpace()})
	for _, garbage := range [][]byte{
		{0x32, 0x7f, 0x0a, 0x03, 'a', 'b'}, // tool_data longer than the message
		full[:len(full)-3],                 // a truncated XSpace
		{0x42, 0x03, 0x0a, 0x05, 0x00},     // a plane longer than its XSpace
		{0x43},                             // a group that never ends
	} {
		sink := &responseSink{store: st}
		if err := sink.receive(chopped(garbage, rand.New(rand.NewSource(5)))); err == nil {
			t.Fatalf("% x: accepted", garbage)
		}
		sink.discard()
	}
	if left := leftovers(t, st); len(left) != 0 {
		t.Fatalf("run directory holds %v", left)
	}
}
