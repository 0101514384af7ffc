package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

const sampleBench = `goos: linux
BenchmarkRawVerify/RS256-2   	   40000	     30000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkRawVerify/ES256-2   	   17000	     62000 ns/op	    1216 B/op	      21 allocs/op
BenchmarkRawVerify/ES256-2   	   17000	     60000 ns/op	    1216 B/op	      21 allocs/op
BenchmarkRawVerify/ES256-2   	   17000	     90000 ns/op	    1216 B/op	      21 allocs/op
BenchmarkIntrospectHit-2     	 1000000	      1200 ns/op	       0 B/op	       0 allocs/op
BenchmarkMissPath/RS256-2    	   40000	     33000 ns/op	    5000 B/op	      28 allocs/op
BenchmarkMissPath/ES256-2    	   17000	     80000 ns/op	    6500 B/op	      47 allocs/op
BenchmarkCachedTokenBytes-2  	       1	6300000000 ns/op	      1081 bytes/token	       924.8 cost/token	       300.0 gc-ns/token	309291656 B/op	 1021952 allocs/op
BenchmarkCachedTokenBytes-2  	       1	6100000000 ns/op	      1085 bytes/token	       924.8 cost/token	       110.0 gc-ns/token	309291656 B/op	 1021952 allocs/op
BenchmarkCachedTokenBytes-2  	       1	6200000000 ns/op	      1083 bytes/token	       924.8 cost/token	       120.0 gc-ns/token	309291656 B/op	 1021952 allocs/op
PASS
`

func TestParseGoBench(t *testing.T) {
	got := ParseGoBench(sampleBench, "x.bench.txt")
	if len(got) != 6 {
		t.Fatalf("got %d benchmarks, want 6: %+v", len(got), got)
	}
	// A benchmark's own metrics, each the median of its runs (gc-ns/token
	// 120, though the run with the median ns/op had 300).
	want := []Metric{{1083, "bytes/token"}, {924.8, "cost/token"}, {120, "gc-ns/token"}}
	if g := got[5]; g.Name != "BenchmarkCachedTokenBytes" || !slices.Equal(g.Extra, want) || g.NsPerOp != 6.2e9 {
		t.Errorf("own metrics: got %s %v ns/op %+v, want %+v", g.Name, g.NsPerOp, g.Extra, want)
	}
	if got[1].Name != "BenchmarkRawVerify/ES256" || got[1].NsPerOp != 62000 {
		t.Errorf("ES256: got %s %v ns/op, want the median 62000", got[1].Name, got[1].NsPerOp)
	}
	if !got[2].HasAllocs || got[2].AllocsPerOp != 0 || got[2].BytesPerOp != 0 {
		t.Errorf("hit: got %+v, want 0 allocs/op recorded", got[2])
	}
}

func sampleResult(name, scenario, alg, mode string, rps, p99, cpu float64) *Result {
	r := &Result{Tool: "introspect-bench", Name: name, Scenario: scenario, Alg: alg, Mode: mode,
		Connections: 50, Tokens: 10000, Throughput: rps, Requests: int64(rps * 10), Elapsed: 10,
		Latency: Latency{Count: int64(rps * 10), P50: p99 / 4, P90: p99 / 2, P99: p99, P999: p99 * 2, Max: p99 * 4},
		Errors:  map[string]int64{}, Classes: map[string]ClassResult{},
		Server: &ServerResult{procInfo: procInfo{PID: 1, Command: []string{"bin/" + name}, CPUs: "0"}, CPUPerReq: cpu, CPUUtil: 1},
		Client: ClientResult{procInfo: procInfo{CPUs: "1"}, Args: []string{"introspect-bench", "-name", name}},
	}
	r.OK = r.Requests
	if mode == "open" {
		r.Rate = 50000
	}
	return r
}

