package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// How a row compares a target with direct, round by round.
const (
	asIs  = iota // the value itself
	ratio        // value / direct
	added        // value - direct
)

// row is one figure of the table. For ratio and added rows the check
// applies to the comparison with direct; goal is the target for cloak.
type row struct {
	metric string
	label  string
	unit   string
	cmp    int
	goal   string                   // shown; "" when there is no target
	met    func(cloak float64) bool // nil when there is no target
}

func atMost(limit float64) func(float64) bool  { return func(v float64) bool { return v <= limit } }
func atLeast(limit float64) func(float64) bool { return func(v float64) bool { return v >= limit } }

var rows = []row{
	{"get32_rps", "small GET req/s, 32 clients", "req/s", ratio, "≥ 0.45× direct", atLeast(0.45)},
	{"get1_p50_ms", "small GET p50, 1 client", "ms", added, "≤ +0.15 ms", atMost(0.15)},
	{"get1_p99_ms", "small GET p99, 1 client", "ms", added, "", nil},
	{"get32_p99_ms", "small GET p99, 32 clients", "ms", asIs, "", nil},
	{"get32_cpu_us_per_req", "proxy CPU per small GET, 32 clients", "µs", asIs, "", nil},
	{"get32_client_cpu_us_per_req", "client CPU per small GET, 32 clients", "µs", asIs, "", nil},
	{"get32_upstream_cpu_us_per_req", "upstream CPU per small GET, 32 clients", "µs", asIs, "", nil},
	{"get32_upstream_conns_per_1k", "upstream connections opened per 1000 GETs, 32 clients", "conns", asIs, "", nil},
	{"post64k_rps", "64 KiB POST req/s, 8 clients", "req/s", ratio, "", nil},
	{"post64k_cpu_us_per_req", "proxy CPU per 64 KiB POST", "µs", asIs, "", nil},
	{"sse_delay_p50_ms", "SSE event delay p50", "ms", added, "", nil},
	{"sse_delay_p99_ms", "SSE event delay p99", "ms", added, "≤ +1 ms", atMost(1)},
	{"sse_delay_max_ms", "SSE event delay max", "ms", asIs, "", nil},
	{"sse_late_events", "SSE events later than 12 ms", "events", asIs, "0", atMost(0)},
	{"sse_ttfb_p50_ms", "SSE time to first event p50", "ms", added, "", nil},
	{"sse_after_get_p50_ms", "GET right after a stream, p50", "ms", asIs, "", nil},
	{"sse_after_newconn_frac", "GET after a stream needs a new connection", "share", asIs, "", nil},
	{"newconn_known_p50_ms", "new connection, known host, p50", "ms", asIs, "≤ 2.5 ms", atMost(2.5)},
	{"newconn_fresh_p50_ms", "new connection, new host name, p50", "ms", asIs, "≤ 3 ms", atMost(3)},
	{"rss_idle_mib", "proxy RSS idle", "MiB", asIs, "≤ 15 MiB", atMost(15)},
	{"rss_idle_anon_mib", "of which heap and stacks (RssAnon)", "MiB", asIs, "", nil},
	{"rss_idle_file_mib", "of which mapped program files (RssFile)", "MiB", asIs, "", nil},
	{"rss_start_mib", "proxy RSS before any request", "MiB", asIs, "", nil},
	{"rss_peak256_mib", "proxy RSS peak, 256 clients", "MiB", asIs, "≤ 48 MiB", atMost(48)},
	{"get256_rps", "small GET req/s, 256 clients", "req/s", ratio, "", nil},
	{"get256_upstream_conns_per_1k", "upstream connections opened per 1000 GETs, 256 clients", "conns", asIs, "", nil},
	{"upload_mbps", "upload throughput", "MiB/s", ratio, "≥ 0.6× direct", atLeast(0.6)},
	{"upload_rss_growth_mib", "proxy RSS growth during upload", "MiB", asIs, "≤ 8 MiB", atMost(8)},
	{"upload_cpu_ms_per_mib", "proxy CPU per MiB uploaded", "ms", asIs, "", nil},
	{"download_mbps", "download throughput", "MiB/s", ratio, "", nil},
	{"download_cpu_ms_per_mib", "proxy CPU per MiB downloaded", "ms", asIs, "", nil},
	{"startup_added_ms", "`cloak run -- true` minus `true`", "ms", asIs, "≤ 15 ms", atMost(15)},
	{"startup_added_ms_upstream_ca", "the same with --upstream-ca", "ms", asIs, "", nil},
	{"swap_misses", "requests upstream saw without the real key", "requests", asIs, "0", atMost(0)},
}

