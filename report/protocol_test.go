package report

import (
	"bytes"
	"strings"
	"testing"
)

// A run's protocol reaches its summary heading, a comparison of runs of
// different protocols notes it, and a merge keeps each run's.
func TestProtocolInHeadingCompareAndMerge(t *testing.T) {
	for _, c := range []struct{ transport, target, protocol, want string }{
		{"rest", "http://h:8000/v2/models/m/infer", ProtocolV2, "loadprof run: REST http://h:8000/v2/models/m/infer (V2; closed loop; latency from intended send time)"},
		{"rest", "http://h:8000/v2/models/m/infer", ProtocolV2Binary, "loadprof run: REST http://h:8000/v2/models/m/infer (V2, binary; closed loop; latency from intended send time)"},
		{"grpc", "grpc://h:8001 model m (V2)", ProtocolV2, "loadprof run: GRPC grpc://h:8001 model m (V2; closed loop; latency from intended send time)"},
		{"grpc", "grpc://h:8001 model m (V2)", ProtocolV2Raw, "loadprof run: GRPC grpc://h:8001 model m (V2, raw; closed loop; latency from intended send time)"},
		{"rest", "http://h:8501/v1/models/m:predict", ProtocolTF, "loadprof run: REST http://h:8501/v1/models/m:predict (closed loop; latency from intended send time)"},
		{"rest", "http://h:8501/v1/models/m:predict", "", "loadprof run: REST http://h:8501/v1/models/m:predict (closed loop; latency from intended send time)"},
		// One parenthetical: the protocol, the load, where latency counts from.
		{"rest", "http://h:8000/v1/chat/completions", ProtocolOpenAI, "loadprof run: REST http://h:8000/v1/chat/completions (OpenAI-compatible; closed loop; latency from intended send time)"},
	} {
		r := crafted(t, 100, 10, 10, 0)
		r.Transport, r.Target, r.Protocol = c.transport, c.target, c.protocol
		var out strings.Builder
		WriteSummary(&out, r)
		if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(first, c.want) {
			t.Errorf("protocol %q: heading %q, want it to start %q", c.protocol, first, c.want)
		}
	}

	base, next := crafted(t, 1000, 100, 100, 0), crafted(t, 1000, 100, 100, 0)
	for _, r := range []*Result{base, next} {
		r.Loop, r.Transport, r.Config = "closed", "rest", map[string]any{"concurrency": "4"}
	}
	// A result without the field ran TF Serving's protocol.
	next.Protocol = ProtocolTF
	if notes := comparabilityNotes(base, next); len(notes) != 0 {
		t.Fatalf("tf and a result without protocol: notes %q", notes)
	}
	next.Protocol = ProtocolV2
	notes := strings.Join(comparabilityNotes(base, next), "|")
	if !strings.Contains(notes, "the protocols differ (base tf, new v2)") {
		t.Fatalf("tf and v2 compared: notes %q", notes)
	}

	merged, mergeNotes, err := Merge([]*Result{base, next}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if merged.Protocol != mixed || merged.MergedFrom[0].Protocol != ProtocolTF || merged.MergedFrom[1].Protocol != ProtocolV2 {
		t.Fatalf("merged protocol %q, inputs %q %q", merged.Protocol, merged.MergedFrom[0].Protocol, merged.MergedFrom[1].Protocol)
	}
	if !strings.Contains(strings.Join(mergeNotes, "|"), "differ in protocol") {
		t.Fatalf("merge notes %q", mergeNotes)
	}
	var out strings.Builder
	WriteSummary(&out, merged)
	if !strings.Contains(out.String(), "b.json") || !strings.Contains(out.String(), "(V2)") {
		t.Fatalf("merged summary:\n%s", out.String())
	}
}

// The compare page lists the protocol among the settings that differ when
// the runs' protocols do (beside the note the text compare prints too),
// and not for a result that predates the field against a TF Serving run.
func TestComparePageShowsTheProtocolRow(t *testing.T) {
	base, next := goldenResult(t), goldenResult(t)
	page := func() string {
		var buf bytes.Buffer
		if err := WriteCompareHTML(&buf, base, next, [2]string{"base.json", "new.json"}, CompareOptions{NoAssets: true}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	base.Protocol, next.Protocol = "", ProtocolTF
	if p := page(); strings.Contains(p, "<td>protocol</td>") || strings.Contains(p, "the protocols differ") {
		t.Fatal("a protocol row or note for tf against a result without the field")
	}
	next.Protocol = ProtocolV2Binary
	p := page()
	if !strings.Contains(p, "<tr><td>protocol</td><td>tf</td><td>v2-binary</td></tr>") {
		t.Errorf("no protocol row tf / v2-binary in the settings that differ:\n%s", p[strings.Index(p, `id="differ"`):][:400])
	}
	if !strings.Contains(p, "the protocols differ (base tf, new v2-binary)") {
		t.Error("no note that the protocols differ")
	}
}