func TestBuildReport(t *testing.T) {
	dir := t.TempDir()
	write := func(file string, r *Result) {
		if err := writeJSON(filepath.Join(dir, file), r); err != nil {
			t.Fatal(err)
		}
	}
	write("hit-fixed.json", sampleResult(NameFixed, "hit", "ES256", "closed", 100000, 400, 5))
	ours := sampleResult(NameOurs, "hit", "ES256", "closed", 90000, 440, 9)
	ours.Metrics = map[string]MetricDelta{
		`introspectd_request_duration_seconds_bucket{endpoint="authz",le="1e-05"}`:        {0, 1000},
		`introspectd_request_duration_seconds_bucket{endpoint="authz",le="+Inf"}`:         {0, 1000},
		`introspectd_request_duration_seconds_bucket{endpoint="introspect",le="2.5e-05"}`: {0, 990},
		`introspectd_request_duration_seconds_bucket{endpoint="introspect",le="5e-05"}`:   {0, 1000},
		`introspectd_request_duration_seconds_bucket{endpoint="introspect",le="+Inf"}`:    {0, 1000},
	}
	ours.Histograms = histogramEstimates(ours.Metrics)
	write("hit-ours.json", ours)
	zipf := sampleResult(NameOurs, "hit", "ES256", "closed", 120000, 300, 8)
	zipf.Zipf, zipf.Tokens = 1.01, 100000
	write("hit-zipf-ours.json", zipf)
	write("hit-nethttp.json", sampleResult(NameNetHTTP, "hit", "ES256", "closed", 9000, 9000, 100))
	write("miss-nethttp.json", sampleResult(NameNetHTTP, "miss", "ES256", "closed", 8000, 9000, 120))
	write("open-fixed.json", sampleResult(NameFixed, "hit", "ES256", "open", 50000, 100, 6))
	write("open-ours.json", sampleResult(NameOurs, "hit", "ES256", "open", 50000, 200, 10))
	miss := sampleResult(NameOurs, "miss", "ES256", "closed", 14000, 5000, 75)
	miss.StoppedEarly = "fresh-token pool exhausted after 5.0s"
	write("miss-ours.json", miss)
	mem := sampleResult(NameOurs, "hit", "EdDSA", "closed", 80000, 500, 10)
	mem.Tokens, mem.TokenBytes = 1000000, 799
	mem.Warm = &WarmResult{Requests: 1000000, RSSBefore: 20 << 20, RSSAfter: 20<<20 + 1400*1000000, BytesPerToken: 1400}
	mem.Metrics = map[string]MetricDelta{`introspectd_cache_hits_total{cache="verified"}`: {100, 100 + float64(mem.Requests)}}
	write("hit-1m-ours.json", mem)
	g := sampleResult(NameOurs, "garbage", "ES256", "closed", 40000, 900, 20)
	g.Classes = map[string]ClassResult{"hit": {Requests: 300000}, "garbage": {Requests: 1100000}}
	g.Metrics = map[string]MetricDelta{
		`introspectd_cache_hits_total{cache="verified"}`: {0, 297000},
		`introspectd_cache_hits_total{cache="failed"}`:   {0, 500000},
	}
	write("garbage-ours.json", g)
	if err := os.WriteFile(filepath.Join(dir, "raw.bench.txt"), []byte(sampleBench), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "commands.txt"), []byte("taskset -c 1 bin/introspect-bench -name fixed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.json"), []byte(`{"tool":"something else"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	md, err := BuildReport(dir, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	row := func(prefix string) string {
		for line := range strings.SplitSeq(md, "\n") {
			if strings.HasPrefix(line, "| "+prefix) || strings.HasPrefix(line, "- "+prefix) {
				return line
			}
		}
		t.Errorf("no row starting %q in\n%s", prefix, md)
		return ""
	}
	for _, c := range []struct{ row, want string }{
		{"cache-hit throughput vs fixed-body ceiling", "| 90,000 req/s | 100,000 req/s (fixed) | 90.0% | ≥ 85% | met |"},
		{"ES256 hit throughput vs net/http", "| 10.0× | ≥ 5× | met |"},
		{"open loop, half the ceiling's peak rate: p99 (50,000 req/s)", "| 200.0 µs | 100.0 µs (fixed) | 2.00× | ≤ 1.5× | **not met** |"},
		{"time inside the server for a hit", "≤ 25 µs (bucket bound, `introspectd_request_duration_seconds{endpoint=\"introspect\"}`) | — | — | < 50 µs | met |"},
		{"hit path allocations", "`BenchmarkIntrospectHit` 0 allocs/op"},
		{"ES256 miss path vs raw verify", "| `BenchmarkMissPath/ES256` 80.0 µs, 47 allocs/op; server CPU 75.0 µs/req | 62.0 µs (`BenchmarkRawVerify/ES256`) | in-process 1.29×; server CPU per miss 0.62× of nethttp-jwt's (120.0 µs/req) | ≤ 1.2× | **not met** |"},
		{"RS256 miss path vs raw verify", "| `BenchmarkMissPath/RS256` 33.0 µs, 28 allocs/op | 30.0 µs (`BenchmarkRawVerify/RS256`) | in-process 1.10× | ≤ 1.2× | met |"},
		{"EdDSA miss path", "not measured"},
		{"memory per cached token", "1400 B × 1000000 tokens of 799 B (RSS 20 → 1355 MiB); cache hit ratio afterwards 1.0000 (server metrics) | — | — | ≤ 1.5 KiB each, 1,000,000 tokens, all in | met |"},
		{"hot tokens under a garbage flood", "1100000 garbage requests; hot p50 0.0 µs, p99 0.0 µs; hot-token cache hit ratio 0.9900 (server metrics) | hit run p50 110.0 µs, p99 440.0 µs | p50 0.00× | hit ratio kept with 1,000,000 garbage tokens | met |"},
		{"`hit-ours.json` | introspectd | hit | ES256 | closed", "| 0.90× req/s, 1.10× p99 | 10.0× req/s, 0.05× p99 |"},
		{"`miss-ours.json`:", "stopped early: fresh-token pool exhausted"},
		{"BenchmarkRawVerify/ES256", "| 62,000 |"},
	} {
		if got := row(c.row); !strings.Contains(got, c.want) {
			t.Errorf("row %q:\ngot  %s\nwant it to contain %s", c.row, got, c.want)
		}
	}
	for _, want := range []string{"# introspectd benchmark, 2026-01-02 03:04 UTC", "## Machine", "| Go | go1.", "taskset -c 1 bin/introspect-bench -name fixed", "server `bin/introspectd` on CPUs 0", "| BenchmarkCachedTokenBytes | 6,200,000,000 | 309291656 | 1021952 | 1,083 bytes/token, 925 cost/token, 120 gc-ns/token | `raw.bench.txt` |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "something else") {
		t.Error("report read a JSON file that is not a result")
	}
}

