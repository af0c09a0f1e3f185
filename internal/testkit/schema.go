package testkit

import (
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SchemaKey is one documented key of an object: its type and whether it
// is always there, may be null or may be left out.
type SchemaKey struct {
	Type, Present string
}

// ReadSchema reads the tables of the result.json schema at path (a
// Markdown page, docs/result-schema.md): section → key → type and presence.
func ReadSchema(t *testing.T, path string) map[string]map[string]SchemaKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\| ([a-z_ ]+) \\| (always|nullable|optional) \\|")
	doc := map[string]map[string]SchemaKey{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(name)
			doc[section] = map[string]SchemaKey{}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			if _, dup := doc[section][m[1]]; dup {
				t.Errorf("schema: %s.%s is documented twice", section, m[1])
			}
			doc[section][m[1]] = SchemaKey{Type: m[2], Present: m[3]}
		} else if strings.HasPrefix(line, "| `") {
			t.Errorf("schema: a row the test cannot read: %s", line)
		}
	}
	return doc
}

// CheckAgainstSchema checks the JSON object v, documented in section,
// against the schema: every key is documented, every key that is always
// there is, and every value has its documented type.
func CheckAgainstSchema(t *testing.T, doc map[string]map[string]SchemaKey, section, path string, v any) {
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
			if sk.Present != "optional" {
				t.Errorf("%s.%s is documented as %s but missing from a real result", path, k, sk.Present)
			}
			continue
		}
		if val == nil {
			if sk.Present != "nullable" {
				t.Errorf("%s.%s is null, documented as %s", path, k, sk.Present)
			}
			continue
		}
		checkValue(t, doc, sk.Type, path+"."+k, val)
	}
}

func checkValue(t *testing.T, doc map[string]map[string]SchemaKey, typ, path string, val any) {
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
				CheckAgainstSchema(t, doc, elem, path+"["+strconv.Itoa(i)+"]", e)
			}
			return
		}
		CheckAgainstSchema(t, doc, typ, path, val)
	}
}
