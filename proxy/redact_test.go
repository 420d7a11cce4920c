package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient is the world's client without Go's transparent gzip, so a
// test sees the body exactly as the proxy sent it.
func (w *world) rawClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:              http.ProxyURL(w.proxy.URL()),
			TLSClientConfig:    &tls.Config{RootCAs: w.proxyCA.pool()},
			DisableCompression: true,
		},
		Timeout: 20 * time.Second,
	}
}

// TestResponseEchoIsRedacted: an upstream that echoes the real key in a
// header, a JSON body of known length and a chunked body gives the child
// only the dummy, whether or not the request carried a secret.
func TestResponseEchoIsRedacted(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Echo", "your key is "+realKey)
		rw.Header().Set("Location", "https://x.test/?k="+url.QueryEscape(realSlashy))
		body := `{"key":"` + realKey + `","slashy":"` + jsonEscape(realSlashy) + `"}`
		if r.URL.Path == "/chunked" {
			io.WriteString(rw, body[:20])
			rw.(http.Flusher).Flush()
			io.WriteString(rw, body[20:])
			return
		}
		rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(rw, body)
	}, withSlashy())
	for _, path := range []string{"/known-length", "/chunked"} {
		for _, host := range []string{"api.anthropic.com", "api.github.com"} {
			req, _ := http.NewRequest("GET", "https://"+host+path, nil)
			if host == "api.anthropic.com" {
				req.Header.Set("x-api-key", dummyKey)
			}
			res, err := w.rawClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatalf("%s%s: reading: %v", host, path, err)
			}
			body := string(b)
			want := `{"key":"` + dummyKey + `","slashy":"` + sameLength(jsonEscape(dummySlashy), len(jsonEscape(realSlashy))) + `"}`
			if body != want {
				t.Errorf("%s%s: child got body %q\nwant %q", host, path, body, want)
			}
			if res.Header.Get("X-Echo") != "your key is "+dummyKey {
				t.Errorf("%s%s: child got X-Echo %q", host, path, res.Header.Get("X-Echo"))
			}
			if loc := res.Header.Get("Location"); strings.Contains(loc, url.QueryEscape(realSlashy)) || !strings.Contains(loc, dummySlashy) {
				t.Errorf("%s%s: child got Location %q", host, path, loc)
			}
			if path == "/known-length" && res.ContentLength != int64(len(want)) {
				t.Errorf("%s%s: Content-Length %d, want %d", host, path, res.ContentLength, len(want))
			}
		}
	}
	for _, s := range w.seenRequests() {
		if s.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("upstream saw Accept-Encoding %q, want identity", s.Header.Get("Accept-Encoding"))
		}
	}
}

// TestResponseEventStreamRedactedEventByEvent: the real key inside an SSE
// event is redacted, and the event still arrives before the next one is
// sent (same no-sleep pattern as TestEventStreamIsNotBuffered).
func TestResponseEventStreamRedactedEventByEvent(t *testing.T) {
	gotFirst := make(chan struct{})
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		rw.WriteHeader(200)
		io.WriteString(rw, "event: one\ndata: "+realKey+"\n\n")
		rw.(http.Flusher).Flush()
		select {
		case <-gotFirst:
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			return
		}
		io.WriteString(rw, "event: two\ndata: "+realKey[:20])
		rw.(http.Flusher).Flush()
		io.WriteString(rw, realKey[20:]+"\n\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.anthropic.com/v1/messages", strings.NewReader("{}"))
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for _, want := range []string{"event: one", "data: " + dummyKey, ""} {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event 1: %v (buffered?)", err)
		}
		if strings.TrimRight(line, "\n") != want {
			t.Fatalf("got %q, want %q", line, want)
		}
	}
	close(gotFirst)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "event: two\ndata: "+dummyKey+"\n\n" {
		t.Fatalf("event 2 = %q", rest)
	}
}

// TestCompressedResponseIsRedacted: an upstream that gzips although asked
// for identity is decoded, and the child gets the plaintext, redacted.
func TestCompressedResponseIsRedacted(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(rw)
		io.WriteString(zw, "echo: "+realKey)
		zw.Close()
	})
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := w.rawClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(b, []byte(realKey)) {
		t.Fatal("the child got the real key")
	}
	if res.Header.Get("Content-Encoding") != "" || string(b) != "echo: "+dummyKey {
		t.Fatalf("child got encoding %q body %q, want the plaintext with the dummy", res.Header.Get("Content-Encoding"), b)
	}
	if ae := w.only().Header.Get("Accept-Encoding"); ae != "identity" {
		t.Errorf("upstream saw Accept-Encoding %q, want identity", ae)
	}
}

func TestUnreadableResponseEncodingRefused(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Encoding", "br")
		io.WriteString(rw, "\x0b\x02\x80brotli")
	})
	res, body := w.do(mustReq("GET", "https://api.github.com/x"))
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "br") {
		t.Fatalf("got %d %q, want 502 naming the encoding", res.StatusCode, body)
	}
	w.waitAudit(decisionUpstreamError)
}

// TestResponseCutInsideRealValue: a body that ends part way into the real
// key does not hand the child the part.
func TestResponseCutInsideRealValue(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "key="+realKey[:len(realKey)-3])
	})
	_, body := w.do(mustReq("GET", "https://api.github.com/x"))
	if body != "key="+dummyKey[:len(dummyKey)-3] {
		t.Fatalf("child got %q", body)
	}
}

func mustReq(method, u string) *http.Request {
	req, _ := http.NewRequest(method, u, nil)
	return req
}
