package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/sim"
)

// schemaPath is the published schema of result.json.
const schemaPath = "../docs/result-schema.md"

// schemaTypes are the objects the schema documents, by section.
var schemaTypes = map[string]reflect.Type{
	"result":           reflect.TypeOf(Result{}),
	"phases":           reflect.TypeOf(Phases{}),
	"phase":            reflect.TypeOf(Phase{}),
	"stats":            reflect.TypeOf(Stats{}),
	"slice":            reflect.TypeOf(Slice{}),
	"second":           reflect.TypeOf(load.Second{}),
	"second_histogram": reflect.TypeOf(SecondHistogram{}),
	"client":           reflect.TypeOf(ClientStats{}),
	"units":            reflect.TypeOf(Units{}),
	"build":            reflect.TypeOf(BuildInfo{}),
	"host":             reflect.TypeOf(HostInfo{}),
	"merged_input":     reflect.TypeOf(MergedInput{}),
	"profile":          reflect.TypeOf(ProfileReport{}),
	"op":               reflect.TypeOf(profile.Op{}),
	"plane_stats":      reflect.TypeOf(profile.PlaneStats{}),
	"timeline":         reflect.TypeOf(profile.Timeline{}),
	"clock":            reflect.TypeOf(profile.ClockEstimate{}),
	"latency_split":    reflect.TypeOf(profile.LatencySplit{}),
	"percentiles":      reflect.TypeOf(profile.Percentiles{}),
	"sweep":            reflect.TypeOf(SweepResult{}),
	"step":             reflect.TypeOf(StepResult{}),
}

type schemaKey struct {
	typ, present string
}

// readSchema reads the tables of the schema: section → key → type and
// presence.
func readSchema(t *testing.T) map[string]map[string]schemaKey {
	t.Helper()
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\| ([a-z_ ]+) \\| (always|nullable|optional) \\|")
	doc := map[string]map[string]schemaKey{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(name)
			doc[section] = map[string]schemaKey{}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			if _, dup := doc[section][m[1]]; dup {
				t.Errorf("schema: %s.%s is documented twice", section, m[1])
			}
			doc[section][m[1]] = schemaKey{typ: m[2], present: m[3]}
		} else if strings.HasPrefix(line, "| `") {
			t.Errorf("schema: a row the test cannot read: %s", line)
		}
	}
	return doc
}

type goField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

// jsonFields are the keys encoding/json writes for struct type ty.
func jsonFields(ty reflect.Type) []goField {
	var out []goField
	for i := range ty.NumField() {
		f := ty.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			e := f.Type
			if e.Kind() == reflect.Pointer {
				e = e.Elem()
			}
			out = append(out, jsonFields(e)...)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, goField{name: name, typ: f.Type, omitempty: strings.Contains(opts, "omitempty")})
	}
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// sectionOf is the schema section documenting struct type ty.
func sectionOf(ty reflect.Type) string {
	for name, st := range schemaTypes {
		if st == ty {
			return name
		}
	}
	return ""
}

// docType is the type column the schema must give a Go type.
func docType(ty reflect.Type, key string) string {
	if ty.Kind() == reflect.Pointer {
		ty = ty.Elem()
	}
	switch {
	case ty == timeType:
		return "time"
	case key == "config":
		return "config"
	}
	switch ty.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Map:
		return "object"
	case reflect.Slice:
		if e := ty.Elem(); e.Kind() == reflect.Struct {
			return "array of " + sectionOf(e)
		}
		return "array"
	case reflect.Struct:
		return sectionOf(ty)
	}
	return ty.String()
}

func TestSchemaDocumentsEveryKeyTheCodeWrites(t *testing.T) {
	doc := readSchema(t)
	// Every object reachable from a result or a sweep has its section.
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, from string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || ty == timeType || seen[ty] {
			return
		}
		seen[ty] = true
		if sectionOf(ty) == "" {
			t.Errorf("%s (in %s) has no section in the schema", ty, from)
		}
		for _, f := range jsonFields(ty) {
			walk(f.typ, ty.String()+"."+f.name)
		}
	}
	walk(reflect.TypeOf(SweepResult{}), "the sweep")
	for section, ty := range schemaTypes {
		keys, ok := doc[section]
		if !ok {
			t.Errorf("schema has no section %q", section)
			continue
		}
		written := map[string]bool{}
		for _, f := range jsonFields(ty) {
			written[f.name] = true
			k, ok := keys[f.name]
			if !ok {
				t.Errorf("%s.%s is written but not documented", section, f.name)
				continue
			}
			if want := docType(f.typ, f.name); k.typ != want {
				t.Errorf("%s.%s: documented as %q, written as %q", section, f.name, k.typ, want)
			}
			if (k.present == "optional") != f.omitempty {
				t.Errorf("%s.%s: documented %s, but omitempty is %v", section, f.name, k.present, f.omitempty)
			}
		}
		for key := range keys {
			if !written[key] {
				t.Errorf("%s.%s is documented but never written", section, key)
			}
		}
	}
	for section := range doc {
		if _, ok := schemaTypes[section]; !ok && len(doc[section]) > 0 {
			t.Errorf("schema section %q documents keys of no known object", section)
		}
	}
}

