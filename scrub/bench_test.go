package scrub

import (
	"fmt"
	"testing"
)

func BenchmarkEnv(b *testing.B) {
	secrets := []Secret{
		{Name: "ANTHROPIC_API_KEY", Real: "sk-ant-api03-" + fmt.Sprintf("%090d", 1), Dummy: "sk-ant-api03-" + fmt.Sprintf("%090d", 2)},
		{Name: "GITHUB_TOKEN", Real: "ghp_0123456789abcdefghijABCDEFGHIJ012345", Dummy: "ghp_ZYXWVUTSRQPONMLKJIzyxwvutsrqponmlkji98"},
		{Name: "DATABASE_PASSWORD", Real: `p@ss/w0rd"with:odd+chars`, Dummy: "DummyDummyDummyDummyDumm"},
	}
	parent := []string{
		"ANTHROPIC_API_KEY=" + secrets[0].Real,
		"GITHUB_TOKEN=" + secrets[1].Real,
		"DATABASE_URL=postgres://app:p%40ss%2Fw0rd%22with%3Aodd%2Bchars@db:5432/app",
		"GH_AUTH=Bearer " + secrets[1].Real,
	}
	for i := len(parent); i < 60; i++ {
		parent = append(parent, fmt.Sprintf("VAR_%02d=/usr/local/share/some/ordinary/value/number/%d:/usr/bin", i, i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Env(parent, secrets, []string{"VAR_10"}); err != nil {
			b.Fatal(err)
		}
	}
}
