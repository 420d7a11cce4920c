package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cloak-dev/cloak/scrub"
)

// Claude Code reads an `env` block from its settings files and applies it
// over the process environment, for its own requests and for every command
// its Bash tool runs; apiKeyHelper in the same files hands it a key that
// cloak never sees. Measured on 2.1.332: settings from the --settings flag
// beat the user's, the project's and the project's local settings, and only
// the last --settings flag counts. So when the child is claude, cloak passes
// one --settings holding its own values for every variable it manages,
// merged over any --settings the user gave.

// isClaude reports whether the command is Claude Code's CLI.
func isClaude(command string) bool { return filepath.Base(command) == "claude" }

// claudeManaged are the variables cloak sets for the child that a settings
// file must not replace: the proxy, the trust store and cloak's markers.
func claudeManaged() []string {
	out := append([]string(nil), proxyVars...)
	out = append(out, "NO_PROXY", "no_proxy", "NODE_EXTRA_CA_CERTS", "NODE_USE_ENV_PROXY", "GIT_HTTP_PROXY_AUTHMETHOD", "CLOAK", "CLOAK_SESSION")
	return append(out, bundleVars...)
}

// settingsFile is one Claude settings file as far as cloak cares.
type settingsFile struct {
	path    string
	managed bool // managed policy settings: they beat --settings
	raw     []byte
	env     map[string]string
	helper  bool // sets apiKeyHelper
}

// claudeSettingsPaths lists the settings files claude reads for a run in
// dir: the user's, the project's (the directory claude starts in and, when
// that is inside a git work tree, its top), and the machine's managed ones.
func claudeSettingsPaths(environ []string, dir string) (user, project, managed []string) {
	cfg, _ := lookup(environ, "CLAUDE_CONFIG_DIR")
	if cfg == "" {
		if home, _ := lookup(environ, "HOME"); home != "" {
			cfg = filepath.Join(home, ".claude")
		}
	}
	if cfg != "" {
		user = append(user, filepath.Join(cfg, "settings.json"))
	}
	roots := []string{dir}
	if top := gitTop(dir); top != "" && top != dir {
		roots = append(roots, top)
	}
	for _, r := range roots {
		project = append(project, filepath.Join(r, ".claude", "settings.json"), filepath.Join(r, ".claude", "settings.local.json"))
	}
	return user, project, managedClaudeSettings
}

