package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// arrivals records when each request reached a test server, and its body.
type arrivals struct {
	mu     sync.Mutex
	times  []time.Time
	bodies map[string]bool
}

func (a *arrivals) handler(ctx *fasthttp.RequestCtx) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	if a.bodies == nil {
		a.bodies = map[string]bool{}
	}
	a.bodies[string(ctx.PostBody())+string(ctx.Request.Header.Peek("Authorization"))] = true
	a.mu.Unlock()
	ctx.SetBodyString(`{"active":true}`)
}

func TestRunPairTakesTurns(t *testing.T) {
	if !spinSupported {
		t.Skip("paired runs need the spin engine (Linux)")
	}
	var a, b arrivals
	urlA, urlB := startFasthttp(t, a.handler), startFasthttp(t, b.handler)
	c := quickConfig(urlA, "hit")
	const slice = 100 * time.Millisecond
	c.Rate, c.Duration, c.Warmup, c.Slice = 2000, 600*time.Millisecond, 0, slice
	c.ClientID, c.ClientSecret = "bench", "secret"
	// B's metrics, scraped before and after the window: the count goes
	// from 1 to 2.
	var scrapes atomic.Int32
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "introspectd_scrapes_total %d\n", scrapes.Add(1))
	}))
	t.Cleanup(metrics.Close)
	c.Name, c.Pair = "ours", &PairTarget{URL: urlB, Name: "fixed", ServerPID: os.Getpid(), MetricsURL: metrics.URL}
	var progress bytes.Buffer
	c.Progress = &progress
	ra, rb, err := RunPair(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		res        *Result
		name, peer string
	}{{ra, "ours", "fixed"}, {rb, "fixed", "ours"}} {
		res := r.res
		var sum bytes.Buffer
		PrintResult(&sum, res)
		if !strings.Contains(sum.String(), "in one window with "+r.peer+", taking turns of 100ms") {
			t.Errorf("%s: the summary does not say the run was paired:\n%s", r.name, sum.String())
		}
		if res.Name != r.name || res.PairedWith != r.peer || res.SliceSeconds != slice.Seconds() || res.Mode != "open" {
			t.Errorf("%s: name %q paired with %q, slice %vs, mode %s", r.name, res.Name, res.PairedWith, res.SliceSeconds, res.Mode)
		}
		// Each server has the schedule for half of twice -duration.
		if res.Requests < 1150 || res.Requests > 1250 || res.OK != res.Requests {
			t.Errorf("%s: %d requests, %d ok (errors %v), want about 1,200 (2,000/s for 6 slices of 0.1 s)", r.name, res.Requests, res.OK, res.Errors)
		}
		if res.Elapsed < 0.59 || res.Elapsed > 0.61 {
			t.Errorf("%s: elapsed %.3fs, want its share of the window, 0.6 s", r.name, res.Elapsed)
		}
		if res.Throughput < 1900 || res.Throughput > 2100 {
			t.Errorf("%s: throughput %.0f/s, want the rate, 2,000/s", r.name, res.Throughput)
		}
	}
	if rb.Server == nil || rb.Server.CPUPerReq <= 0 || ra.Server != nil {
		t.Errorf("server figures: ours %+v (no -server-pid: want none), fixed %+v (want CPU per request)", ra.Server, rb.Server)
	}
	if m, ok := rb.Metrics["introspectd_scrapes_total"]; !ok || m.Before != 1 || m.After != 2 || len(ra.Metrics) != 0 {
		t.Errorf("metrics: fixed %v (want introspectd_scrapes_total from 1 to 2, from -pair-metrics-url), ours %v (want none)", rb.Metrics, ra.Metrics)
	}
	if !strings.Contains(progress.String(), "req/s") {
		t.Errorf("no progress line in %q", progress.String())
	}

	// The same requests: every body and credential B saw, A saw.
	for body := range b.bodies {
		if !a.bodies[body] {
			t.Fatalf("B got a request A never did: %.80q", body)
		}
	}
	// Turns: the two servers' arrivals in the window, merged in time order,
	// come in runs, one per slice (12 over the 1.2 s window), where
	// requests shared out at random would switch server on about every
	// other request. Counting switches needs no anchor in time: a window
	// whose first request arrives late (a busy machine, the race detector)
	// shifts every slice alike. Before the window each server got a
	// preflight request and one per warmed token.
	before := 1 + c.Tokens
	if len(a.times) < before+1000 || len(b.times) < before+1000 {
		t.Fatalf("arrivals: A %d, B %d", len(a.times), len(b.times))
	}
	type arrival struct {
		at time.Time
		a  bool
	}
	var all []arrival
	for _, at := range a.times[before:] {
		all = append(all, arrival{at, true})
	}
	for _, at := range b.times[before:] {
		all = append(all, arrival{at, false})
	}
	slices.SortFunc(all, func(x, y arrival) int { return x.at.Compare(y.at) })
	switches := 0
	for i := 1; i < len(all); i++ {
		if all[i].a != all[i-1].a {
			switches++
		}
	}
	// 11 switches between 12 slices, and a few more for requests sent at
	// the end of a slice that arrive just after the next began.
	n := int(2 * c.Duration / slice)
	if switches > 4*n {
		t.Errorf("the servers' arrivals switch %d times in %d requests, want about %d (one run per slice)", switches, len(all), n-1)
	}
	t.Logf("%d switches in %d requests over %d slices", switches, len(all), n)
}

func TestActiveTimes(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		n, stop, slice int
		want           []int
	}{
		{1, 600, 600, []int{600}},
		{1, 250, 600, []int{250}},
		{2, 600, 100, []int{300, 300}},
		{2, 650, 100, []int{350, 300}},
		{2, 550, 100, []int{300, 250}},
		{2, 0, 100, []int{0, 0}},
		{3, 250, 100, []int{100, 100, 50}},
	} {
		got := activeTimes(tc.n, t0, t0.Add(ms(tc.stop)), ms(tc.slice))
		for k := range tc.want {
			if got[k] != ms(tc.want[k]) {
				t.Errorf("activeTimes(%d, stop %dms, slice %dms) = %v, want %v ms", tc.n, tc.stop, tc.slice, got, tc.want)
				break
			}
		}
	}
}

func TestPairFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-pair-url", "http://127.0.0.1:2", "-url", "http://127.0.0.1:1"}, "needs the open loop"},
		{[]string{"-pair-url", "http://127.0.0.1:1", "-url", "http://127.0.0.1:1", "-rate", "10"}, "the same server"},
		{[]string{"-pair-url", "https://127.0.0.1:2", "-rate", "10"}, "-pair-url"},
		{[]string{"-pair-url", "http://127.0.0.1:2", "-rate", "10", "-engine", "goroutines"}, "spin engine"},
		{[]string{"-pair-url", "http://127.0.0.1:2", "-rate", "10", "-slice", "0s"}, "-slice"},
		{[]string{"-pair-url", "http://127.0.0.1:2", "-rate", "10", "-slice", "20s"}, "-slice"},
		{[]string{"-pair-url", "http://127.0.0.1:2", "-rate", "10", "-out", out}, "go together"},
		{[]string{"-pair-out", out}, "-pair-out needs -pair-url"},
		{[]string{"-slice", "1s", "-pair-name", "x"}, "-pair-name, -slice needs -pair-url"},
		{[]string{"-pair-metrics-url", "http://127.0.0.1:1/metrics"}, "-pair-metrics-url needs -pair-url"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(context.Background(), c.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit status: got %d, want 2; stderr %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr: got %q, want it to mention %q", stderr.String(), c.want)
			}
		})
	}
}