func TestHistogramEstimates(t *testing.T) {
	body := []byte(`# HELP x_duration_seconds d
# TYPE x_duration_seconds histogram
x_duration_seconds_bucket{endpoint="a",le="1e-05"} 50
x_duration_seconds_bucket{endpoint="a",le="5e-05"} 99
x_duration_seconds_bucket{endpoint="a",le="+Inf"} 100
x_duration_seconds_count{endpoint="a"} 100
x_requests_total{outcome="active"} 7
other_metric 3
`)
	got := parseExposition(body, nil)
	if got[`x_requests_total{outcome="active"}`] != 7 || got["other_metric"] != 3 || len(got) != 6 {
		t.Errorf("parseExposition: got %v", got)
	}
	before := map[string]float64{`x_duration_seconds_bucket{endpoint="a",le="1e-05"}`: 10, `x_duration_seconds_bucket{endpoint="a",le="5e-05"}`: 10, `x_duration_seconds_bucket{endpoint="a",le="+Inf"}`: 10}
	h := histogramEstimates(metricDeltas(before, got))
	e, ok := h[`x_duration_seconds{endpoint="a"}`]
	if !ok || e.Count != 90 || e.P50Le != 5e-5 || e.P99Le != -1 {
		t.Errorf("got %+v, want 90 observations, p50 ≤ 50 µs, p99 beyond the last finite bucket", h)
	}
}

// TestOpenLoopVerdict: a long send lag makes the open-loop target
// inconclusive on the goroutine engine, where it is the load tool's; on the
// spin engine only the tool's own load does.
func TestOpenLoopVerdict(t *testing.T) {
	tests := []struct {
		engine string
		busy   float64 // spin engine: the tool's busy share
		want   string
	}{
		{EngineGoroutines, 0, "inconclusive"},
		{EngineSpin, 0.5, "**not met**"},
		{EngineSpin, 0.95, "inconclusive"},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		fixed := sampleResult(NameFixed, "hit", "ES256", "open", 50000, 100, 6)
		ours := sampleResult(NameOurs, "hit", "ES256", "open", 50000, 300, 10)
		for _, r := range []*Result{fixed, ours} {
			r.Engine, r.Client.Busy, r.Client.CPUUtil = tc.engine, tc.busy, 0.5
			if tc.engine == EngineSpin {
				r.Client.CPUUtil = 1
			}
			r.Server.CPUUtil = 0.7
			r.SendLag = &Latency{P99: r.Latency.P99 * 0.8}
			r.ServiceTime = &Latency{P99: r.Latency.P99 / 2}
		}
		for file, r := range map[string]*Result{"open-fixed.json": fixed, "open-ours.json": ours} {
			if err := writeJSON(filepath.Join(dir, file), r); err != nil {
				t.Fatal(err)
			}
		}
		row := openLoopRow(t, dir)
		if !strings.Contains(row, "| 3.00× | ≤ 1.5× | "+tc.want) {
			t.Errorf("%s engine, busy %.2f: row %s, want verdict %s", tc.engine, tc.busy, row, tc.want)
		}
	}
}

