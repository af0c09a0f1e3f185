package report

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHlogMarksTheWindowInTheSecondItChangedIn: a second is closed late,
// when a request of the next one finishes; the window opened 3 ms into
// second 1, before second 0 was closed. The comment must name second 1,
// not 0, which would put the window in the warm-up (review).
func TestHlogMarksTheWindowInTheSecondItChangedIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.hlog")
	w, err := NewHlogWriter("--hlog", path, time.Unix(1_795_000_000, 0), true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	open, since := false, time.Duration(0)
	w.WatchWindow(func() (bool, time.Duration) { return open, since })
	w.Add(true, 1000)
	open, since = true, 1003*time.Millisecond
	w.Interval(0) // closed at 1.005 s, after the window opened
	w.Add(false, 1000)
	w.Interval(1)
	open, since = false, 2500*time.Millisecond
	w.Add(false, 1000)
	w.Interval(2)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	if !strings.Contains(log, "#[Profile window opened in the second starting at 1.000]") || strings.Contains(log, "opened in the second starting at 0.000") ||
		!strings.Contains(log, "#[Profile window closed in the second starting at 2.000]") {
		t.Fatalf("log:\n%s", log)
	}
}