// gitTop finds the top of the git work tree holding dir, without running git.
func gitTop(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// readClaudeSettings reads the settings files that exist. A file that is
// not JSON is still kept for the scan for real values.
func readClaudeSettings(environ []string, dir string) []settingsFile {
	user, project, managed := claudeSettingsPaths(environ, dir)
	var out []settingsFile
	add := func(paths []string, isManaged bool) {
		for _, p := range paths {
			raw, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			f, _ := parseSettings(p, raw) // not JSON: still scanned for real values
			f.managed = isManaged
			out = append(out, f)
		}
	}
	add(user, false)
	add(project, false)
	add(managed, true)
	return out
}

// claudeRun is what cloak decides for one claude child.
type claudeRun struct {
	argv     []string
	warnings []string
}

// claudeInput is what claudeArgs needs: the child's argv and environment,
// the secrets it holds dummies of, and the settings files found.
type claudeInput struct {
	argv     []string
	env      []string // the child's environment, already scrubbed
	secrets  []scrub.Secret
	settings []settingsFile
	dir      string // where claude starts, for a relative --settings path
}

// claudeArgs returns claude's argv with cloak's --settings in it, and a
// warning for every settings entry that would have put a real value or
// another proxy, trust store or API host in place.
func claudeArgs(in claudeInput) (claudeRun, error) {
	var run claudeRun
	warn := func(format string, args ...any) { run.warnings = append(run.warnings, fmt.Sprintf(format, args...)) }

	env := map[string]string{}
	for _, name := range claudeManaged() {
		if v, ok := lookup(in.env, name); ok {
			env[name] = v
		}
	}
	holds := map[string]bool{}
	for _, s := range in.secrets {
		env[s.Name] = s.Dummy
		holds[s.Name] = true
	}
	// ANTHROPIC_BASE_URL is left in the child's environment only when its
	// host may get the key (checkBaseURL); "" makes claude use its default.
	base, _ := lookup(in.env, "ANTHROPIC_BASE_URL")
	env["ANTHROPIC_BASE_URL"] = base
	anthropic := slices.ContainsFunc(anthropicKeys, func(n string) bool { return holds[n] })
	if anthropic {
		// claude sends every Anthropic credential it has; one cloak does
		// not hold would reach the API as is.
		for _, n := range anthropicKeys {
			if !holds[n] {
				env[n] = ""
			}
		}
	}

	userArgs, userSettings, err := takeSettingsFlag(in.argv[1:], in.dir)
	if err != nil {
		return run, err
	}
	files := in.settings
	if userSettings != nil {
		files = append(files, *userSettings)
	}
	for _, f := range files {
		for _, n := range scrub.Leaks([]string{string(f.raw)}, in.secrets) {
			warn("%s holds the real value of %s: claude and every command it runs can read that file; remove it from there (cloak reads the key from its secrets file)", f.path, n)
		}
		for _, name := range sortedKeys(f.env) {
			val := f.env[name]
			cloaks, taken := env[name]
			switch {
			case f.managed && taken:
				warn("%s (managed settings) sets env.%s: managed settings beat cloak's, so claude may not use cloak's value", f.path, name)
			case taken && holds[name]:
				warn("%s sets env.%s: cloak passes its dummy instead for this run", f.path, name)
			case taken && anthropic && slices.Contains(anthropicKeys, name):
				warn("%s sets env.%s, a credential cloak does not hold: cloak blanks it for this run (claude would send it as is)", f.path, name)
			case taken && val != cloaks:
				warn("%s sets env.%s: cloak passes its own value instead for this run", f.path, name)
			case !taken && len(scrub.Leaks([]string{val}, in.secrets)) > 0:
				scrubbed, err := scrub.Env([]string{name + "=" + val}, in.secrets, nil)
				if err != nil || len(scrubbed) != 1 {
					return run, fmt.Errorf("%s env.%s holds a real secret value that cloak cannot replace; remove it", f.path, name)
				}
				_, env[name], _ = strings.Cut(scrubbed[0], "=")
			}
		}
		if f.helper {
			switch {
			case f.managed:
				warn("%s (managed settings) sets apiKeyHelper: claude holds the key it prints, and cloak cannot turn it off", f.path)
			case anthropic:
				warn("%s sets apiKeyHelper: it would hand claude a key cloak does not hold; cloak turns it off for this run", f.path)
			default:
				warn("%s sets apiKeyHelper: claude and every command it runs hold the key it prints; put the key in cloak's secrets file instead", f.path)
			}
		}
	}

	doc := map[string]any{}
	if userSettings != nil {
		_ = json.Unmarshal(userSettings.raw, &doc) // checked by takeSettingsFlag
	}
	merged := map[string]any{}
	if e, ok := doc["env"].(map[string]any); ok {
		for k, v := range e {
			merged[k] = v
		}
	}
	for k, v := range env {
		merged[k] = v
	}
	doc["env"] = merged
	if anthropic {
		doc["apiKeyHelper"] = ""
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return run, fmt.Errorf("encoding claude's --settings: %w", err)
	}
	if leaked := scrub.Leaks([]string{string(js)}, in.secrets); len(leaked) > 0 {
		return run, fmt.Errorf("claude's --settings would hold the real value of %s; not starting it (remove it from the --settings you passed)", strings.Join(leaked, ", "))
	}
	run.argv = append([]string{in.argv[0], "--settings", string(js)}, userArgs...)
	return run, nil
}

// takeSettingsFlag removes the user's own --settings from claude's
// arguments (before any "--") and reads it, file or JSON text, so cloak's
// settings can be merged over it: claude uses only the last --settings.
func takeSettingsFlag(args []string, dir string) ([]string, *settingsFile, error) {
	var out []string
	var found *settingsFile
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		val, ok := "", false
		switch {
		case a == "--settings" && i+1 < len(args):
			val, ok = args[i+1], true
			i++
		case strings.HasPrefix(a, "--settings="):
			val, ok = strings.TrimPrefix(a, "--settings="), true
		}
		if !ok {
			out = append(out, a)
			continue
		}
		f, err := readSettingsValue(val, dir)
		if err != nil {
			return nil, nil, err
		}
		found = &f
	}
	return out, found, nil
}

func readSettingsValue(val, dir string) (settingsFile, error) {
	path, raw := "claude's --settings", []byte(val)
	if !strings.HasPrefix(strings.TrimSpace(val), "{") {
		path = val
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return settingsFile{}, fmt.Errorf("reading claude's --settings file (cloak merges its own settings into it): %w", pathErr(err))
		}
	}
	f, err := parseSettings(path, raw)
	if err != nil {
		return f, fmt.Errorf("%s is not a JSON object, so cloak cannot merge its own settings into it", path)
	}
	return f, nil
}

// parseSettings reads the parts of a settings file cloak cares about. The
// JSON error is not passed on: it could quote the file, secrets included.
func parseSettings(path string, raw []byte) (settingsFile, error) {
	f := settingsFile{path: path, raw: raw}
	var doc struct {
		Env          map[string]any `json:"env"`
		APIKeyHelper any            `json:"apiKeyHelper"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return f, errors.New("not a JSON object")
	}
	f.env = map[string]string{}
	for k, v := range doc.Env {
		if s, ok := v.(string); ok {
			f.env[k] = s
		} else {
			f.env[k] = fmt.Sprint(v)
		}
	}
	f.helper = doc.APIKeyHelper != nil && doc.APIKeyHelper != ""
	return f, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// forClaude returns the argv to start: argv itself, or for claude, argv
// with cloak's --settings, after warning about the settings it overrides.
func forClaude(argv, env []string, secrets []scrub.Secret, warn func(string)) ([]string, error) {
	if !isClaude(argv[0]) {
		return argv, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("finding the working directory for claude's settings: %w", err)
	}
	run, err := claudeArgs(claudeInput{
		argv: argv, env: env, secrets: secrets,
		settings: readClaudeSettings(env, dir), dir: dir,
	})
	if err != nil {
		return nil, err
	}
	for _, w := range run.warnings {
		warn(w)
	}
	return run.argv, nil
}
