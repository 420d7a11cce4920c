package launcher

import (
	"os"
	"runtime/debug"
)

// softMemoryLimit is the heap size (plus stacks and runtime, not the mapped
// program) at which cloak's collector starts working harder. Under Go's
// default pacing a burst of connections (an agent's parallel requests)
// lets the heap grow to twice what is live, and cloak keeps that memory
// for minutes; with the limit, 256 parallel connections stay under 48 MiB
// resident. Below the limit nothing changes; a live heap above it only
// makes the collector run more often (Go bounds its share of the CPU).
const softMemoryLimit = 36 << 20

// limitMemory sets the soft memory limit, unless the user set GOMEMLIMIT,
// which wins.
func limitMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	debug.SetMemoryLimit(softMemoryLimit)
}
