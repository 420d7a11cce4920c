package launcher

import (
	"sort"
	"strings"
)

// preset is a ready-made binding for a well-known service: the rules a
// secret for it needs, and no more.
type preset struct {
	about string
	rules []presetRule
}

type presetRule struct {
	hosts, methods, paths, places []string
}

// presets by the name a policy file gives in `preset = "..."`.
//
// Model APIs get the real value only in their auth headers: their request
// body is the model's context (tool results included), and a swap there
// would hand the real key to the model.
var presets = map[string]preset{
	// What Claude Code calls: POST /v1/messages?beta=true and
	// /v1/messages/count_tokens, GET /v1/models, and under /api/ its
	// settings, policy limits, HEAD /api/hello, OAuth and event logging.
	"anthropic": {
		about: "Anthropic API, as Claude Code uses it",
		rules: []presetRule{{
			hosts:   []string{"api.anthropic.com"},
			methods: []string{"GET", "HEAD", "POST"},
			paths:   []string{"/v1/messages*", "/v1/models*", "/api/*"},
			places:  []string{"header:x-api-key", "header:authorization"},
		}},
	},
	"openai": {
		about: "OpenAI API",
		rules: []presetRule{{
			hosts:  []string{"api.openai.com"},
			paths:  []string{"/v1/*"},
			places: []string{"header:authorization"},
		}},
	},
	// The REST API and release uploads take the token in Authorization
	// (or as Basic credentials); git over HTTPS sends it to github.com as
	// the password of Basic auth (x-access-token:TOKEN), or in an
	// Authorization header set with http.extraHeader.
	"github": {
		about: "GitHub API, and git over HTTPS",
		rules: []presetRule{{
			hosts:  []string{"api.github.com", "uploads.github.com", "github.com"},
			places: []string{"header:authorization", "basic-auth"},
		}},
	},
	// Registries differ (the public one, a company's own, GitHub
	// Packages), so this preset names none: the policy gives the host.
	"npm": {
		about: "an npm registry (give its host in hosts)",
		rules: []presetRule{{places: []string{"header:authorization"}}},
	},
	"huggingface": {
		about: "Hugging Face Hub",
		rules: []presetRule{{
			hosts:  []string{"huggingface.co"},
			places: []string{"header:authorization"},
		}},
	},
}

// autoPresets bind well-known variable names with no policy at all.
var autoPresets = map[string]string{
	"ANTHROPIC_API_KEY":       "anthropic",
	"ANTHROPIC_AUTH_TOKEN":    "anthropic",
	"CLAUDE_CODE_OAUTH_TOKEN": "anthropic",
	"OPENAI_API_KEY":          "openai",
	"GITHUB_TOKEN":            "github",
	"GH_TOKEN":                "github",
	"HF_TOKEN":                "huggingface",
	"HUGGING_FACE_HUB_TOKEN":  "huggingface",
}

func presetNames() string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