// cell is one target's figure in a row: the median of its rounds, and the
// median of the per-round comparison with direct.
type cell struct {
	Value   float64 `json:"value"`
	Compare float64 `json:"compare,omitempty"`
	Rounds  int     `json:"rounds"`
}

type tableRow struct {
	Metric string          `json:"metric"`
	Label  string          `json:"label"`
	Unit   string          `json:"unit"`
	Cells  map[string]cell `json:"cells"`
	Goal   string          `json:"goal,omitempty"`
	Met    *bool           `json:"met,omitempty"`
}

// summarise builds the table from every round's figures. Rounds are
// paired: round r of a target is compared with round r of direct, which ran
// next to it.
func summarise(names []string, runs map[string][]map[string]float64) []tableRow {
	var out []tableRow
	for _, r := range rows {
		tr := tableRow{Metric: r.metric, Label: r.label, Unit: r.unit, Goal: r.goal, Cells: map[string]cell{}}
		for _, n := range names {
			var vals, cmps []float64
			for i, m := range runs[n] {
				v, ok := m[r.metric]
				if !ok || math.IsNaN(v) {
					continue
				}
				vals = append(vals, v)
				if r.cmp == asIs || n == "direct" || i >= len(runs["direct"]) {
					continue
				}
				d, ok := runs["direct"][i][r.metric]
				if !ok {
					continue
				}
				switch r.cmp {
				case ratio:
					cmps = append(cmps, v/d)
				case added:
					cmps = append(cmps, v-d)
				}
			}
			if len(vals) == 0 {
				continue
			}
			c := cell{Value: median(vals), Rounds: len(vals)}
			if len(cmps) > 0 {
				c.Compare = median(cmps)
			}
			tr.Cells[n] = c
		}
		if c, ok := tr.Cells["cloak"]; ok && r.met != nil {
			v := c.Value
			if r.cmp != asIs {
				v = c.Compare
			}
			met := r.met(v)
			tr.Met = &met
		}
		out = append(out, tr)
	}
	return out
}

// writeTable prints the table as Markdown, which reads fine in a terminal.
func writeTable(w io.Writer, names []string, table []tableRow) {
	fmt.Fprintf(w, "| figure | %s | target for cloak | met |\n", strings.Join(names, " | "))
	fmt.Fprintf(w, "| --- |%s --- | --- |\n", strings.Repeat(" ---: |", len(names)))
	for _, tr := range table {
		var cells []string
		for _, n := range names {
			c, ok := tr.Cells[n]
			if !ok {
				cells = append(cells, "–")
				continue
			}
			s := format(c.Value) + " " + tr.Unit
			if n != "direct" && c.Compare != 0 {
				switch rowCmp(tr.Metric) {
				case ratio:
					s += fmt.Sprintf(" (%.2f×)", c.Compare)
				case added:
					s += fmt.Sprintf(" (%+.2f)", c.Compare)
				}
			}
			cells = append(cells, s)
		}
		met := ""
		if tr.Met != nil {
			met = "no"
			if *tr.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", tr.Label, strings.Join(cells, " | "), tr.Goal, met)
	}
}

func rowCmp(metric string) int {
	for _, r := range rows {
		if r.metric == metric {
			return r.cmp
		}
	}
	return asIs
}

func format(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
