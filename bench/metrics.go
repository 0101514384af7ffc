package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultMetricsMatch selects the server metrics a run records: introspectd's
// own, and cache, revocation, verification and request-latency series of
// other servers (not the Go runtime's).
const DefaultMetricsMatch = `^introspectd_|^go_gc_duration_seconds_(count|sum)|(?i)cache|hit|miss|evict|revo|verif|request_duration|request_latency`

// scrape fetches a Prometheus text exposition and returns its samples by
// series (name plus labels, as written), keeping those whose name matches re.
func scrape(url string, re *regexp.Regexp, timeout time.Duration) (map[string]float64, error) {
	code, body, err := fasthttp.GetTimeout(nil, url, timeout)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	if code != fasthttp.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", url, code)
	}
	return parseExposition(body, re), nil
}

func parseExposition(body []byte, re *regexp.Regexp) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series, after the closing brace if there are labels.
		cut := strings.LastIndexByte(line, '}')
		if cut < 0 {
			cut = strings.IndexByte(line, ' ')
		} else {
			cut++
		}
		if cut <= 0 || cut >= len(line) {
			continue
		}
		series := line[:cut]
		f := strings.Fields(line[cut:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(series, "{")
		if re != nil && !re.MatchString(name) {
			continue
		}
		out[series] = v
	}
	return out
}

// MetricDelta is a server series before and after the measured window.
type MetricDelta struct {
	Before float64 `json:"before"`
	After  float64 `json:"after"`
}

// HistogramEstimate is a server-side latency histogram over the measured
// window: quantiles are bucket upper bounds, so they say "at most"; -1
// means above the highest finite bucket.
type HistogramEstimate struct {
	Count  float64 `json:"count"`
	P50Le  float64 `json:"p50_le"`
	P99Le  float64 `json:"p99_le"`
	P999Le float64 `json:"p99_9_le"`
}

func metricDeltas(before, after map[string]float64) map[string]MetricDelta {
	out := make(map[string]MetricDelta, len(after))
	for k, a := range after {
		out[k] = MetricDelta{Before: before[k], After: a}
	}
	return out
}

// histogramEstimates finds Prometheus histograms (series named *_bucket with
// an le label) among deltas and reads quantiles off the change in their
// buckets.
func histogramEstimates(deltas map[string]MetricDelta) map[string]HistogramEstimate {
	type bucket struct{ le, n float64 }
	fams := map[string][]bucket{}
	leRe := regexp.MustCompile(`,?le="([^"]*)"`)
	for series, d := range deltas {
		name, labels, _ := strings.Cut(series, "{")
		base, ok := strings.CutSuffix(name, "_bucket")
		if !ok {
			continue
		}
		m := leRe.FindStringSubmatch(labels)
		if m == nil {
			continue
		}
		le, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		rest := strings.TrimSuffix(leRe.ReplaceAllString(labels, ""), "}")
		rest = strings.TrimPrefix(rest, ",")
		key := base
		if rest != "" {
			key += "{" + rest + "}"
		}
		fams[key] = append(fams[key], bucket{le, d.After - d.Before})
	}
	out := map[string]HistogramEstimate{}
	for k, bs := range fams {
		sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
		total := bs[len(bs)-1].n // the +Inf bucket is cumulative over all
		if total <= 0 {
			continue
		}
		q := func(p float64) float64 {
			for _, b := range bs {
				if b.n >= p*total {
					if math.IsInf(b.le, 1) {
						break
					}
					return b.le
				}
			}
			return -1 // beyond the last finite bucket
		}
		out[k] = HistogramEstimate{Count: total, P50Le: q(0.5), P99Le: q(0.99), P999Le: q(0.999)}
	}
	return out
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
