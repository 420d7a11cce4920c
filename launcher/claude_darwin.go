package launcher

// managedClaudeSettings is where an administrator's Claude Code policy
// lives; it beats every other settings source, --settings included.
var managedClaudeSettings = []string{"/Library/Application Support/ClaudeCode/managed-settings.json"}
