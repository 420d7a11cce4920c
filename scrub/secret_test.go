package scrub

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverShowsReal(t *testing.T) {
	const real = "sk-ant-api03-REALREALREALREAL"
	s := Secret{Name: "ANTHROPIC_API_KEY", Real: real, Dummy: "sk-ant-api03-DUMMYDUMMYDUMMYDU"}
	type holder struct {
		Key   Secret
		Ptr   *Secret
		Label string
	}
	h := holder{Key: s, Ptr: &s, Label: "x"}

	outputs := map[string]string{
		"String":   s.String(),
		"GoString": s.GoString(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%t", "%40f", "%-40s"} {
		outputs["Sprintf "+verb] = fmt.Sprintf(verb, s)
		outputs["Sprintf pointer "+verb] = fmt.Sprintf(verb, &s)
		outputs["Sprintf slice "+verb] = fmt.Sprintf(verb, []Secret{s, s})
		outputs["Sprintf struct "+verb] = fmt.Sprintf(verb, h)
		outputs["Sprintf map "+verb] = fmt.Sprintf(verb, map[string]Secret{"k": s})
	}
	for name, v := range map[string]any{"secret": s, "slice": []Secret{s}, "struct": h, "pointer": &s} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s): %v", name, err)
		}
		outputs["json "+name] = string(b)
		x, err := xml.Marshal(v)
		if err != nil {
			t.Fatalf("xml.Marshal(%s): %v", name, err)
		}
		outputs["xml "+name] = string(x)
	}
	text, _ := s.MarshalText()
	outputs["MarshalText"] = string(text)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("m", "secret", s, "holder", h)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("m", "secret", s, "holder", h)
	outputs["slog"] = logged.String()

	for how, out := range outputs {
		if strings.Contains(out, "REALREAL") || strings.Contains(out, fmt.Sprintf("%x", real)) {
			t.Errorf("%s shows the real value: %s", how, out)
		}
		if !strings.Contains(out, "ANTHROPIC_API_KEY") && !strings.Contains(out, fmt.Sprintf("%x", "ANTHROPIC_API_KEY")) {
			t.Errorf("%s lost the name: %s", how, out)
		}
	}
	if got, want := s.String(), "ANTHROPIC_API_KEY=<redacted>"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
