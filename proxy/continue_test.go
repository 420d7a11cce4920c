package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestExpectContinueIsAnswered: a client that waits for 100 Continue before
// its body gets it from cloak, and the upstream gets the body without an
// Expect header. Without the answer the client waits until its deadline.
func TestExpectContinueIsAnswered(t *testing.T) {
	w := newWorld(t, nil)
	c, _, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatalf("CONNECT %d", res.StatusCode)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	const body = `{"hello":"world"}`
	head := "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: " + dummyKey +
		"\r\nContent-Length: " + itoa(len(body)) + "\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(tc, head); err != nil {
		t.Fatal(err)
	}
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("HTTP/1.1 100 Continue\r\n\r\n"))
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("no 100 Continue before the body: %q %v", buf, err)
	}
	if _, err := io.WriteString(tc, body); err != nil {
		t.Fatal(err)
	}
	final, err := http.ReadResponse(bufioReader(tc), nil)
	if err != nil || final.StatusCode != 200 {
		t.Fatalf("final response %v %v", final, err)
	}
	s := w.seenRequests()
	if len(s) != 1 || s[0].Body != body || s[0].Header.Get("Expect") != "" || s[0].Header.Get("X-Api-Key") != realKey {
		t.Fatalf("upstream saw %+v", s)
	}
}

// TestExpectContinueNotSentForRefusedRequest: a refused request gets its
// refusal, never an invitation to send the body.
func TestExpectContinueNotSentForRefusedRequest(t *testing.T) {
	w := newWorld(t, nil)
	c, _, _ := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	tc := tls.Client(c, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	head := "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nAuthorization: token " + dummyGH +
		"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
	io.WriteString(tc, head)
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufioReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want the 403 refusal first", res.StatusCode)
	}
}
