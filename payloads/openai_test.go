package payloads

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeOpenAIFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseOpenAIBodyReadsWhatAServerNeeds(t *testing.T) {
	r, err := ParseOpenAIBody([]byte(`{"model": "m", "prompt": "the cat  sat", "max_tokens": 32, "stream": true, "stream_options": {"include_usage": true}, "temperature": 0}`), Completions)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "m" || !r.Stream || !r.IncludeUsage || r.MaxTokens != 32 || r.PromptWords() != 3 || r.Prompts != 1 || r.N != 1 {
		t.Errorf("%+v", r)
	}
	r, err = ParseOpenAIBody([]byte(`{"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi you"}, {"type": "image_url", "image_url": {"url": "x"}}]}, {"role": "assistant", "content": null, "tool_calls": []}], "max_tokens": 10, "max_completion_tokens": 20}`), ChatCompletions)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream || r.MaxTokens != 20 || r.PromptWords() != 4 || len(r.PromptTexts) != 2 {
		t.Errorf("%+v: want max_completion_tokens to win, 4 words", r)
	}
	r, err = ParseOpenAIBody([]byte(`{"model": "m", "prompt": [[1, 2, 3], [4]]}`), Completions)
	if err != nil || r.PromptTokenIDs != 4 || r.Prompts != 2 {
		t.Errorf("%+v %v: want 4 token ids in 2 prompts", r, err)
	}
	r, err = ParseOpenAIBody([]byte(`{"model": "m", "prompt": [5, 6, 7], "stream": false, "stream_options": null}`), Completions)
	if err != nil || r.PromptTokenIDs != 3 || r.Prompts != 1 || r.Stream {
		t.Errorf("%+v %v: want one prompt of 3 token ids", r, err)
	}
}

func TestParseOpenAIBodyRefusesWhatServersRefuse(t *testing.T) {
	cases := []struct {
		ep   OpenAIEndpoint
		body string
		want string
	}{
		{Completions, `[1]`, "must be a JSON object, got list"},
		{Completions, `{"prompt": "x"}`, `"model" is missing`},
		{Completions, `{"model": "", "prompt": "x"}`, `"model" must be a non-empty string, got string ""`},
		{Completions, `{"model": "m"}`, `"prompt" is missing`},
		{Completions, `{"model": "m", "prompt": []}`, `"prompt" is an empty list`},
		{Completions, `{"model": "m", "prompt": [[1, -2]]}`, `"prompt"[0][1] must be a token id`},
		{Completions, `{"model": "m", "prompt": {"a": 1}}`, `"prompt" must be a string`},
		{Completions, `{"model": "m", "prompt": [1, "a"]}`, `"prompt"[1] is a string among token ids`},
		{Completions, `{"model": "m", "prompt": ["a", [1]]}`, `"prompt"[1] is a token-id list among strings`},
		{Completions, `{"model": "m", "messages": []}`, `"messages" belongs to /v1/chat/completions`},
		{ChatCompletions, `{"model": "m"}`, `"messages" is missing`},
		{ChatCompletions, `{"model": "m", "messages": []}`, `"messages" is an empty list`},
		{ChatCompletions, `{"model": "m", "messages": [{"content": "x"}]}`, `"messages"[0]: "role" is missing`},
		{ChatCompletions, `{"model": "m", "messages": [{"role": "robot", "content": "x"}]}`, `"messages"[0].role must be one of`},
		{ChatCompletions, `{"model": "m", "messages": [{"role": "user"}]}`, `"messages"[0]: "content" is missing`},
		{ChatCompletions, `{"model": "m", "messages": [{"role": "user", "content": 3}]}`, `"messages"[0].content must be a string or a list of content parts, got number 3`},
		{ChatCompletions, `{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}`, `a "text" part needs a string "text"`},
		{ChatCompletions, `{"model": "m", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}`, `"prompt" belongs to /v1/completions`},
		{Completions, `{"model": "m", "prompt": "x", "max_tokens": 0}`, `"max_tokens" must be a positive integer, got number 0`},
		{Completions, `{"model": "m", "prompt": "x", "max_tokens": 2.5}`, `"max_tokens" must be a positive integer`},
		{ChatCompletions, `{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": "9"}`, `"max_completion_tokens" must be a positive integer, got string "9"`},
		{Completions, `{"model": "m", "prompt": "x", "stream": "yes"}`, `"stream" must be true or false`},
		{Completions, `{"model": "m", "prompt": "x", "stream_options": {"include_usage": true}}`, `"stream_options" is only allowed with "stream": true`},
		{Completions, `{"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": 1}}`, `"stream_options.include_usage" must be true or false`},
		{Completions, `{"model": "m", "prompt": "x", "n": 0}`, `"n" must be a positive integer`},
		{Completions, `{"model": "m", "prompt": "x"`, "end of"},
	}
	for _, c := range cases {
		_, err := ParseOpenAIBody([]byte(c.body), c.ep)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.ep, c.body, err, c.want)
		}
	}
}

