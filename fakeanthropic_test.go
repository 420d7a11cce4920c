package main

// A fake Anthropic API for the real Claude Code CLI: enough of the Messages
// API for `claude -p` (measured on 2.1.332). It is served by newUpstream, so
// it answers on loopback with TLS from the test's upstream CA for any host
// name, and records every request it receives.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const (
	fakeAnswer   = "FAKE-ANSWER-42"
	fakeToolID   = "toolu_fake_01"
	fakeModelsJS = `{"data":[{"type":"model","id":"claude-fake-model","display_name":"Fake"}],"has_more":false}`
)

// fakeAnthropic answers POST /v1/messages: with a tool_use of the Bash tool
// running tool, when tool is set, the request offers Bash and it carries no
// tool result yet; else with the text fakeAnswer. Streaming requests get
// Server-Sent Events with the `event:` lines claude requires; the others
// (claude falls back to one when a stream fails) get one JSON message.
// With fail set, every messages request gets a 400 API error.
type fakeAnthropic struct {
	tool string
	fail bool // answer every messages request with an API error

	mu sync.Mutex
	n  int
}

// messagesRequest is the part of a Messages API request the fake reads.
type messagesRequest struct {
	Model    string                  `json:"model"`
	Stream   bool                    `json:"stream"`
	Tools    []struct{ Name string } `json:"tools"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// contentBlock is one block of a message's content.
type contentBlock struct {
	Type      string          `json:"type"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	Text      string          `json:"text"`
}

func (f *fakeAnthropic) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	w.Header().Set("request-id", fmt.Sprintf("req_fake_%d", n))
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		f.messages(w, r, n)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":42}`)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fakeModelsJS)
	default:
		// /api/claude_code/settings, /api/claude_code/policy_limits, ...:
		// claude takes a 404 as "nothing configured".
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"type":"error","error":{"type":"not_found_error","message":"fake: no route %s %s"}}`, r.Method, r.URL.Path)
	}
}

func (f *fakeAnthropic) messages(w http.ResponseWriter, r *http.Request, n int) {
	if f.fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"fake: refused on purpose"}}`)
		return
	}
	var req messagesRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"fake: body is not JSON"}}`)
		return
	}
	offersBash := false
	for _, t := range req.Tools {
		offersBash = offersBash || t.Name == "Bash"
	}
	useTool := f.tool != "" && offersBash && len(toolResultsOf(req)) == 0
	model := req.Model
	if model == "" {
		model = "claude-fake-model"
	}
	id := fmt.Sprintf("msg_fake_%d", n)
	input, _ := json.Marshal(map[string]string{"command": f.tool, "description": "look around"})

	if !req.Stream {
		content := []any{map[string]any{"type": "text", "text": fakeAnswer}}
		stop := "end_turn"
		if useTool {
			content = []any{map[string]any{"type": "tool_use", "id": fakeToolID, "name": "Bash", "input": json.RawMessage(input)}}
			stop = "tool_use"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
			"stop_reason": stop, "stop_sequence": nil, "usage": usage(5),
		})
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	event := func(name string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	event("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": usage(1),
	}})
	stop := "end_turn"
	if useTool {
		stop = "tool_use"
		event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": fakeToolID, "name": "Bash", "input": map[string]any{}}})
		// The input arrives in pieces, as the real API sends it.
		half := len(input) / 2
		for _, part := range []string{"", string(input[:half]), string(input[half:])} {
			event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
		}
	} else {
		event("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}})
		event("ping", map[string]any{"type": "ping"})
		event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": fakeAnswer}})
	}
	event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	event("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 20}})
	event("message_stop", map[string]any{"type": "message_stop"})
}

func usage(out int) map[string]int {
	return map[string]int{"input_tokens": 10, "output_tokens": out, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
}

// toolResultsOf returns the text of the tool results in a request's last
// message: what the agent's tools saw, on its way to the model.
func toolResultsOf(req messagesRequest) []string {
	if len(req.Messages) == 0 {
		return nil
	}
	var blocks []contentBlock
	if json.Unmarshal(req.Messages[len(req.Messages)-1].Content, &blocks) != nil {
		return nil // a plain string: no tool result
	}
	var out []string
	for _, b := range blocks {
		if b.Type != "tool_result" {
			continue
		}
		var s string
		if json.Unmarshal(b.Content, &s) == nil {
			out = append(out, s)
			continue
		}
		var parts []contentBlock
		_ = json.Unmarshal(b.Content, &parts)
		var text []string
		for _, p := range parts {
			text = append(text, p.Text)
		}
		out = append(out, strings.Join(text, "\n"))
	}
	return out
}

// toolResults collects the tool results of every messages request the
// upstream received.
func toolResults(t *testing.T, u *upstream) []string {
	t.Helper()
	var out []string
	for _, r := range u.requests() {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URI, "/v1/messages") {
			continue
		}
		var req messagesRequest
		if err := json.Unmarshal([]byte(r.Body), &req); err != nil {
			t.Fatalf("a messages request is not JSON: %v", err)
		}
		out = append(out, toolResultsOf(req)...)
	}
	return out
}