// checkAgainstSchema checks the JSON object v, documented in section,
// against the schema: every key is documented, every key that is always
// there is, and every value has its documented type.
func checkAgainstSchema(t *testing.T, doc map[string]map[string]schemaKey, section, path string, v any) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: want an object (%s), got %T", path, section, v)
		return
	}
	keys := doc[section]
	for k := range obj {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s.%s is in a real result but not documented in section %s", path, k, section)
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		sk := keys[k]
		val, ok := obj[k]
		if !ok {
			if sk.present != "optional" {
				t.Errorf("%s.%s is documented as %s but missing from a real result", path, k, sk.present)
			}
			continue
		}
		if val == nil {
			if sk.present != "nullable" {
				t.Errorf("%s.%s is null, documented as %s", path, k, sk.present)
			}
			continue
		}
		checkValue(t, doc, sk.typ, path+"."+k, val)
	}
}

func checkValue(t *testing.T, doc map[string]map[string]schemaKey, typ, path string, val any) {
	t.Helper()
	bad := func() { t.Errorf("%s: %#v is not a %s", path, val, typ) }
	switch typ {
	case "integer":
		if f, ok := val.(float64); !ok || f != math.Trunc(f) {
			bad()
		}
	case "number":
		if _, ok := val.(float64); !ok {
			bad()
		}
	case "string":
		if _, ok := val.(string); !ok {
			bad()
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			bad()
		}
	case "time":
		if s, ok := val.(string); !ok {
			bad()
		} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	case "object", "config":
		if _, ok := val.(map[string]any); !ok {
			bad()
		}
	case "array":
		if _, ok := val.([]any); !ok {
			bad()
		}
	default:
		if elem, ok := strings.CutPrefix(typ, "array of "); ok {
			list, ok := val.([]any)
			if !ok {
				bad()
				return
			}
			for i, e := range list {
				checkAgainstSchema(t, doc, elem, path+"["+strconv.Itoa(i)+"]", e)
			}
			return
		}
		checkAgainstSchema(t, doc, typ, path, val)
	}
}

func TestSchemaMatchesRealResults(t *testing.T) {
	doc := readSchema(t)
	// A profiled run with a warm-up and failures: every object but a
	// merge's and a sweep's.
	srv := startSim(t, sim.Config{Latency: sim.Latency{Fixed: time.Millisecond, ErrorRate: 0.1}})
	dir := t.TempDir()
	out := filepath.Join(dir, "run.json")
	_, err := Run(context.Background(), Config{
		URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body), Timeout: 5 * time.Second,
		Plan:     load.Plan{Rate: 200, WarmupDuration: 500 * time.Millisecond, Duration: 2 * time.Second, MaxInflight: 200},
		Profile:  profiled(srv, t.TempDir()),
		OutPath:  out,
		Settings: map[string]any{"rate": 200.0, "timeout": 5.0, "tls": false, "header": []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Profile == nil || run.Profile.Timeline == nil || run.Window == nil || run.SeriesHistograms == nil || run.Phases.Warmup.Histogram == "" || run.Host == nil {
		t.Fatalf("the run does not show every object: profile %v, window %v", run.Profile, run.Window)
	}
	// A merge of it with itself a second later, and a sweep of one step.
	later := *run
	later.StartedAt = later.StartedAt.Add(time.Second)
	merged, _, err := Merge([]*Result{run, &later}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	level := 200.0
	sweep := &SweepResult{Version: ResultVersion, Tool: run.Tool, Kind: "sweep", Loop: "open", Config: run.Config,
		Steps: []StepResult{{Level: level, Pass: true, Attempts: 1, Result: run}}, MaxPassing: &level, Stopped: "every step passed"}
	for _, c := range []struct {
		name, section string
		write         func(string) error
	}{
		{"run.json", "result", func(string) error { return nil }},
		{"merged.json", "result", merged.WriteJSON},
		{"sweep.json", "sweep", func(p string) error { return writeJSON("", p, sweep) }},
	} {
		path := filepath.Join(dir, c.name)
		if err := c.write(path); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		checkAgainstSchema(t, doc, c.section, c.name, v)
	}
}