func TestOpenAIEndpointOfRecognisesTheRoutes(t *testing.T) {
	for path, want := range map[string]OpenAIEndpoint{
		"/v1/completions": Completions, "/v1/chat/completions": ChatCompletions,
		"/proxy/v1/chat/completions/": ChatCompletions, "/v1/models/m:predict": 0, "/v2/completions": 0,
	} {
		got, ok := OpenAIEndpointOf(path)
		if got != want || ok != (want != 0) {
			t.Errorf("%s: %v %v, want %v", path, got, ok, want)
		}
	}
}

func TestLoadOpenAIReadsAFileAJSONLinesFileAndADirectory(t *testing.T) {
	dir := t.TempDir()
	writeOpenAIFile(t, dir, "a.json", "\n{\"model\": \"m\",\n \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true}\n")
	writeOpenAIFile(t, dir, "b.jsonl", `{"model": "m", "messages": [{"role": "user", "content": "one"}]}`+"\n\n"+`{"model": "m", "messages": [{"role": "user", "content": "two"}], "max_tokens": 4}`+"\n")
	writeOpenAIFile(t, dir, "c.json", `[{"model": "m", "messages": [{"role": "user", "content": "x"}]}, {"model": "m",  "messages": [{"role": "user", "content": "y"}], "stream": true}]`)
	writeOpenAIFile(t, dir, "notes.txt", "not a payload")
	set, err := LoadOpenAI(dir, ChatCompletions, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, p := range set.Payloads {
		sources = append(sources, filepath.Base(p.Source))
		if p.OpenAI == nil || p.Request != nil {
			t.Errorf("%s: %+v", p.Source, p)
		}
	}
	if strings.Join(sources, " ") != "a.json b.jsonl:1 b.jsonl:3 c.json[0] c.json[1]" {
		t.Fatalf("sources %v", sources)
	}
	if !set.Payloads[0].OpenAI.Stream || set.Payloads[1].OpenAI.Stream || set.Payloads[2].OpenAI.MaxTokens != 4 || !set.Payloads[4].OpenAI.Stream {
		t.Errorf("stream/max_tokens not read: %+v", set.Payloads)
	}
	// A list's elements are sent as their own bytes.
	if got := string(set.Payloads[4].Body); got != `{"model": "m",  "messages": [{"role": "user", "content": "y"}], "stream": true}` {
		t.Errorf("list element body %q", got)
	}
	if !bytes.HasPrefix(set.Payloads[0].Body, []byte(`{"model"`)) {
		t.Errorf("file body %q", set.Payloads[0].Body)
	}
}

func TestLoadOpenAIErrorsNameTheFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		ep            OpenAIEndpoint
		want          string
	}{
		{"lines.jsonl", `{"model": "m", "prompt": "x"}` + "\n\n" + `{"model": "m", "prompt": "x", "max_tokens": -1}` + "\n", Completions, `lines.jsonl: line 3: "max_tokens" must be a positive integer, got number -1`},
		{"broken.jsonl", `{"model": "m", "prompt": "x"}` + "\n" + `{"model": "m", "prompt": ` + "\n", Completions, "broken.jsonl: line 2: "},
		{"one.json", "\n\n{\"model\": \"m\",\n \"messages\": [\n {\"role\": \"user\", \"content\": 5}]}", ChatCompletions, `one.json: line 5: "messages"[0].content must be a string`},
		{"list.json", "[\n{\"model\": \"m\", \"prompt\": \"x\"},\n{\"model\": \"m\"}\n]", Completions, `list.json: line 3: body [1]: "prompt" is missing`},
		{"empty.jsonl", "\n\n", Completions, "empty.jsonl: no JSON lines in the file"},
		{"empty.json", " ", Completions, "empty.json: file is empty"},
		{"chat.jsonl", `{"model": "m", "prompt": "x"}`, ChatCompletions, `chat.jsonl: line 1: "prompt" belongs to /v1/completions`},
	}
	for _, c := range cases {
		_, err := LoadOpenAI(writeOpenAIFile(t, dir, c.name, c.content), c.ep, Options{})
		var pe *Error
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", c.name, err, c.want)
		}
	}
	if _, err := LoadOpenAI(filepath.Join(dir, "nope.jsonl"), Completions, Options{}); err == nil || !strings.Contains(err.Error(), "nope.jsonl: no such file") {
		t.Errorf("missing file: %v", err)
	}
	empty := t.TempDir()
	if _, err := LoadOpenAI(empty, Completions, Options{}); err == nil || !strings.Contains(err.Error(), "has no .json or .jsonl files") {
		t.Errorf("empty directory: %v", err)
	}
}

