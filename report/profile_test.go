package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/profile"
)

func TestProfileSummarySaysACapturedTraceWasNotWritten(t *testing.T) {
	var b bytes.Buffer
	WriteProfileSummary(&b, &ProfileReport{Result: &profile.Result{Run: "r", Saved: profile.SavedNone, NotWritten: []string{"tb/plugins/profile/r/h.xplane.pb"}},
		Error: "profile h: the trace was captured but could not be written: permission denied"})
	out := b.String()
	if !strings.Contains(out, "server trace captured but NOT written to tb/plugins/profile/r/h.xplane.pb") || strings.Contains(out, "no server trace was captured") {
		t.Fatalf("summary:\n%s", out)
	}
}
