package launcher

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tc := range []struct {
		name string
		env  string // GOMEMLIMIT, "" for unset
		want int64
	}{
		{"default", "", softMemoryLimit},
		{"the user's GOMEMLIMIT wins", "200MiB", math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			t.Setenv("GOMEMLIMIT", tc.env) // restored after the test
			if tc.env == "" {
				os.Unsetenv("GOMEMLIMIT")
			}
			limitMemory()
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Fatalf("memory limit %d, want %d", got, tc.want)
			}
		})
	}
}
