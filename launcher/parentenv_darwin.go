package launcher

// parentHolds is not checked on macOS: there is no /proc, and reading
// another process's environment takes sysctl(KERN_PROCARGS2). A same-user
// process can still read it that way; the README says so.
func parentHolds([]secret) (int, []string) { return 0, nil }
