package launcher

import (
	"fmt"
	"strings"
)

// Shells lists the shells ShellInit knows.
var Shells = []string{"bash", "zsh", "fish"}

// ShellInit returns shell code that makes `claude` run under cloak.
//
// It defines a function, not an alias: arguments pass through exactly
// ("$@" and $argv keep every word, empty ones included), and a completion
// registered for the command name claude keeps working for a function of
// that name. It cannot recurse: `command` skips functions, and cloak
// itself looks claude up on PATH, where shell functions do not exist. An
// alias named claude (a local install of Claude Code may add one) would beat
// the function, so it is removed.
func ShellInit(shell string) (string, error) {
	switch shell {
	case "bash", "zsh":
		return fmt.Sprintf(`# cloak: run claude under cloak. Add to ~/.%src:  eval "$(cloak shell-init %s)"
# "command claude" still runs claude without cloak.
unalias claude 2>/dev/null
function claude {
	command cloak run -- claude "$@"
}
`, shell, shell), nil
	case "fish":
		return `# cloak: run claude under cloak. Add to ~/.config/fish/config.fish:  cloak shell-init fish | source
# "command claude" still runs claude without cloak.
functions --erase claude
function claude --wraps claude --description 'claude under cloak'
	command cloak run -- claude $argv
end
`, nil
	}
	return "", usage(fmt.Errorf("shell-init: unknown shell %q (want one of: %s)", shell, strings.Join(Shells, ", ")))
}
