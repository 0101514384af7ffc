package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Names of the servers in results (the -name flag), as the report matches them.
const (
	NameOurs  = "introspectd"
	NameFixed = "fixed"
	// NameControlA and NameControlB are two ceilings paired with each
	// other: what the open loop's p99 ratio is between identical servers.
	NameControlA = "fixed-a"
	NameControlB = "fixed-b"
	// NameMatched is the CPU-matched ceiling: the fixed server spending, on
	// each request, work meant to make it cost what introspectd cost in the
	// open-loop pairs (serve-baseline -work; the report shows how close). Paired with introspectd it shows how much of
	// the open loop's p99 ratio CPU per request alone explains.
	NameMatched = "fixed-matched"
	NameNetHTTP = "nethttp-jwt"
)

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name        string // without the -GOMAXPROCS suffix
	NsPerOp     float64
	BytesPerOp  float64
	AllocsPerOp float64
	HasAllocs   bool
	// Extra holds the benchmark's own metrics (b.ReportMetric: bytes/token,
	// gc-ns/token...), in the order the output gives them.
	Extra []Metric
	File  string
}

// Metric is a value with its unit, as `go test -bench` prints it.
type Metric struct {
	Value float64
	Unit  string
}

// ParseGoBench reads the benchmark lines of `go test -bench -benchmem`
// output. Repeated runs of one benchmark (-count) are reduced to their median.
func ParseGoBench(text, file string) []GoBench {
	runs := map[string][]GoBench{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		b := GoBench{Name: name, File: file}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp, b.HasAllocs = v, true
			case "MB/s": // b.SetBytes throughput: ns/op already says it
			default:
				b.Extra = append(b.Extra, Metric{v, f[i+1]})
			}
		}
		if _, ok := runs[name]; !ok {
			order = append(order, name)
		}
		runs[name] = append(runs[name], b)
	}
	out := make([]GoBench, 0, len(order))
	for _, name := range order {
		rs := runs[name]
		slices.SortFunc(rs, func(a, b GoBench) int { return cmp.Compare(a.NsPerOp, b.NsPerOp) })
		med := rs[len(rs)/2]
		// Each metric of its own takes its own median: the run with the
		// median ns/op need not have the median of the others.
		med.Extra = slices.Clone(med.Extra)
		for i, m := range med.Extra {
			var vs []float64
			for _, r := range rs {
				for _, o := range r.Extra {
					if o.Unit == m.Unit {
						vs = append(vs, o.Value)
					}
				}
			}
			slices.Sort(vs)
			med.Extra[i].Value = vs[len(vs)/2]
		}
		out = append(out, med)
	}
	return out
}

type namedResult struct {
	*Result
	File string
}

type reportData struct {
	dir      string
	results  []namedResult
	benches  []GoBench
	commands string
	profiles map[string]string // file name → text
}

func loadReportData(dir string) (*reportData, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &reportData{dir: dir, profiles: map[string]string{}}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case e.IsDir():
		case strings.HasSuffix(name, ".json"):
			r, err := ReadResult(path)
			if err != nil {
				return nil, err
			}
			if r.Tool != "introspect-bench" {
				continue
			}
			d.results = append(d.results, namedResult{r, name})
		case strings.HasSuffix(name, ".bench.txt"):
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			d.benches = append(d.benches, ParseGoBench(string(b), name)...)
		case name == "commands.txt":
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			d.commands = string(b)
		case strings.HasPrefix(name, "pprof") && strings.HasSuffix(name, ".txt"):
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			d.profiles[name] = string(b)
		}
	}
	if len(d.results) == 0 && len(d.benches) == 0 {
		return nil, fmt.Errorf("%s: no result JSON files or *.bench.txt", dir)
	}
	sort.SliceStable(d.results, func(i, j int) bool { return d.results[i].Started.Before(d.results[j].Started) })
	return d, nil
}

