package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseV2InferPath(t *testing.T) {
	cases := map[string]V2Route{
		"/v2/models/m/infer":               {Model: "m"},
		"/v2/models/m/versions/3/infer":    {Model: "m", Version: "3"},
		"/v2/models/resnet-50/infer":       {Model: "resnet-50"},
		"/v2/models/m/versions/v1.2/infer": {Model: "m", Version: "v1.2"},
		// Seldon Core's gateway path.
		"/seldon/ns/m/v2/models/m/infer": {Prefix: "/seldon/ns/m", Model: "m"},
	}
	for path, want := range cases {
		got, ok, err := ParseV2InferPath(path)
		if !ok || err != nil || got != want {
			t.Errorf("%s: %+v %v %v, want %+v", path, got, ok, err, want)
		}
	}
	for _, path := range []string{"/v1/models/m:predict", "/", "", "/predict"} {
		if got, ok, err := ParseV2InferPath(path); ok || err != nil {
			t.Errorf("%s: took it as %+v (%v)", path, got, err)
		}
	}
	// V2-looking paths that are not infer routes are errors, not TF paths.
	for path, why := range map[string]string{
		"/v2/models/m":                 "it does not end in /infer",
		"/v2/models/m/ready":           "it does not end in /infer",
		"/v2/models/x/infer/":          "it does not end in /infer",
		"/v2/models/x:predict":         "it does not end in /infer",
		"/v2/models//infer":            "a name or version is empty",
		"/v2/models/m/versions//infer": "a name or version is empty",
		"/v2/models/m/labels/x/infer":  "the model part is not NAME or NAME/versions/VERSION",
		"/v2/models/m:x/infer":         "the model name has a ':'",
	} {
		_, ok, err := ParseV2InferPath(path)
		want := path + " is not a V2 infer path (" + why + "): a V2 infer URL is http://HOST:PORT[/PREFIX]/v2/models/NAME[/versions/VERSION]/infer"
		if ok || err == nil || err.Error() != want {
			t.Errorf("%s: %v %v, want %q", path, ok, err, want)
		}
	}
	if b := (V2Route{Model: "m", Version: "2"}).Base(); b != "/v2/models/m/versions/2" {
		t.Errorf("base %s", b)
	}
	r := V2Route{Prefix: "/seldon/ns/m", Model: "m"}
	if b, h := r.Base(), r.Server("/health/ready"); b != "/seldon/ns/m/v2/models/m" || h != "/seldon/ns/m/v2/health/ready" {
		t.Errorf("prefixed: base %s, health %s", b, h)
	}
}

func TestV2ErrorText(t *testing.T) {
	cases := []struct {
		body string
		want string
		ok   bool
	}{
		{`{"error": "Input x has the wrong shape"}`, "Input x has the wrong shape", true},
		{`{"error":"a\nb \u00e9"}`, "a b é", true},
		{`{"error": "` + strings.Repeat("z", 300), strings.Repeat("z", 300) + "…", true},
		{`{"predictions": [1]}`, "", false},
		{`Internal Server Error`, "", false},
		{`{"error": {"code": 3}}`, "", false},
	}
	for _, c := range cases {
		got, ok := v2ErrorText([]byte(c.body))
		if got != c.want || ok != c.ok {
			t.Errorf("%.40s: %q %v, want %q %v", c.body, got, ok, c.want, c.ok)
		}
	}
}

// A V2 target's error answers are sampled as the status and the "error"
// text, on both engines; a TF Serving target keeps the body's start.
func TestEnginesReportV2ErrorsByTheirErrorField(t *testing.T) {
	const body = `{"error": "unexpected datatype FP64 for input x, expecting FP32"}`
	respond := func(conn net.Conn, _ int64) bool {
		_, err := fmt.Fprintf(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return err == nil
	}
	for _, engine := range engines(t) {
		for _, path := range []string{"/v2/models/m/versions/1/infer", "/v1/models/m:predict"} {
			srv := startRaw(t, respond)
			url := strings.Replace(srv.url, "/v1/models/m:predict", path, 1)
			rec := NewRecorder()
			if _, err := Run(context.Background(), Plan{Concurrency: 2, Requests: 6}, engineREST(t, engine, url, 5*time.Second), counter(1), rec); err != nil {
				t.Fatal(err)
			}
			snap := rec.Snapshot(true)
			key := ErrorKey{Class: HTTPStatus, Code: 400}
			want := "HTTP 400: unexpected datatype FP64 for input x, expecting FP32"
			if path[2] == '1' {
				want = "HTTP 400: " + body
			}
			if snap.Steady.Errors[key] != 6 || snap.FirstErrors[key] != want {
				t.Fatalf("%s %s: errors %v, sample %q, want %q", engine, path, snap.Steady.Errors, snap.FirstErrors[key], want)
			}
		}
	}
}

// Each payload's own headers and the content type go out with it, on both
// engines (the binary tensor extension's Inference-Header-Content-Length).
func TestEnginesSendPerPayloadHeaders(t *testing.T) {
	for _, engine := range engines(t) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		acceptAll(t, ln, func(conn net.Conn, _ int64) {
			br := bufio.NewReader(conn)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				mu.Lock()
				seen[fmt.Sprintf("%s|%s|%s|%s", req.Header.Get("Content-Type"), req.Header.Get("Inference-Header-Content-Length"), req.Header.Get("X-Extra"), body)]++
				mu.Unlock()
				if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
					return
				}
			}
		})
		r, err := NewREST(RESTConfig{URL: "http://" + ln.Addr().String() + "/v2/models/m/infer", Engine: engine,
			ContentType: "application/octet-stream", Headers: []Header{{"X-Extra", "e"}},
			Bodies:      [][]byte{[]byte("{}abc"), []byte("{\"a\":1}z")},
			BodyHeaders: [][]Header{{{"Inference-Header-Content-Length", "2"}}, {{"Inference-Header-Content-Length", "7"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), Plan{Concurrency: 1, Requests: 4}, r, counter(2), NewRecorder()); err != nil {
			t.Fatal(err)
		}
		r.Close()
		mu.Lock()
		got := fmt.Sprint(seen)
		mu.Unlock()
		want := fmt.Sprint(map[string]int{"application/octet-stream|2|e|{}abc": 2, "application/octet-stream|7|e|{\"a\":1}z": 2})
		if got != want {
			t.Fatalf("%s: got %s, want %s", engine, got, want)
		}
	}
	if _, err := NewREST(RESTConfig{URL: "http://127.0.0.1:1/v2/models/m/infer", Bodies: [][]byte{{}}, BodyHeaders: [][]Header{{}, {}}}); err == nil {
		t.Fatal("headers for 2 payloads of 1 accepted")
	}
}
