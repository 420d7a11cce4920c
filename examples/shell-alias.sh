# Run Claude Code under cloak whenever you type `claude`.
#
# Source this file from ~/.bashrc or ~/.zshrc:   . /path/to/shell-alias.sh
# fish: add `cloak shell-init fish | source` to ~/.config/fish/config.fish.
#
# `command claude` still runs claude without cloak; inside a cloak session
# (CLOAK=1) the function runs claude under that session.
if [ -n "${ZSH_VERSION:-}" ]; then
	eval "$(cloak shell-init zsh)"
elif [ -n "${BASH_VERSION:-}" ]; then
	eval "$(cloak shell-init bash)"
fi