// find returns the result for server name and scenario, matching alg and
// mode where given (""); of several, the median by throughput.
func (d *reportData) find(name, scenario, alg, mode string, pred func(*Result) bool) *namedResult {
	var rs []*namedResult
	for i := range d.results {
		r := &d.results[i]
		if r.Name != name || r.Scenario != scenario || (alg != "" && r.Alg != alg) || (mode != "" && r.Mode != mode) {
			continue
		}
		if pred != nil && !pred(r.Result) {
			continue
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil
	}
	// The lower of the middle two when even: the best of several would
	// flatter whichever server ran more often.
	slices.SortStableFunc(rs, func(a, b *namedResult) int { return cmp.Compare(a.Throughput, b.Throughput) })
	return rs[(len(rs)-1)/2]
}

// findAll returns the results for server name and scenario in mode that
// pred accepts, in the order they were run.
func (d *reportData) findAll(name, scenario, mode string, pred func(*Result) bool) []*namedResult {
	var rs []*namedResult
	for i := range d.results { // sorted by start time
		r := &d.results[i]
		if r.Name == name && r.Scenario == scenario && r.Mode == mode && (pred == nil || pred(r.Result)) {
			rs = append(rs, r)
		}
	}
	return rs
}

// pooledP99 is the p99 of all of rs's requests together, read off their
// merged histograms; false when a run has no histogram (results written
// before the tool kept them) or it does not decode.
func pooledP99(rs []*namedResult) (float64, bool) {
	all := newHist()
	for _, r := range rs {
		if r.LatencyHist == "" {
			return 0, false
		}
		h, err := hdr.Decode([]byte(r.LatencyHist))
		if err != nil {
			return 0, false
		}
		all.Merge(h)
	}
	if all.TotalCount() == 0 {
		return 0, false
	}
	return summarize(all).P99, true
}

// controlLimit is how far apart (as a ratio either way) the pooled p99s
// of the control's two identical ceilings may be before the open-loop
// verdict is called inconclusive: beyond it the run's noise is of the
// order of the target's margin.
const controlLimit = 1.25

// pairRatios compares a's p99 with b's, run i of a paired with run i of b,
// and describes how. The ratio it returns is the pooled one (pooled true)
// or, for results without histograms, the median of the pairs'.
func pairRatios(a, b []*namedResult) (ratio float64, pooled bool, desc string) {
	ratios := make([]float64, len(a))
	each := make([]string, len(a))
	for i := range a {
		ratios[i] = a[i].Latency.P99 / b[i].Latency.P99
		each[i] = times(ratios[i])
	}
	ratio, desc = median(ratios), times(median(ratios))
	if len(a) > 1 {
		desc = fmt.Sprintf("median %s of %d pairs (%s)", desc, len(a), strings.Join(each, ", "))
	}
	pa, okA := pooledP99(a)
	pb, okB := pooledP99(b)
	if okA && okB && pb > 0 {
		ratio, pooled = pa/pb, true
		if len(a) == 1 { // one pair: pooling changes nothing, and its ratio would be said twice
			return ratio, pooled, fmt.Sprintf("p99 %s (%s vs %s)", times(ratio), us(pa), us(pb))
		}
		desc = fmt.Sprintf("pooled p99 %s (%s vs %s); %s", times(ratio), us(pa), us(pb), desc)
	}
	return ratio, pooled, desc
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// like returns a predicate for runs made under the same conditions as base:
// the same warmed tokens, skew and connections (and rate, for the open loop).
func like(base *namedResult) func(*Result) bool {
	return func(r *Result) bool {
		if base == nil {
			return r.Zipf == 0
		}
		return r.Zipf == base.Zipf && r.Tokens == base.Tokens && r.Connections == base.Connections &&
			(r.Mode != "open" || math.Abs(r.Rate-base.Rate) <= 0.02*base.Rate)
	}
}

// partner returns the run named name that r shared its window with, or nil.
func (d *reportData) partner(r *namedResult, name string) *namedResult {
	if r.PairedWith != name {
		return nil
	}
	var best *namedResult
	for i := range d.results {
		o := &d.results[i]
		if o.Name == name && o.PairedWith == r.Name &&
			(best == nil || absDuration(o.Started.Sub(r.Started)) < absDuration(best.Started.Sub(r.Started))) {
			best = o
		}
	}
	return best
}

// partners returns the partners named name of each of rs, or nil unless
// every one has one.
func (d *reportData) partners(rs []*namedResult, name string) []*namedResult {
	var ps []*namedResult
	for _, r := range rs {
		p := d.partner(r, name)
		if p == nil {
			return nil
		}
		ps = append(ps, p)
	}
	return ps
}

func absDuration(d time.Duration) time.Duration { return max(d, -d) }

// matched returns the open-loop runs of introspectd paired with the
// CPU-matched ceiling under base's conditions, and their partners; nil
// when there are none.
func (d *reportData) matched(base *namedResult) (ours, matched []*namedResult) {
	same := like(base)
	ours = d.findAll(NameOurs, "hit", "open", func(r *Result) bool { return r.PairedWith == NameMatched && same(r) })
	matched = d.partners(ours, NameMatched)
	if matched == nil {
		return nil, nil
	}
	return ours, matched
}

// meanCPU is the servers' mean CPU per request over those of rs that read
// it, in µs; false when none did.
func meanCPU(rs []*namedResult) (float64, bool) {
	var sum float64
	n := 0
	for _, r := range rs {
		if r.Server != nil && r.Server.CPUPerReq > 0 {
			sum += r.Server.CPUPerReq
			n++
		}
	}
	return sum / float64(max(n, 1)), n > 0
}

// goBench returns the Go benchmark called name, or nil.
func (d *reportData) goBench(name string) *GoBench {
	for i := range d.benches {
		if d.benches[i].Name == name {
			return &d.benches[i]
		}
	}
	return nil
}

func (d *reportData) rawVerify(alg string) *GoBench {
	for i := range d.benches {
		if d.benches[i].Name == "BenchmarkRawVerify/"+alg {
			return &d.benches[i]
		}
	}
	return nil
}

// clientBound is the load tool's CPU use (cores) from which a run may have
// measured the client rather than the server.
const clientBound = 0.9

// target is one row of the targets table.
type target struct {
	what, figure, baseline, ratio, goal, verdict, source string
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func sources(rs ...*namedResult) string {
	var s []string
	for _, r := range rs {
		if r != nil {
			s = append(s, "`"+r.File+"`")
		}
	}
	return strings.Join(s, ", ")
}

func missing(what, goal string) target {
	return target{what: what, figure: "—", baseline: "—", ratio: "—", goal: goal, verdict: "not measured", source: "—"}
}

func (d *reportData) targets() []target {
	var ts []target
	fixed := d.find(NameFixed, "hit", "", "closed", nil)
	// ourHit is the closed-loop hit run made like the ceiling's.
	ourHit := d.find(NameOurs, "hit", "", "closed", like(fixed))
	// 1. hit throughput vs the fixed-body ceiling.
	{
		const what = "cache-hit throughput vs fixed-body ceiling"
		// run.sh repeats the pair, alternating the servers: judged on
		// the median of the pairs' ratios, paired in the order they ran.
		var fixedRuns, ourRuns []*namedResult
		if fixed != nil {
			fixedRuns = d.findAll(NameFixed, "hit", "closed", like(fixed))
			ourRuns = d.findAll(NameOurs, "hit", "closed", like(fixed))
		}
		if n := min(len(fixedRuns), len(ourRuns)); n == 0 {
			ts = append(ts, missing(what, "≥ 85%"))
		} else {
			fixedRuns, ourRuns = fixedRuns[:n], ourRuns[:n]
			var ours, base, each []string
			ratios := make([]float64, n)
			busy := 0.0
			for i := range n {
				ratios[i] = ourRuns[i].Throughput / fixedRuns[i].Throughput
				ours = append(ours, rps(ourRuns[i].Throughput))
				base = append(base, rps(fixedRuns[i].Throughput))
				each = append(each, pct(ratios[i]))
				busy = max(busy, fixedRuns[i].Client.Load())
			}
			q := median(ratios)
			baseline := strings.Join(base, ", ") + " (fixed)"
			if busy >= clientBound {
				baseline += fmt.Sprintf("; the load tool was busy up to %.0f%% of its core: this ceiling is partly the client's", 100*busy)
			}
			ratio := pct(q)
			if n > 1 {
				ratio = fmt.Sprintf("median %s of %d pairs (%s)", pct(q), n, strings.Join(each, ", "))
			}
			ts = append(ts, target{what, strings.Join(ours, ", "), baseline,
				ratio, "≥ 85%", verdict(q >= 0.85), sources(append(ourRuns, fixedRuns...)...)})
		}
	}
	// 2. ES256 hit throughput vs verify-per-request.
	{
		const what = "ES256 hit throughput vs net/http + golang-jwt"
		base := d.find(NameNetHTTP, "hit", "ES256", "closed", nil)
		var ours *namedResult
		if base != nil {
			ours = d.find(NameOurs, "hit", "ES256", "closed", like(base))
		}
		if ours == nil || base == nil {
			ts = append(ts, missing(what, "≥ 5×"))
		} else {
			q := ours.Throughput / base.Throughput
			ts = append(ts, target{what, rps(ours.Throughput), rps(base.Throughput) + " (nethttp-jwt)",
				times(q), "≥ 5×", verdict(q >= 5), sources(ours, base)})
		}
	}
	// 3. open loop at half the ceiling's peak: p99 vs the ceiling's at the
	// same rate. run.sh measures the two in paired runs (RunPair: one
	// window, turns of a quarter second), because the shared machine's
	// stalls set a p99 and they come and go between separate runs. The
	// verdict is on the pooled p99 (every request of a server's runs in one
	// histogram; the median of the pairs' ratios for results without
	// histograms): single pairs vary too much even between two identical
	// servers, as the control, two ceilings paired alike in the same run,
	// shows. When the control's pooled p99s differ by more than
	// controlLimit, the run is too noisy to judge.
	{
		const what = "open loop, half the ceiling's peak rate: p99"
		notMatched := func(r *Result) bool { return r.PairedWith != NameMatched }
		ours := d.findAll(NameOurs, "hit", "open", notMatched)
		var fixed []*namedResult
		if len(ours) > 0 {
			fixed = d.findAll(NameFixed, "hit", "open", like(ours[0]))
			same := like(ours[0])
			ours = d.findAll(NameOurs, "hit", "open", func(r *Result) bool { return notMatched(r) && same(r) })
		}
		// Paired runs compare with their partners; others in the order
		// they ran.
		if partners := d.partners(ours, NameFixed); partners != nil {
			fixed = partners
		}
		n := min(len(ours), len(fixed))
		if n == 0 {
			ts = append(ts, missing(what, "≤ 1.5×"))
		} else {
			ours, fixed = ours[:n], fixed[:n]
			var oursP99, fixedP99 []string
			for i := range n {
				oursP99 = append(oursP99, us(ours[i].Latency.P99))
				fixedP99 = append(fixedP99, us(fixed[i].Latency.P99))
			}
			q, _, ratio := pairRatios(ours, fixed)
			v, note := verdict(q <= 1.5), ""
			src := append(append([]*namedResult{}, ours...), fixed...)
			ctlA, ctlB := d.findAll(NameControlA, "hit", "open", like(ours[0])), d.findAll(NameControlB, "hit", "open", like(ours[0]))
			if partners := d.partners(ctlA, NameControlB); partners != nil {
				ctlB = partners
			}
			if m := min(len(ctlA), len(ctlB)); m > 0 {
				src = append(append(src, ctlA[:m]...), ctlB[:m]...)
				cq, _, cratio := pairRatios(ctlA[:m], ctlB[:m])
				note += "; control, two identical ceilings paired alike: " + cratio
				if max(cq, 1/cq) > controlLimit {
					v = fmt.Sprintf("inconclusive: the control's two identical servers differed by %s (more than %.2f×)", times(max(cq, 1/cq)), controlLimit)
				}
			}
			if m, mFixed := d.matched(ours[0]); m != nil {
				src = append(append(src, m...), mFixed...)
				_, _, mratio := pairRatios(m, mFixed)
				work := ""
				if srv := mFixed[0].Server; srv != nil {
					if i := slices.Index(srv.Command, "-work"); i >= 0 && i+1 < len(srv.Command) {
						work = " with -work " + srv.Command[i+1]
					}
				}
				cpu := ""
				if a, ok := meanCPU(m); ok {
					if b, ok := meanCPU(mFixed); ok {
						cpu = fmt.Sprintf("; CPU per request %s vs %s", us(a), us(b))
					}
				}
				note += fmt.Sprintf("; against the CPU-matched ceiling (the fixed server%s, meant to cost what introspectd costs per request%s): %s",
					work, cpu, mratio)
			}
			var gcs []string
			for _, r := range ours {
				if m, ok := r.Metrics["go_gc_duration_seconds_count"]; ok && m.After > m.Before {
					gcs = append(gcs, fmt.Sprintf("%.0f in `%s`", m.After-m.Before, r.File))
				}
			}
			if len(gcs) > 0 {
				note += "; GC cycles of introspectd during the window: " + strings.Join(gcs, ", ")
			}
			for _, r := range append(append([]*namedResult{}, fixed...), ours...) {
				// Requests wait for a free connection when the server is
				// saturated (its cores busy): that wait is the server's. When
				// the server had room, a long wait on the goroutine engine
				// is the load tool's (its scheduler and workers need waking).
				// The spin engine sends the moment a connection is free, so
				// its send lag is the server's unless the tool itself was busy.
				lagging := r.Engine != EngineSpin && r.SendLag != nil && r.SendLag.P99 > r.Latency.P99/2 &&
					(r.Server == nil || r.Server.CPUUtil < 0.9)
				if lagging || r.Client.Load() >= clientBound {
					lag := 0.0
					if r.SendLag != nil {
						lag = r.SendLag.P99
					}
					note += fmt.Sprintf("; in `%s` the load tool fell behind its schedule (send lag p99 %s, %.0f%% of its core busy)", r.File, us(lag), 100*r.Client.Load())
					v = "inconclusive: the load tool, not the server, set the p99"
				}
			}
			ts = append(ts, target{what + fmt.Sprintf(" (%s req/s)", thousands(ours[0].Rate)), strings.Join(oursP99, ", "),
				strings.Join(fixedP99, ", ") + " (fixed)" + note, ratio, "≤ 1.5×", v, sources(src...)})
		}
	}
	// 4. time inside the server for a hit.
	{
		const what = "time inside the server for a hit: p99"
		ours := ourHit
		if ours == nil {
			ts = append(ts, missing(what, "< 50 µs"))
		} else if k, h, ok := serverLatencyHistogram(ours.Result); ok {
			le := h.P99Le * 1e6
			fig := fmt.Sprintf("≤ %.0f µs (bucket bound, `%s`)", le, k)
			if h.P99Le < 0 {
				fig, le = "above the highest bucket", math.Inf(1)
			}
			ts = append(ts, target{what, fig, "—", "—", "< 50 µs", verdict(le <= 50), sources(ours)})
		} else {
			cpu := "—"
			if ours.Server != nil {
				cpu = fmt.Sprintf("%.1f µs CPU per request (mean, HTTP included)", ours.Server.CPUPerReq)
			}
			ts = append(ts, target{what, "no server latency histogram scraped; " + cpu, "—", "—", "< 50 µs", "not measured", sources(ours)})
		}
	}
	// 5. hit path allocations.
	{
		const what = "hit path allocations"
		var hits []string
		ok := true
		for _, b := range d.benches {
			if strings.HasPrefix(b.Name, "BenchmarkRawVerify") || !strings.Contains(strings.ToLower(b.Name), "hit") || !b.HasAllocs {
				continue
			}
			hits = append(hits, fmt.Sprintf("`%s` %.0f allocs/op", b.Name, b.AllocsPerOp))
			ok = ok && b.AllocsPerOp == 0
		}
		if len(hits) == 0 {
			ts = append(ts, missing(what+" (no Go benchmark named *Hit* found)", "0 allocs/op"))
		} else {
			ts = append(ts, target{what, strings.Join(hits, "; "), "—", "—", "0 allocs/op", verdict(ok), "`*.bench.txt`"})
		}
	}
	// 6. miss path vs raw verify, per algorithm. The verdict is in-process:
	// BenchmarkMissPath (the service's whole verification of a new token)
	// over BenchmarkRawVerify (the signature check alone), both on the same
	// tokens in the same go test run. End to end, a miss also pays for an
	// HTTP exchange that a low request rate does not amortise, so the
	// server's CPU per miss is set against the verify-per-request baseline's
	// on the same tokens instead.
	for _, alg := range Algorithms {
		what := alg + " miss path vs raw verify"
		raw := d.rawVerify(alg)
		inproc := d.goBench("BenchmarkMissPath/" + alg)
		if raw == nil || inproc == nil {
			ts = append(ts, missing(what+" (no BenchmarkMissPath or BenchmarkRawVerify)", "≤ 1.2×"))
			continue
		}
		q := inproc.NsPerOp / raw.NsPerOp
		fig := fmt.Sprintf("`%s` %.1f µs, %.0f allocs/op", inproc.Name, inproc.NsPerOp/1e3, inproc.AllocsPerOp)
		ratio := "in-process " + times(q)
		src := []string{"`" + inproc.File + "`"}
		if ours := d.find(NameOurs, "miss", alg, "closed", nil); ours != nil && ours.Server != nil {
			fig += fmt.Sprintf("; server CPU %.1f µs/req", ours.Server.CPUPerReq)
			if base := d.find(NameNetHTTP, "miss", alg, "closed", nil); base != nil && base.Server != nil {
				ratio += fmt.Sprintf("; server CPU per miss %s of nethttp-jwt's (%.1f µs/req)",
					times(ours.Server.CPUPerReq/base.Server.CPUPerReq), base.Server.CPUPerReq)
				src = append(src, sources(ours, base))
			} else {
				src = append(src, sources(ours))
			}
		}
		ts = append(ts, target{what, fig, fmt.Sprintf("%.1f µs (`BenchmarkRawVerify/%s`)", raw.NsPerOp/1e3, alg),
			ratio, "≤ 1.2×", verdict(q <= 1.2), strings.Join(src, ", ")})
	}
	// 7. memory per cached token.
	{
		const what = "memory per cached token"
		var big *namedResult
		for i := range d.results {
			r := &d.results[i]
			if r.Name == NameOurs && r.Warm != nil && r.Warm.RSSAfter > 0 && (big == nil || r.Tokens > big.Tokens) {
				big = r
			}
		}
		if big == nil {
			ts = append(ts, missing(what, "≤ 1.5 KiB each, 1,000,000 tokens, all in"))
		} else {
			fig := fmt.Sprintf("%.0f B × %d tokens of %d B (RSS %.0f → %.0f MiB)", big.Warm.BytesPerToken, big.Tokens, big.TokenBytes,
				mib(big.Warm.RSSBefore), mib(big.Warm.RSSAfter))
			allIn := false
			if hr, ok := hotHitRatio(big.Result, big.Requests); ok {
				fig += fmt.Sprintf("; cache hit ratio afterwards %.4f (server metrics)", hr)
				allIn = hr >= 0.99
			} else {
				fig += "; hit ratio afterwards unknown (no cache metrics)"
			}
			ok := big.Warm.BytesPerToken <= 1536 && big.Tokens >= 1000000 && countErrors(big.Warm.Errors) == 0 && allIn
			ts = append(ts, target{what, fig, "—", "—", "≤ 1.5 KiB each, 1,000,000 tokens, all in", verdict(ok), sources(big)})
		}
	}
	// 8. garbage must not evict hot tokens.
	{
		const what = "hot tokens under a garbage flood"
		g := d.find(NameOurs, "garbage", "", "", nil)
		hit := ourHit
		if g == nil {
			ts = append(ts, missing(what, "hit ratio kept with 1,000,000 garbage tokens"))
		} else {
			fig := fmt.Sprintf("%d garbage requests; hot p50 %s, p99 %s", g.Classes["garbage"].Requests,
				us(g.Classes["hit"].Latency.P50), us(g.Classes["hit"].Latency.P99))
			base, ratio, v := "—", "—", ""
			if hit != nil {
				base = fmt.Sprintf("hit run p50 %s, p99 %s", us(hit.Latency.P50), us(hit.Latency.P99))
				ratio = "p50 " + times(g.Classes["hit"].Latency.P50/hit.Latency.P50)
			}
			hr, known := hotHitRatio(g.Result, g.Classes["hit"].Requests)
			if known {
				fig += fmt.Sprintf("; hot-token cache hit ratio %.4f (server metrics)", hr)
			}
			switch n := g.Classes["hit"].Errors["inactive_for_valid"] + g.Classes["garbage"].Errors["active_for_garbage"]; {
			case n > 0:
				v = fmt.Sprintf("**%d wrong answers**", n)
			case !known:
				v = "not measured (no cache metrics)"
			case g.Classes["garbage"].Requests < 1000000:
				v = fmt.Sprintf("%s at %s garbage tokens, not a million", verdict(hr >= 0.99), thousands(float64(g.Classes["garbage"].Requests)))
			default:
				v = verdict(hr >= 0.99)
			}
			ts = append(ts, target{what, fig, base, ratio, "hit ratio kept with 1,000,000 garbage tokens", v, sources(g, hit)})
		}
	}
	return ts
}

// serverLatencyHistogram picks the server's request-latency histogram for
// /introspect among the scraped ones, if there is one: a *duration* or
// *latency* family, preferring the series labelled endpoint="introspect".
func serverLatencyHistogram(r *Result) (string, HistogramEstimate, bool) {
	best, score := "", 0
	for _, k := range sortedKeys(r.Histograms) {
		lk := strings.ToLower(k)
		if !strings.Contains(lk, "duration") && !strings.Contains(lk, "latency") {
			continue
		}
		s := 1
		if strings.Contains(lk, `endpoint="introspect"`) {
			s = 3
		} else if strings.Contains(lk, "introspect") {
			s = 2
		}
		if s > score {
			best, score = k, s
		}
	}
	if best == "" {
		return "", HistogramEstimate{}, false
	}
	return best, r.Histograms[best], true
}

// hotHitRatio estimates the share of hot requests answered from the cache:
// the change in the server's verified-cache hit counter
// (introspectd_cache_hits_total{cache="verified"}) over the requests that
// carried warmed tokens. Garbage never hits that cache, so the ratio holds
// under a garbage flood too.
func hotHitRatio(r *Result, hot int64) (float64, bool) {
	if hot <= 0 {
		return 0, false
	}
	var hits float64
	found := false
	for k, m := range r.Metrics {
		if strings.HasPrefix(k, "introspectd_cache_hits_total{") && strings.Contains(k, `cache="verified"`) {
			hits += m.After - m.Before
			found = true
		}
	}
	if !found {
		return 0, false
	}
	return hits / float64(hot), true
}

func rps(v float64) string { return fmt.Sprintf("%s req/s", thousands(v)) }
func us(v float64) string  { return fmt.Sprintf("%.1f µs", v) }
func pct(q float64) string { return fmt.Sprintf("%.1f%%", 100*q) }
func times(q float64) string {
	if q >= 10 {
		return fmt.Sprintf("%.1f×", q)
	}
	return fmt.Sprintf("%.2f×", q)
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && c != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// machine describes the host the report is written on (the one that ran the
// benchmarks: bench/run.sh writes the report at the end of the run).
func machine() [][2]string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v := statusField(b, "MemTotal:"); v != "" {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return [][2]string{
		{"CPU", cpu},
		{"cores", strconv.Itoa(runtime.NumCPU())},
		{"memory", mem},
		{"kernel", kernel},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
	}
}

// BuildReport renders the Markdown report for the results in dir.
func BuildReport(dir string, now time.Time) (string, error) {
	d, err := loadReportData(dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# introspectd benchmark, %s\n\n", now.UTC().Format("2006-01-02 15:04 MST"))
	p("Written by `introspect-bench report -in %s` from the files named below. Servers ran pinned to one core and the load tool to the other (see the commands); the machine is shared, so figures vary from run to run: compare the ratios, which come from the same run.\n\n", dir)

	p("## Machine\n\n| | |\n| --- | --- |\n")
	for _, kv := range machine() {
		p("| %s | %s |\n", kv[0], kv[1])
	}
	if len(d.results) > 0 {
		p("| load average at the first run | %s |\n", d.results[0].LoadAvg)
	}

	p("\n## Targets (issue 5)\n\n| target | ours | baseline | ratio | goal | verdict | from |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, t := range d.targets() {
		p("| %s | %s | %s | %s | %s | %s | %s |\n", t.what, t.figure, t.baseline, t.ratio, t.goal, t.verdict, t.source)
	}

	if len(d.results) > 0 {
		p("\n## All runs\n\nLatency in µs: closed loop from the send, open loop from the intended send time. Ratios compare with the baseline run of the same scenario, algorithm, mode, warmed tokens, skew and connections (open loop: same rate): throughput ours ÷ theirs, p99 ours ÷ theirs. CPU is the server's user+system time from /proc over the measured time, divided by the requests served. Client cores: the load tool's CPU time over the measured time or, for the open loop's spin engine (which polls and so always shows a whole core), the share of the time it spent on requests and answers. ⇄ NAME: an open-loop run that shared its window with NAME, the two taking turns (run.sh: a quarter second each; which of the two goes first alternates from one pair to the next), compared with that run. ⚠: the load tool was at least 90%% busy, so the run may have measured the client.\n\n")
		p("| file | server | scenario | alg | mode | conns | req/s | p50 | p90 | p99 | p99.9 | max | errors | server CPU µs/req | server cores | client cores | vs fixed | vs nethttp-jwt |\n")
		p("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
		for _, r := range d.results {
			mode := r.Mode
			if r.Mode == "open" {
				mode = fmt.Sprintf("open %s/s", thousands(r.Rate))
			}
			if r.PairedWith != "" {
				mode += " ⇄ " + r.PairedWith
			}
			cpu, cores := "—", "—"
			if r.Server != nil {
				cpu, cores = fmt.Sprintf("%.1f", r.Server.CPUPerReq), fmt.Sprintf("%.2f", r.Server.CPUUtil)
			}
			vs := func(name string) string {
				// A run that shared its window with another server is
				// compared with that one only.
				if r.Name == name || r.Name != NameOurs || (r.PairedWith != "" && r.PairedWith != name) {
					return ""
				}
				o := d.partner(&r, name)
				if o == nil {
					o = d.find(name, r.Scenario, r.Alg, r.Mode, like(&r))
				}
				if o == nil || o.Throughput == 0 || o.Latency.P99 == 0 {
					return ""
				}
				return fmt.Sprintf("%s req/s, %s p99", times(r.Throughput/o.Throughput), times(r.Latency.P99/o.Latency.P99))
			}
			l := r.Latency
			client := fmt.Sprintf("%.2f", r.Client.Load())
			if r.Client.Load() >= clientBound {
				client += " ⚠"
			}
			p("| `%s` | %s | %s | %s | %s | %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %s | %s | %s | %s | %s |\n",
				r.File, r.Name, r.Scenario, r.Alg, mode, r.Connections, thousands(r.Throughput), l.P50, l.P90, l.P99, l.P999, l.Max,
				countErrors(r.Errors), cpu, cores, client, vs(NameFixed), vs(NameNetHTTP))
		}
		d.writeDetails(&b)
	}

	if len(d.benches) > 0 {
		p("\n## Go benchmarks\n\n`BenchmarkRawVerify/ALG` is the standard library's verify of a bench token's signature (SHA-256 of the signing input and the signature check), the floor for a cache miss; `BenchmarkMissPath/ALG` is the service's whole verification of the same tokens in the same run (parse, checks, signature, answer and revocation identity built). Medians of the runs. `BenchmarkCachedTokenBytes` caches 50,000 800-byte tokens: the heap per token, the cost charged to the cache's budget, and a forced GC cycle's wall time per cached token (its ns/op is the whole run's).\n\n| benchmark | ns/op | B/op | allocs/op | own metrics | from |\n| --- | ---: | ---: | ---: | --- | --- |\n")
		for _, g := range d.benches {
			var own []string
			for _, m := range g.Extra {
				own = append(own, thousands(m.Value)+" "+m.Unit)
			}
			p("| %s | %s | %.0f | %.0f | %s | `%s` |\n", g.Name, thousands(g.NsPerOp), g.BytesPerOp, g.AllocsPerOp, strings.Join(own, ", "), g.File)
		}
	}
	for _, k := range sortedKeys(d.profiles) {
		p("\n## Profile: `%s`\n\n```\n%s\n```\n", k, strings.TrimSpace(d.profiles[k]))
	}
	p("\n## Commands\n\n")
	if d.commands != "" {
		p("As run by bench/run.sh:\n\n```sh\n%s\n```\n\n", strings.TrimSpace(d.commands))
	}
	p("Each run's exact command lines, with the CPUs each process was allowed to use:\n\n")
	for _, r := range d.results {
		p("- `%s`: load `%s` on CPUs %s", r.File, shellJoin(r.Client.Args), r.Client.CPUs)
		if r.Server != nil && len(r.Server.Command) > 0 {
			p("; server `%s` on CPUs %s", shellJoin(r.Server.Command), r.Server.CPUs)
		}
		p("\n")
	}
	return b.String(), nil
}

func (d *reportData) writeDetails(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var errs, revs, warms, classes, metrics []namedResult
	for _, r := range d.results {
		if len(r.Errors) > 0 || r.StoppedEarly != "" || (r.Warm != nil && len(r.Warm.Errors) > 0) {
			errs = append(errs, r)
		}
		if r.Revocation != nil {
			revs = append(revs, r)
		}
		if r.Warm != nil && r.Warm.RSSAfter > 0 && r.Name == NameOurs && r.Tokens >= 20000 {
			warms = append(warms, r)
		}
		if len(r.Classes) > 1 || r.ServiceTime != nil {
			classes = append(classes, r)
		}
		if len(r.Metrics) > 0 || r.MetricsErr != "" {
			metrics = append(metrics, r)
		}
	}
	if len(classes) > 0 {
		p("\n### Latency by token class, and the open loop's own timing\n\n| file | part | count | p50 | p90 | p99 | p99.9 | max |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range classes {
			row := func(part string, l Latency) {
				p("| `%s` | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r.File, part, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
			}
			if len(r.Classes) > 1 {
				for _, k := range sortedKeys(r.Classes) {
					row(k, r.Classes[k].Latency)
				}
			}
			if r.ServiceTime != nil {
				row("service time (from the actual send)", *r.ServiceTime)
				row("send lag (actual − intended send)", *r.SendLag)
			}
		}
	}
	if len(errs) > 0 {
		p("\n### Errors and early stops\n\n")
		for _, r := range errs {
			p("- `%s`:", r.File)
			if r.StoppedEarly != "" {
				p(" stopped early: %s;", r.StoppedEarly)
			}
			for _, k := range sortedKeys(r.Errors) {
				p(" %s %d;", k, r.Errors[k])
			}
			if r.Warm != nil {
				for _, k := range sortedKeys(r.Warm.Errors) {
					p(" warm %s %d;", k, r.Warm.Errors[k])
				}
			}
			p("\n")
		}
	}
	if len(revs) > 0 {
		p("\n### Revocations during load\n\n| file | revoked | POST /revoke p50 | p99 | revoked→inactive p50 | p99 | max | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, r := range revs {
			v := r.Revocation
			var es []string
			for _, k := range sortedKeys(v.Errors) {
				es = append(es, fmt.Sprintf("%s %d", k, v.Errors[k]))
			}
			p("| `%s` | %d | %s | %s | %s | %s | %s | %s |\n", r.File, v.Revoked, us(v.Revoke.P50), us(v.Revoke.P99),
				us(v.Visible.P50), us(v.Visible.P99), us(v.Visible.Max), strings.Join(es, ", "))
		}
	}
	if len(warms) > 0 {
		p("\n### Memory while warming\n\nServer RSS before and after every warmed token was introspected once (runs with at least 20,000 tokens; the first run on a fresh server is the clean figure).\n\n| file | tokens | token bytes | RSS before | RSS after | bytes per token | warm time |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range warms {
			w := r.Warm
			p("| `%s` | %s | %d | %.1f MiB | %.1f MiB | %.0f | %.1f s |\n", r.File, thousands(float64(r.Tokens)), r.TokenBytes,
				mib(w.RSSBefore), mib(w.RSSAfter), w.BytesPerToken, w.Elapsed)
		}
	}
	if len(metrics) > 0 {
		p("\n### Server metrics over the measured time\n\nSeries matching the run's -metrics-match that changed (histogram buckets left out).\n\n")
		for _, r := range metrics {
			p("- `%s`:", r.File)
			if r.MetricsErr != "" {
				p(" %s", r.MetricsErr)
			}
			n := 0
			for _, k := range sortedKeys(r.Metrics) {
				m := r.Metrics[k]
				if m.After == m.Before || strings.Contains(k, "_bucket") {
					continue
				}
				if n++; n > 30 {
					p(" …")
					break
				}
				p(" `%s` %+g;", k, m.After-m.Before)
			}
			p("\n")
		}
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