// openLoopRow builds the report of the results in dir and returns its
// open-loop target row.
func openLoopRow(t *testing.T, dir string) string {
	t.Helper()
	md, err := BuildReport(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(line, "| open loop, half the ceiling's peak rate") {
			return line
		}
	}
	return ""
}

// TestOpenLoopPairs: with several alternating pairs of open-loop runs the
// verdict is on the median ratio, pairs matched in the order they ran.
func TestOpenLoopPairs(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, p99 := range [][2]float64{{100, 100}, {100, 300}, {200, 240}} { // fixed, ours: 1.0×, 3.0×, 1.2×
		for j, name := range []string{NameFixed, NameOurs} {
			r := sampleResult(name, "hit", "ES256", "open", 50000, p99[j], 6)
			r.Engine, r.Client.Busy = EngineSpin, 0.5
			r.Started = start.Add(time.Duration(2*i+j) * time.Minute)
			if err := writeJSON(filepath.Join(dir, fmt.Sprintf("open-%s-%d.json", name, i)), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	md, err := BuildReport(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := "| 100.0 µs, 300.0 µs, 240.0 µs | 100.0 µs, 100.0 µs, 200.0 µs (fixed) | median 1.20× of 3 pairs (1.00×, 3.00×, 1.20×) | ≤ 1.5× | met |"
	if !strings.Contains(md, want) {
		t.Errorf("report lacks %s in\n%s", want, md)
	}
}

// tailRun is a run of 1,000 requests, the slowest tail of them at 1 ms and
// the rest at 10 µs: its p99 is 1 ms when its tail is 2% or more.
func tailRun(t *testing.T, name string, tail int, started time.Time) *Result {
	t.Helper()
	h := newHist()
	for i := range 1000 {
		d := 10 * time.Microsecond
		if i < tail {
			d = time.Millisecond
		}
		record(h, d)
	}
	r := sampleResult(name, "hit", "ES256", "open", 50000, 0, 6)
	r.Latency = summarize(h)
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	r.LatencyHist = string(b)
	r.Engine, r.Client.Busy = EngineSpin, 0.5
	r.Started = started
	return r
}

// TestOpenLoopPooled: when the runs carry their histograms, the verdict is
// on the pooled p99, so neither one pair's heavy tail nor the luck of
// which pairs were quiet decides it; a control pair of identical servers
// whose pooled p99s differ by more than controlLimit makes it
// inconclusive.
func TestOpenLoopPooled(t *testing.T) {
	tests := []struct {
		name               string
		fixed, ours        [3]int // tail sizes per pair
		controlA, controlB []int
		want               string
		wantAlso           string // more the row must say, if not empty
	}{
		// Per-pair ratios 1, 1, 100: median 1×. Pooled, ours has 60 slow
		// requests of 3,000 (p99 1 ms) and the ceiling 20 (p99 10 µs).
		{name: "one heavy pair", fixed: [3]int{20, 0, 0}, ours: [3]int{20, 0, 40}, want: "| ≤ 1.5× | **not met** |"},
		{name: "alike", fixed: [3]int{20, 0, 0}, ours: [3]int{20, 0, 5}, want: "| ≤ 1.5× | met |"},
		// Per-pair ratios 100, 100, 0.01: median 100×; pooled, 40 slow
		// requests of 3,000 each: 1×.
		{name: "quiet pairs by luck", fixed: [3]int{0, 0, 40}, ours: [3]int{20, 20, 0}, want: "| ≤ 1.5× | met |"},
		{name: "control alike", fixed: [3]int{20, 0, 0}, ours: [3]int{20, 0, 5},
			controlA: []int{30, 0}, controlB: []int{0, 30}, want: "| ≤ 1.5× | met |"},
		// The control's pooled p99s: 1 ms (40 of 2,000) against 10 µs.
		{name: "noisy control", fixed: [3]int{20, 0, 0}, ours: [3]int{20, 0, 5},
			controlA: []int{20, 20}, controlB: []int{0, 0}, want: "| ≤ 1.5× | inconclusive: the control's two identical servers differed by 100.0× (more than 1.25×)"},
		// One control pair: its ratio said once, not as a pool and a median.
		{name: "one control pair", fixed: [3]int{20, 0, 0}, ours: [3]int{20, 0, 5},
			controlA: []int{0}, controlB: []int{0}, want: "| ≤ 1.5× | met |",
			wantAlso: "two identical ceilings paired alike: p99 1.00× (10.0 µs vs 10.0 µs) |"},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		write := func(file string, r *Result) {
			if err := writeJSON(filepath.Join(dir, file), r); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			at := start.Add(time.Duration(i) * time.Minute)
			write(fmt.Sprintf("open-fixed-%d.json", i), tailRun(t, NameFixed, tc.fixed[i], at))
			write(fmt.Sprintf("open-ours-%d.json", i), tailRun(t, NameOurs, tc.ours[i], at.Add(time.Millisecond)))
		}
		for i := range tc.controlA {
			at := start.Add(time.Hour + time.Duration(i)*time.Minute)
			write(fmt.Sprintf("control-a-%d.json", i), tailRun(t, NameControlA, tc.controlA[i], at))
			write(fmt.Sprintf("control-b-%d.json", i), tailRun(t, NameControlB, tc.controlB[i], at))
		}
		row := openLoopRow(t, dir)
		if !strings.Contains(row, "pooled p99") || !strings.Contains(row, tc.want) {
			t.Errorf("%s: row %s, want a pooled p99 and %s", tc.name, row, tc.want)
		}
		if !strings.Contains(row, tc.wantAlso) {
			t.Errorf("%s: row %s, want %s", tc.name, row, tc.wantAlso)
		}
		if hasControl := strings.Contains(row, "control, two identical ceilings") && strings.Contains(row, "`control-a-0.json`"); hasControl != (tc.controlA != nil) {
			t.Errorf("%s: row %s: control described and cited %v, want %v", tc.name, row, hasControl, tc.controlA != nil)
		}
	}
}

// TestOpenLoopPartners: paired runs are compared with the run they shared
// their window with, not with whichever ran next.
func TestOpenLoopPartners(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(file, name, paired string, p99 float64, at time.Duration) {
		r := sampleResult(name, "hit", "ES256", "open", 50000, p99, 6)
		if file == "ours-2.json" {
			r.Metrics = map[string]MetricDelta{"go_gc_duration_seconds_count": {Before: 7, After: 8}}
		}
		r.Engine, r.Client.Busy, r.PairedWith, r.Started = EngineSpin, 0.5, paired, start.Add(at)
		if err := writeJSON(filepath.Join(dir, file), r); err != nil {
			t.Fatal(err)
		}
	}
	write("stray-fixed.json", NameFixed, "", 1000, 0) // an unpaired run, first in time
	write("ours-1.json", NameOurs, NameFixed, 200, time.Minute)
	write("fixed-1.json", NameFixed, NameOurs, 100, time.Minute+time.Millisecond)
	// run.sh swaps the servers' places in every other pair: here the
	// ceiling went first.
	write("fixed-2.json", NameFixed, NameOurs, 100, 2*time.Minute)
	write("ours-2.json", NameOurs, NameFixed, 300, 2*time.Minute+time.Millisecond)
	row := openLoopRow(t, dir)
	if !strings.Contains(row, "median 2.50× of 2 pairs (2.00×, 3.00×)") || strings.Contains(row, "stray-fixed") {
		t.Errorf("row %s: want pairs 2.00× and 3.00× from the partners, not the stray run", row)
	}
	if !strings.Contains(row, "GC cycles of introspectd during the window: 1 in `ours-2.json`") {
		t.Errorf("row %s: want the GC cycle of ours-2.json named", row)
	}
}

// TestOpenLoopMatched: runs paired with the CPU-matched ceiling are
// reported beside the target, and neither join nor disturb its pairs.
func TestOpenLoopMatched(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(file, name, paired string, p99, cpu float64, at time.Duration) {
		r := sampleResult(name, "hit", "ES256", "open", 50000, p99, cpu)
		r.Engine, r.Client.Busy, r.PairedWith, r.Started = EngineSpin, 0.5, paired, start.Add(at)
		if name == NameMatched {
			r.Server.Command = []string{"bin/introspect-bench", "serve-baseline", "-kind", "fixed", "-work", "1.2µs"}
		}
		if err := writeJSON(filepath.Join(dir, file), r); err != nil {
			t.Fatal(err)
		}
	}
	write("ours-1.json", NameOurs, NameFixed, 200, 16.4, time.Minute)
	write("fixed-1.json", NameFixed, NameOurs, 100, 15.8, time.Minute+time.Millisecond)
	write("ours-2.json", NameOurs, NameFixed, 300, 16.4, 2*time.Minute)
	write("fixed-2.json", NameFixed, NameOurs, 100, 15.8, 2*time.Minute+time.Millisecond)
	// run.sh's probe: the matched ceiling paired with the plain one.
	write("probe-matched.json", NameMatched, NameFixed, 300, 16.2, 3*time.Minute)
	write("probe-fixed.json", NameFixed, NameMatched, 100, 15.8, 3*time.Minute+time.Millisecond)
	write("matched-ours-1.json", NameOurs, NameMatched, 330, 16.4, 0) // first, so that it would take a place in the pairs
	write("matched-fixed-1.json", NameMatched, NameOurs, 300, 16.2, time.Millisecond)
	row := openLoopRow(t, dir)
	for _, want := range []string{
		"median 2.50× of 2 pairs (2.00×, 3.00×)",
		"against the CPU-matched ceiling (the fixed server with -work 1.2µs, meant to cost what introspectd costs per request; CPU per request 16.4 µs vs 16.2 µs): 1.10× |",
		"`matched-fixed-1.json`",
	} {
		if !strings.Contains(row, want) {
			t.Errorf("row %s: want %s", row, want)
		}
	}
	// In the table of all runs, a run paired with the matched ceiling is
	// not compared with some other window's ceiling.
	md, err := BuildReport(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(md) {
		if strings.HasPrefix(line, "| `matched-ours-1.json` | introspectd |") {
			found = true
			if !strings.HasSuffix(strings.TrimSpace(line), "|  |  |") {
				t.Errorf("all runs: %s: want no comparison with the plain ceiling", line)
			}
		}
	}
	if !found {
		t.Error("all runs: no row for matched-ours-1.json")
	}
}

// TestHitThroughputPairs: the closed-loop hit runs are repeated, the two
// servers alternating, and the throughput target is judged on the median
// of the pairs' ratios; rows that take one run of several take the median
// run, not the best.
func TestHitThroughputPairs(t *testing.T) {
	tests := []struct {
		name        string
		fixed       []float64
		ours        []float64
		want, want2 string
	}{
		{"one low pair of three", []float64{100000, 100000, 100000}, []float64{80000, 95000, 100000},
			"| 80,000 req/s, 95,000 req/s, 100,000 req/s | 100,000 req/s, 100,000 req/s, 100,000 req/s (fixed) | median 95.0% of 3 pairs (80.0%, 95.0%, 100.0%) | ≥ 85% | met |",
			"| ES256 hit throughput vs net/http + golang-jwt | 95,000 req/s | 9,500 req/s (nethttp-jwt) | 10.0× |"},
		{"two low pairs of three", []float64{100000, 100000, 100000}, []float64{80000, 84000, 100000},
			"| median 84.0% of 3 pairs (80.0%, 84.0%, 100.0%) | ≥ 85% | **not met** |",
			"| ES256 hit throughput vs net/http + golang-jwt | 84,000 req/s |"},
		{"a single pair", []float64{100000}, []float64{86000},
			"| 86,000 req/s | 100,000 req/s (fixed) | 86.0% | ≥ 85% | met |", ""},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		write := func(file string, r *Result, at time.Duration) {
			r.Started = start.Add(at)
			if err := writeJSON(filepath.Join(dir, file), r); err != nil {
				t.Fatal(err)
			}
		}
		for i := range tc.fixed {
			write(fmt.Sprintf("hit-fixed-%d.json", i), sampleResult(NameFixed, "hit", "ES256", "closed", tc.fixed[i], 400, 5), time.Duration(2*i)*time.Minute)
			write(fmt.Sprintf("hit-ours-%d.json", i), sampleResult(NameOurs, "hit", "ES256", "closed", tc.ours[i], 400, 5), time.Duration(2*i+1)*time.Minute)
		}
		write("hit-nethttp.json", sampleResult(NameNetHTTP, "hit", "ES256", "closed", 9500, 9000, 100), time.Hour)
		md, err := BuildReport(dir, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var row string
		for line := range strings.SplitSeq(md, "\n") {
			if strings.HasPrefix(line, "| cache-hit throughput vs fixed-body ceiling") {
				row = line
			}
		}
		if !strings.Contains(row, tc.want) {
			t.Errorf("%s: row %s, want %s", tc.name, row, tc.want)
		}
		if !strings.Contains(md, tc.want2) {
			t.Errorf("%s: report has no %s", tc.name, tc.want2)
		}
	}
}
