package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	c.Name, c.Pair = "ours", &PairTarget{URL: urlB, Name: "fixed", ServerPID: os.Getpid()}
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
	if !strings.Contains(progress.String(), "req/s") {
		t.Errorf("no progress line in %q", progress.String())
	}

	// The same requests: every body and credential B saw, A saw.
	for body := range b.bodies {
		if !a.bodies[body] {
			t.Fatalf("B got a request A never did: %.80q", body)
		}
	}
	// Turns: A's requests fall in even slices of the window, B's in odd
	// ones. Before the window each server got a preflight request and one
	// per warmed token; the window starts with A's next.
	before := 1 + c.Tokens
	if len(a.times) < before+1000 || len(b.times) < before+1000 {
		t.Fatalf("arrivals: A %d, B %d", len(a.times), len(b.times))
	}
	winA, winB := a.times[before:], b.times[before:]
	start := winA[0]
	for _, s := range []struct {
		name   string
		times  []time.Time
		parity int
	}{{"A", winA, 0}, {"B", winB, 1}} {
		// A request late by a few milliseconds (a busy machine, the race
		// detector) lands just past its slice; one in the middle of the
		// other server's slice was sent there.
		wrong := 0
		for _, at := range s.times {
			d := at.Sub(start)
			if k, in := int(d/slice), d%slice; k%2 != s.parity && in > slice/4 && in < 3*slice/4 {
				wrong++
			}
		}
		if wrong > len(s.times)/20 {
			t.Errorf("%s: %d of %d requests arrived in the middle of the other server's slices", s.name, wrong, len(s.times))
		}
	}
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
