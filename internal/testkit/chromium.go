package testkit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Chromium returns the Chromium to render pages with (LOADPROF_CHROMIUM, or
// chromium on the PATH), or skips the test without one.
func Chromium(t *testing.T) string {
	if p := os.Getenv("LOADPROF_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium (scripts/test.sh installs Debian's chromium and sets LOADPROF_CHROMIUM)")
	return ""
}

// Headless runs Chromium headless on args and returns what it printed.
func Headless(t *testing.T, bin string, args ...string) []byte {
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(), "--window-size=1000,2400"}
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// PageDOM renders page in headless Chromium and returns the DOM after its
// scripts ran, failing on any script error; it saves a screenshot beside
// the page (LOADPROF_SCREENSHOTS, when set, names a directory to keep it).
func PageDOM(t *testing.T, page string) string {
	t.Helper()
	bin := Chromium(t)
	dom := string(Headless(t, bin, "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-errors=""`) || !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page reported script errors: %s", regexp.MustCompile(`data-errors="[^"]*"`).FindString(dom))
	}
	shot := strings.TrimSuffix(page, ".html") + ".png"
	if dir := os.Getenv("LOADPROF_SCREENSHOTS"); dir != "" {
		shot = filepath.Join(dir, filepath.Base(shot))
	}
	Headless(t, bin, "--screenshot="+shot, "--window-size=1100,6000", "file://"+page)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	return dom
}

// DOMAttr returns attribute name of the element with id in dom.
func DOMAttr(t *testing.T, dom, id, name string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*` + name + `="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no %s on #%s in the rendered page", name, id)
	}
	return m[1]
}

// DOMCells returns the data-stat cells of the row whose attr is value.
func DOMCells(dom, attr, value string) map[string]string {
	row := regexp.MustCompile(`<tr ` + attr + `="` + regexp.QuoteMeta(value) + `"[^>]*>(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil {
		return nil
	}
	cells := map[string]string{}
	for _, m := range regexp.MustCompile(`data-stat="([^"]+)">([^<]*)<`).FindAllStringSubmatch(row[1], -1) {
		cells[m[1]] = m[2]
	}
	return cells
}