// FuzzOpenAIJSONLines checks the .jsonl reader: no input panics it; an
// error names a line of the input; an accepted file's payloads each
// re-parse alone, come from the line their source names, and cover every
// non-blank line.
func FuzzOpenAIJSONLines(f *testing.F) {
	f.Add([]byte(`{"model": "m", "prompt": "x", "stream": true}` + "\n" + `{"model": "m", "prompt": [1, 2]}`))
	f.Add([]byte(`{"model": "m", "messages": [{"role": "user", "content": "x"}]}` + "\r\n\n"))
	f.Add([]byte("{\"model\": \"m\", \"prompt\": \"\\u00e9\"}\n{"))
	f.Add([]byte(`{"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ep := range []OpenAIEndpoint{Completions, ChatCompletions} {
			var s Set
			err := s.addOpenAILines("in.jsonl", data, ep)
			lines := bytes.Split(data, []byte("\n"))
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) || pe.Line > len(lines) || strings.Contains(pe.Error(), "\n") {
					t.Fatalf("error %v: want a one-line *Error naming one of %d lines", err, len(lines))
				}
				continue
			}
			nonBlank := 0
			for _, l := range lines {
				if len(bytes.TrimSpace(l)) > 0 {
					nonBlank++
				}
			}
			if len(s.Payloads) != nonBlank {
				t.Fatalf("%d payloads from %d non-blank lines", len(s.Payloads), nonBlank)
			}
			for _, p := range s.Payloads {
				again, err := ParseOpenAIBody(p.Body, ep)
				if err != nil || again.Stream != p.OpenAI.Stream || again.MaxTokens != p.OpenAI.MaxTokens {
					t.Fatalf("%s: %q re-parses as %+v, %v; was %+v", p.Source, p.Body, again, err, p.OpenAI)
				}
				var line int
				if _, err := fmtSscanLine(p.Source, &line); err != nil || !bytes.Equal(bytes.TrimSpace(lines[line-1]), p.Body) {
					t.Fatalf("%s does not name the line of %q", p.Source, p.Body)
				}
			}
		}
	})
}

// fmtSscanLine reads the line number of a "file:N" source.
func fmtSscanLine(source string, line *int) (int, error) {
	_, n, _ := strings.Cut(source, ":")
	return fmt.Sscanf(n, "%d", line)
}
