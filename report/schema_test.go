package report

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/profile"
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
	"llm_histograms":   reflect.TypeOf(LLMHistograms{}),
	"llm_slice":        reflect.TypeOf(LLMSlice{}),
	"second":           reflect.TypeOf(Second{}),
	"second_histogram": reflect.TypeOf(SecondHistogram{}),
	"client":           reflect.TypeOf(ClientStats{}),
	"units":            reflect.TypeOf(Units{}),
	"build":            reflect.TypeOf(BuildInfo{}),
	"host":             reflect.TypeOf(HostInfo{}),
	"merged_input":     reflect.TypeOf(MergedInput{}),
	"worker":           reflect.TypeOf(WorkerReport{}),
	"span":             reflect.TypeOf(Span{}),
	"goodput":          reflect.TypeOf(Goodput{}),
	"profile":          reflect.TypeOf(ProfileReport{}),
	"op":               reflect.TypeOf(profile.Op{}),
	"plane_stats":      reflect.TypeOf(profile.PlaneStats{}),
	"timeline":         reflect.TypeOf(profile.Timeline{}),
	"http_window":      reflect.TypeOf(profile.HTTPWindow{}),
	"clock":            reflect.TypeOf(profile.ClockEstimate{}),
	"latency_split":    reflect.TypeOf(profile.LatencySplit{}),
	"percentiles":      reflect.TypeOf(profile.Percentiles{}),
	"server":           reflect.TypeOf(ServerReport{}),
	"server_window":    reflect.TypeOf(ServerWindow{}),
	"server_latency":   reflect.TypeOf(ServerLatency{}),
	"server_quantile":  reflect.TypeOf(ServerQuantile{}),
	"server_family":    reflect.TypeOf(ServerFamily{}),
	"server_interval":  reflect.TypeOf(ServerInterval{}),
	"server_endpoint":  reflect.TypeOf(ServerEndpoint{}),
	"server_raw":       reflect.TypeOf(ServerRaw{}),
	"sweep":            reflect.TypeOf(SweepResult{}),
	"step":             reflect.TypeOf(StepResult{}),
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
		out = append(out, goField{name: name, typ: f.Type, omitempty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")})
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
	doc := testkit.ReadSchema(t, schemaPath)
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
			if want := docType(f.typ, f.name); k.Type != want {
				t.Errorf("%s.%s: documented as %q, written as %q", section, f.name, k.Type, want)
			}
			if (k.Present == "optional") != f.omitempty {
				t.Errorf("%s.%s: documented %s, but omitempty is %v", section, f.name, k.Present, f.omitempty)
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
