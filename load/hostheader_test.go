package load

import (
	"bytes"
	"testing"
)

// A Host header override is sent with an origin-form request target: with
// an absolute-form one the URI's host would override it (RFC 9112).
func TestHostHeaderOverrideSendsOriginForm(t *testing.T) {
	for _, c := range []struct {
		headers []Header
		line    string
		host    string
	}{
		{[]Header{{Key: "Host", Value: "x.example"}}, "POST /v2/models/m/infer?a=1 HTTP/1.1\r\n", "Host: x.example\r\n"},
		{[]Header{{Key: "host", Value: "y.example"}}, "POST /v2/models/m/infer?a=1 HTTP/1.1\r\n", "Host: y.example\r\n"},
		{nil, "POST /v2/models/m/infer?a=1 HTTP/1.1\r\n", "Host: 127.0.0.1:9\r\n"},
	} {
		r, err := NewREST(RESTConfig{URL: "http://127.0.0.1:9/v2/models/m/infer?a=1", Headers: c.headers, Bodies: [][]byte{[]byte("{}")}, Timeout: 1e9})
		if err != nil {
			t.Fatal(err)
		}
		got := r.requests[0]
		if !bytes.HasPrefix(got, []byte(c.line)) || !bytes.Contains(got, []byte(c.host)) || bytes.Count(got, []byte("Host:")) != 1 {
			t.Errorf("headers %v: request %q, want it to start %q with %q", c.headers, got, c.line, c.host)
		}
	}
}
