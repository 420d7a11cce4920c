package proxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// fuzzSet allows both fixture secrets of these tests anywhere on
// api.github.com.
func fuzzSet(t *testing.T) *secretSet {
	gh, _ := ParseHostPattern("api.github.com")
	rules := []Rule{{Hosts: []HostPattern{gh}}}
	set, err := newSecretSet([]Secret{
		{Name: "GITHUB_TOKEN", Dummy: dummyGH, Real: realGH, Rules: rules},
		{Name: "SLASHY", Dummy: dummySlashy, Real: realSlashy, Rules: rules},
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// FuzzSwapURL: swapping touches nothing but the dummies: putting the
// dummies back where the real values went gives the URL as sent.
func FuzzSwapURL(f *testing.F) {
	f.Add("/a/"+dummyGH+"/b", "x=1&k="+dummyGH+"&k2="+dummySlashy)
	f.Add("/%41%2F"+dummySlashy, "a=%zz&"+dummyGH+"=v&=&&b")
	f.Add("/", "k="+dummyGH+dummyGH+";x="+dummySlashy)
	f.Fuzz(func(t *testing.T, path, query string) {
		u, err := url.Parse("https://api.github.com" + path)
		if err != nil || u.Host != "api.github.com" {
			return
		}
		u.RawQuery = query
		req := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		before := req.URL.RequestURI()
		var out swapOut
		swapURL(fuzzSet(t), req, "api.github.com", 443, u.EscapedPath(), &out)
		after := req.URL.RequestURI()
		back := strings.NewReplacer(
			realGH, dummyGH,
			url.PathEscape(realSlashy), dummySlashy,
			url.QueryEscape(realSlashy), dummySlashy,
		).Replace(after)
		if back != before {
			t.Fatalf("swap changed more than the dummies:\nbefore %q\nafter  %q", before, after)
		}
		if after != before && len(out.injected) == 0 {
			t.Fatal("the URL changed but no secret was recorded as injected")
		}
	})
}

// FuzzSwapBasic: any Authorization value either stays as it is or becomes
// Basic credentials that decode to the same text with real values in
// place of the dummies.
func FuzzSwapBasic(f *testing.F) {
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+dummyGH)))
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte(dummyGH+":")))
	f.Add("Basic !!!" + dummyGH)
	f.Add("Bearer " + dummyGH)
	f.Fuzz(func(t *testing.T, v string) {
		var out swapOut
		got, bad := swapBasic(fuzzSet(t), v, "GET", "api.github.com", 443, "/", &out)
		if bad != nil {
			t.Fatalf("a secret allowed everywhere tripped")
		}
		if got == v {
			return
		}
		before, ok1 := decodeBasic(v)
		after, ok2 := decodeBasic(got)
		if !ok1 || !ok2 {
			t.Fatalf("changed a value that is not Basic credentials: %q → %q", v, got)
		}
		if strings.NewReplacer(realGH, dummyGH, realSlashy, dummySlashy).Replace(after) != before {
			t.Fatalf("credentials changed beyond the dummies: %q → %q", before, after)
		}
		if strings.Contains(after, dummyGH) || strings.Contains(after, dummySlashy) {
			t.Fatalf("a dummy is left in %q", after)
		}
	})
}
