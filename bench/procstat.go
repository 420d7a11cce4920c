package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux the harness targets; reading it would need cgo.
const clockTicks = 100

// procTree is a proxy's processes: the root and its descendants, minus the
// load client (which runs as cloak's child) and whatever it starts. squid's
// certificate helpers are children of squid and count as squid.
type procTree struct {
	root    int
	exclude int
	alone   bool // the root only, not its descendants
}

// pids lists the processes of the tree as it is now.
func (t procTree) pids() []int {
	if t.alone {
		return []int{t.root}
	}
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[pid] = pp
		}
	}
	in := func(pid int) bool {
		for p := pid; p > 1; p = parent[p] {
			if p == t.exclude {
				return false
			}
			if p == t.root {
				return true
			}
		}
		return false
	}
	var out []int
	for pid := range parent {
		if in(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name
// (which may hold spaces): state, ppid, ... so utime is index 11.
func statFields(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// cpu is the user+system CPU time the tree has used so far. A process that
// exited takes its time with it; the proxies measured here do not fork
// short-lived workers.
func (t procTree) cpu() time.Duration {
	var ticks int64
	for _, pid := range t.pids() {
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// memory is the tree's resident set now and its high-water mark, in bytes,
// summed over its processes.
func memory(pids []int) (rss, hwm int64) {
	m := memoryDetail(pids)
	return m["VmRSS"], m["VmHWM"]
}

// memoryDetail sums the memory lines of /proc/PID/status (VmRSS, VmHWM,
// RssAnon: the heap and stacks, RssFile: the mapped program and libraries)
// over pids, in bytes.
func memoryDetail(pids []int) map[string]int64 {
	out := map[string]int64{}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch k {
			case "VmRSS", "VmHWM", "RssAnon", "RssFile":
				out[k] += kib(v)
			}
		}
	}
	return out
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n << 10
}

// rssSampler records the largest resident set of a tree while it runs. It
// samples every 5 ms and looks for new processes every 200 ms.
type rssSampler struct {
	tree procTree
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  int64
}

func sampleRSS(t procTree) *rssSampler {
	s := &rssSampler{tree: t, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *rssSampler) loop() {
	defer close(s.done)
	pids := s.tree.pids()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		if i%40 == 39 {
			pids = s.tree.pids()
		}
		rss, _ := memory(pids)
		s.mu.Lock()
		s.max = max(s.max, rss)
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// Stop ends sampling and returns the largest resident set seen.
func (s *rssSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}
