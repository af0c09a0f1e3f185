package load

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// V2Route is the model (and version) a V2 (Open Inference Protocol) infer
// URL names.
type V2Route struct {
	// Prefix is the path before /v2/ that a gateway routes by (Seldon
	// Core's /seldon/NAMESPACE/MODEL); "" for a server's own port.
	Prefix  string
	Model   string
	Version string // "" for the server's choice
}

// Base is the route's model path, PREFIX/v2/models/NAME[/versions/V],
// under which the ready and metadata routes are.
func (r V2Route) Base() string {
	p := r.Prefix + "/v2/models/" + r.Model
	if r.Version != "" {
		p += "/versions/" + r.Version
	}
	return p
}

// Server is the path of a server-wide V2 route under the route's prefix:
// Server("/health/ready") is PREFIX/v2/health/ready.
func (r V2Route) Server(path string) string { return r.Prefix + "/v2" + path }

// V2InferURLForm is what a V2 infer URL looks like, for error messages.
const V2InferURLForm = "http://HOST:PORT[/PREFIX]/v2/models/NAME[/versions/VERSION]/infer"

// ParseV2InferPath reads [PREFIX]/v2/models/NAME[/versions/V]/infer. ok
// is false and err nil for a path that is not V2 (TF Serving's
// /v1/models/NAME:predict among them): the URL's path is what says which
// protocol a REST target speaks. A path with /v2/models/ in it that is not
// a V2 infer route is an error, rather than taken for TF Serving's.
func ParseV2InferPath(path string) (route V2Route, ok bool, err error) {
	i := strings.Index(path, "/v2/models/")
	if i < 0 {
		return V2Route{}, false, nil
	}
	bad := func(why string) (V2Route, bool, error) {
		return V2Route{}, false, fmt.Errorf("%s is not a V2 infer path (%s): a V2 infer URL is %s", path, why, V2InferURLForm)
	}
	route.Prefix = path[:i]
	rest, found := strings.CutSuffix(path[i+len("/v2/models/"):], "/infer")
	if !found {
		return bad("it does not end in /infer")
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		route.Model = parts[0]
	case len(parts) == 3 && parts[0] != "" && parts[1] == "versions" && parts[2] != "":
		route.Model, route.Version = parts[0], parts[2]
	case slices.Contains(parts, ""):
		return bad("a name or version is empty")
	default:
		return bad("the model part is not NAME or NAME/versions/VERSION")
	}
	if strings.ContainsAny(route.Model, ":") {
		return bad("the model name has a ':'")
	}
	return route, true, nil
}

// IsV2 reports whether the target is a V2 infer route.
func (r *REST) IsV2() bool { return r.v2 }

// statusOutcome is statusOutcome in the target's protocol: a V2 server's
// error answer is {"error": "..."}, and its sample is the status and that
// text.
func (r *REST) statusOutcome(code int, body []byte) Outcome {
	out := statusOutcome(code, body)
	if r.v2 && out.Class == HTTPStatus {
		if msg, ok := v2ErrorText(body); ok {
			out.Err = fmt.Errorf("HTTP %d: %s", code, msg)
		}
	}
	return out
}

// v2ErrorText reads the "error" string of a V2 error answer. The body may
// be cut short (only its start is kept), so a string that runs off the end
// is taken as far as it goes.
func v2ErrorText(body []byte) (string, bool) {
	var doc struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		if doc.Error == nil {
			return "", false
		}
		return printable(*doc.Error), true
	}
	// Truncated: find "error": "… and read the string as far as it goes.
	s := string(body)
	i := strings.Index(s, `"error"`)
	if i < 0 || !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{") {
		return "", false
	}
	s = strings.TrimLeft(s[i+len(`"error"`):], " \t\r\n")
	if !strings.HasPrefix(s, ":") {
		return "", false
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if !strings.HasPrefix(s, `"`) {
		return "", false
	}
	var b strings.Builder
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '"' {
			break
		}
		if c == '\\' && j+1 < len(s) {
			j++
			switch s[j] {
			case 'n', 't', 'r':
				b.WriteByte(' ')
			case 'u':
				if j+4 < len(s) {
					if n, err := strconv.ParseUint(s[j+1:j+5], 16, 32); err == nil {
						b.WriteRune(rune(n))
					}
					j += 4
				}
			default:
				b.WriteByte(s[j])
			}
			continue
		}
		b.WriteByte(c)
	}
	return printable(b.String()) + "…", true
}

// printable keeps the text on one line, with what is not printable as '?'.
func printable(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return strings.Join(strings.Fields(s), " ")
}
