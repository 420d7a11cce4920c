package launcher

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

// proxyVars all point at the session's proxy. Node reads the lower-case
// ones first, curl only the lower-case http_proxy; setting all of them
// leaves no client a stale value from the parent.
var proxyVars = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}

// bundleVars replace a client's whole trust store, so they get the combined
// bundle (the roots the user trusts plus cloak's CA), never the CA alone.
var bundleVars = []string{
	"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
	"AWS_CA_BUNDLE", "PIP_CERT", "npm_config_cafile", "NPM_CONFIG_CAFILE",
	"DENO_CERT", "CARGO_HTTP_CAINFO", "NIX_SSL_CERT_FILE", "HEX_CACERTS_PATH",
	"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
	"HTTPLIB2_CA_CERTS",
}

// noProxy keeps loopback direct, and nothing else: a bound host listed in
// the parent's NO_PROXY would bypass the proxy and its swap.
const noProxy = "localhost,127.0.0.1,::1"

// childEnvInput is everything the child's environment is made from.
type childEnvInput struct {
	parent     []string
	secrets    []scrub.Secret
	plain      []secret // short values from a secrets file, passed as is
	proxyURL   string
	extraPath  string // NODE_EXTRA_CA_CERTS: added to Node's own roots
	bundlePath string // for variables that replace the trust store
	session    string
	rules      map[string][]proxy.Rule
	warn       func(string)
}

// childEnv builds the child's environment and checks, last of all, that no
// real value is left in it.
func childEnv(in childEnvInput) ([]string, error) {
	env, err := scrub.Env(in.parent, in.secrets, nil)
	if err != nil {
		return nil, fmt.Errorf("scrubbing the environment: %w", err)
	}
	for _, s := range in.secrets {
		env = scrub.Set(env, s.Name, s.Dummy)
	}
	for _, s := range in.plain {
		env = scrub.Set(env, s.name, s.real)
	}
	for _, v := range proxyVars {
		env = scrub.Set(env, v, in.proxyURL)
	}
	env = scrub.Set(env, "NO_PROXY", noProxy)
	env = scrub.Set(env, "no_proxy", noProxy)
	env = scrub.Set(env, "NODE_EXTRA_CA_CERTS", in.extraPath)
	// Node's own http, https and fetch ignore proxy variables unless this
	// is set (and the Node version knows it); older versions ignore it.
	env = scrub.Set(env, "NODE_USE_ENV_PROXY", "1")
	// git asks libcurl to probe the proxy's auth methods with a first
	// CONNECT without credentials, which cloak refuses (407) and reports.
	env = scrub.Set(env, "GIT_HTTP_PROXY_AUTHMETHOD", "basic")
	for _, v := range bundleVars {
		env = scrub.Set(env, v, in.bundlePath)
	}
	env = scrub.Set(env, "CLOAK", "1")
	env = scrub.Set(env, "CLOAK_SESSION", in.session)
	env = checkBaseURL(env, in.rules, in.warn)

	if leaked := scrub.Leaks(env, in.secrets); len(leaked) > 0 {
		return nil, fmt.Errorf("the child's environment would still hold the real value of %s; not starting it", strings.Join(leaked, ", "))
	}
	return env, nil
}

// anthropicKeys are the secrets Claude Code sends to ANTHROPIC_BASE_URL.
var anthropicKeys = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"}

// checkBaseURL keeps ANTHROPIC_BASE_URL only if the loaded Anthropic
// secrets may go to its host; otherwise every request would carry a dummy
// that is refused there.
func checkBaseURL(env []string, rules map[string][]proxy.Rule, warn func(string)) []string {
	val, ok := lookup(env, "ANTHROPIC_BASE_URL")
	if !ok || val == "" {
		return env
	}
	u, err := url.Parse(val)
	host, port, herr := "", 0, err
	if err == nil {
		def := 443
		if u.Scheme == "http" {
			def = 80
		}
		host, port, herr = proxy.SplitHostPort(u.Host, def)
	}
	for _, name := range anthropicKeys {
		rs, loaded := rules[name]
		if !loaded {
			continue
		}
		allowed := false
		for _, r := range rs {
			for _, h := range r.Hosts {
				if herr == nil && u.Scheme == "https" && h.Match(host, port) {
					allowed = true
				}
			}
		}
		if !allowed {
			warn(fmt.Sprintf("ANTHROPIC_BASE_URL is not a host %s is bound to: removed from the child's environment (bind it with --bind %s=HOST)", name, name))
			return remove(env, "ANTHROPIC_BASE_URL")
		}
	}
	return env
}

func lookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func remove(env []string, key string) []string {
	out := env[:0:0]
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return out
}
