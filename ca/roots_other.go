//go:build !linux && !darwin

package ca

import "runtime"

// rootPaths is empty: this package does not know where this platform keeps
// its trusted roots.
var rootPaths []string

// unsupported says why SystemRoots fails here.
const unsupported = "platform " + runtime.GOOS + " is not supported"
