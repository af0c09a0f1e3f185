package report

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// nonFiniteMark stands in for a NaN or Inf while a value is encoded:
// JSON has no such numbers, and one figure that is not a number must not
// cost the whole result.json. It is a float no figure of a run takes.
const nonFiniteMark = -1.7976931348623157e308

// encodeFinite encodes v as indented JSON with null for every NaN or Inf
// float in it, and returns where they were (JSON paths such as
// server.requests). v is left as it was.
func encodeFinite(v any) ([]byte, []string, error) {
	var undo []func()
	var paths []string
	walkNonFinite(reflect.ValueOf(v), "", &undo, &paths)
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<redacted>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, nil, err
	}
	out := buf.Bytes()
	if len(paths) > 0 {
		mark, _ := json.Marshal(nonFiniteMark)
		out = bytes.ReplaceAll(out, mark, []byte("null"))
	}
	return out, paths, nil
}

func nonFinite(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// walkNonFinite replaces the NaN and Inf floats reachable from v by
// nonFiniteMark, noting how to put each back.
func walkNonFinite(v reflect.Value, path string, undo *[]func(), paths *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if v.Kind() == reflect.Interface && (e.Kind() == reflect.Float64 || e.Kind() == reflect.Float32) {
			if nonFinite(e.Float()) && v.CanSet() {
				old := reflect.ValueOf(v.Interface())
				v.Set(reflect.ValueOf(nonFiniteMark))
				*undo = append(*undo, func() { v.Set(old) })
				*paths = append(*paths, path)
			}
			return
		}
		walkNonFinite(e, path, undo, paths)
	case reflect.Float64, reflect.Float32:
		if nonFinite(v.Float()) && v.CanSet() {
			old := v.Float()
			v.SetFloat(nonFiniteMark)
			*undo = append(*undo, func() { v.SetFloat(old) })
			*paths = append(*paths, path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" && !f.Anonymous {
				name = f.Name
			}
			walkNonFinite(v.Field(i), join(path, name), undo, paths)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkNonFinite(v.Index(i), path+"["+strconv.Itoa(i)+"]", undo, paths)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			p := join(path, k.String())
			// A map's values cannot be set in place: a copy is walked and
			// put back when anything in it changed.
			cp := reflect.New(e.Type()).Elem()
			cp.Set(e)
			before := len(*paths)
			walkNonFinite(cp, p, undo, paths)
			if len(*paths) > before {
				v.SetMapIndex(k, cp)
				*undo = append(*undo, func() { v.SetMapIndex(k, e) })
			}
		}
	}
}

func join(path, name string) string {
	switch {
	case name == "":
		return path
	case path == "":
		return name
	}
	return path + "." + name
}
