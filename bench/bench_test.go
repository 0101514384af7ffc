package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"
)

var testKeys = func() func(testing.TB) *Keys {
	once := sync.OnceValues(func() (*Keys, error) { return GenerateKeys(DefaultIssuer) })
	return func(tb testing.TB) *Keys {
		tb.Helper()
		k, err := once()
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
}()

func TestSummarize(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		record(h, time.Duration(i)*time.Microsecond)
	}
	got := summarize(h)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", got.P50, 500}, {"p90", got.P90, 900}, {"p99", got.P99, 990},
		{"p99.9", got.P999, 999}, {"max", got.Max, 1000}, {"mean", got.Mean, 500.5},
	} {
		if c.got < c.want || c.got > c.want*1.001 { // HdrHistogram rounds up to 3 significant digits
			t.Errorf("%s: got %v µs, want %v µs (+0.1%%)", c.name, c.got, c.want)
		}
	}
	if got.Count != 1000 {
		t.Errorf("count: got %d, want 1000", got.Count)
	}
	if (summarize(newHist()) != Latency{}) {
		t.Errorf("empty histogram: got %+v, want zeros", summarize(newHist()))
	}
	// Out-of-range values are clamped, not dropped.
	h = newHist()
	record(h, -time.Second)
	record(h, time.Hour)
	if s := summarize(h); s.Count != 2 || s.Max < 59.9e6 {
		t.Errorf("clamped: got count %d max %v µs, want 2 and 60 s", s.Count, s.Max)
	}
}

func TestParseActive(t *testing.T) {
	for _, c := range []struct {
		body         string
		active, isOK bool
	}{
		{`{"active":true,"sub":"x"}`, true, true},
		{`{"sub":"x", "active" : false}`, false, true},
		{`{"active":false}`, false, true},
		{`{"error":"invalid_request"}`, false, false},
		{`{"active":1}`, false, false},
		{``, false, false},
	} {
		a, ok := parseActive([]byte(c.body))
		if a != c.active || ok != c.isOK {
			t.Errorf("parseActive(%s): got %v, %v; want %v, %v", c.body, a, ok, c.active, c.isOK)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command may hold spaces and parentheses.
	line := []byte("4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 3 0 100 0 0")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 175 * clockTick; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := readProc(0); err != nil {
		t.Errorf("readProc(self): %v", err)
	}
}

func TestKeyDirTokensVerifyWithJOSE(t *testing.T) {
	dir := t.TempDir()
	if err := WriteKeyDir(dir, testKeys(t), ServerConfig{Listen: "127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, PrivateKeysFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("keys.json: got %v %v, want mode 0600", st.Mode(), err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`listen: "127.0.0.1:9999"`, `jwks_file: "` + filepath.Join(dir, JWKSFile) + `"`, `issuer: "https://bench.local/"`, `id: "bench"`, "max_bytes: 536870912"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config: no %q in\n%s", want, cfg)
		}
	}
	keys, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := LoadJWKS(filepath.Join(dir, JWKSFile))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMinter(keys, Claims{Size: 800})
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			toks, err := m.MintN(alg, 3)
			if err != nil {
				t.Fatal(err)
			}
			if toks[0] == toks[1] {
				t.Error("two minted tokens are equal")
			}
			for _, tok := range toks {
				if len(tok) < 760 || len(tok) > 840 {
					t.Errorf("token length: got %d, want about 800", len(tok))
				}
				claims := verifyJOSE(t, jwks, tok)
				if claims == nil {
					t.Fatalf("token does not verify against jwks.json: %s", tok)
				}
				if claims["iss"] != DefaultIssuer || claims["client_id"] != "bench-client" || claims["scope"] != "read write" {
					t.Errorf("claims: got %v", claims)
				}
				exp, _ := claims["exp"].(float64)
				if d := time.Until(time.Unix(int64(exp), 0)); d < 59*time.Minute || d > time.Hour+time.Minute {
					t.Errorf("exp: got %v ahead, want 1h", d)
				}
				for _, k := range []string{"sub", "aud", "iat", "jti"} {
					if claims[k] == nil {
						t.Errorf("claim %s missing", k)
					}
				}
			}
		})
	}
}

// verifyJOSE verifies tok with go-jose against jwks and returns its claims,
// or nil when it does not verify or has expired.
func verifyJOSE(t *testing.T, jwks map[string]jose.JSONWebKey, tok string) map[string]any {
	t.Helper()
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}
	jws, err := jose.ParseSignedCompact(tok, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil
	}
	k, ok := jwks[jws.Signatures[0].Header.KeyID]
	if !ok || string(jws.Signatures[0].Header.Algorithm) != k.Algorithm {
		return nil
	}
	payload, err := jws.Verify(k.Key)
	if err != nil {
		return nil
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("verified payload is not JSON: %v", err)
	}
	if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		return nil
	}
	return claims
}

func TestGarbageNeverVerifies(t *testing.T) {
	keys := testKeys(t)
	jwks := map[string]jose.JSONWebKey{}
	for _, k := range keys.PublicJWKS().Keys {
		jwks[k.KeyID] = k
	}
	g, err := NewGarbage(NewMinter(keys, Claims{}), "ES256", 4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	kinds := map[string]int{}
	for range 600 {
		tok, kind := g.Token(nil)
		kinds[kind]++
		if verifyJOSE(t, jwks, string(tok)) != nil {
			t.Errorf("%s garbage verifies: %s", kind, tok)
		}
		// Form encoding must carry the token unchanged.
		v, err := url.ParseQuery(string(appendFormToken(nil, tok)))
		if err != nil || v.Get("token") != string(tok) {
			t.Errorf("%s: form round trip: got %q, %v; want %q", kind, v.Get("token"), err, tok)
		}
		if kind != "wrong-key" && kind != "expired" {
			if seen[string(tok)] {
				t.Errorf("%s garbage repeats: %s", kind, tok)
			}
			seen[string(tok)] = true
		}
	}
	for _, k := range GarbageKinds {
		if kinds[k] != 100 {
			t.Errorf("kind %s: got %d of 600, want 100", k, kinds[k])
		}
	}
}

// startFasthttp serves h on a loopback port and returns its base URL.
func startFasthttp(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(); <-done })
	return "http://" + ln.Addr().String()
}

func quickConfig(url, scenario string) Config {
	return Config{URL: url, Scenario: scenario, Connections: 4, Duration: 500 * time.Millisecond,
		Tokens: 20, Pool: 200, HitRatio: -1, Timeout: 5 * time.Second}
}

// TestFixedServerWork: the CPU-matched ceiling answers exactly as the
// ceiling does, and its burner scales with the work asked of it.
func TestFixedServerWork(t *testing.T) {
	// Each server draws its own jti, so the bodies are compared in length.
	answer := func(s *fasthttp.Server, path string) (int, int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(path)
		s.Handler(&ctx)
		return ctx.Response.StatusCode(), len(ctx.Response.Body()), string(ctx.Response.Header.Peek("X-Auth-Subject"))
	}
	plain, err := NewFixedServer(800, 0)
	if err != nil {
		t.Fatal(err)
	}
	working, err := NewFixedServer(800, 20*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/introspect", "/authz"} {
		c0, b0, h0 := answer(plain, path)
		burnSink.Store(0)
		c1, b1, h1 := answer(working, path)
		if burnSink.Load() == 0 {
			t.Errorf("%s: the server with work did not burn any", path)
		}
		if c0 != 200 || c1 != c0 || b1 != b0 || h1 != h0 {
			t.Errorf("%s: with work %d, %d-byte body, %q; without %d, %d bytes, %q; want 200 and the same answer", path, c1, b1, h1, c0, b0, h0)
		}
	}
	if n := newBurner(0).iters; n != 0 {
		t.Errorf("no work: %d iterations, want 0", n)
	}
	// Calibration timings vary on a shared machine, but not a hundredfold.
	small, large := newBurner(time.Microsecond).iters, newBurner(100*time.Microsecond).iters
	if small < 1 || large < 10*small {
		t.Errorf("1 µs: %d iterations, 100 µs: %d; want at least 1 and ten times as many", small, large)
	}
}

func TestCPUGap(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, cpu float64) string {
		r := sampleResult(name, "hit", "ES256", "open", 50000, 100, cpu)
		if cpu == 0 {
			r.Server = nil
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%v.json", name, cpu))
		if err := writeJSON(p, r); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ours := []string{file("ours", 16.4), file("ours", 16.8)}
	fixed := []string{file("fixed", 15.9), file("fixed", 16.0)}
	for _, c := range []struct {
		a, b []string
		want time.Duration
	}{
		{ours, fixed, 650 * time.Nanosecond},
		{fixed, ours, 0}, // less CPU: no work to add
		{ours[:1], ours[:1], 0},
	} {
		got, err := CPUGap(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CPUGap(%v, %v) = %v, %v; want %v", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := CPUGap(ours, []string{file("fixed", 0)}); err == nil || !strings.Contains(err.Error(), "no server CPU") {
		t.Errorf("a run without the server's CPU: got %v, want an error saying so", err)
	}
	gap := []string{"cpu-gap", "-a", strings.Join(ours, ","), "-b", strings.Join(fixed, ",")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{gap, "650ns\n"},
		// 650 ns of work made the probe 0.25 µs costlier per request.
		{append(gap, "-work", "650ns", "-probe", file("probe", 16.2), "-probe-base", file("fixed", 15.95)), "1.69µs\n"},
	} {
		var out bytes.Buffer
		if code := Main(context.Background(), c.args, &out, io.Discard); code != 0 || out.String() != c.want {
			t.Errorf("%v printed %q (exit %d), want %q", c.args, out.String(), code, c.want)
		}
	}
	for _, c := range []struct {
		work, gap, got, want time.Duration
	}{
		{time.Microsecond, time.Microsecond, 500 * time.Nanosecond, 2 * time.Microsecond},
		{time.Microsecond, time.Microsecond, 2 * time.Microsecond, 500 * time.Nanosecond},
		{time.Microsecond, time.Microsecond, 0, 4 * time.Microsecond},                          // no effect seen: as far as it may go
		{time.Microsecond, 10 * time.Microsecond, 100 * time.Nanosecond, 4 * time.Microsecond}, // a noisy probe
		{time.Microsecond, 0, time.Microsecond, 250 * time.Nanosecond},
	} {
		if got := ScaleWork(c.work, c.gap, c.got); got != c.want {
			t.Errorf("ScaleWork(%v, %v, %v) = %v, want %v", c.work, c.gap, c.got, got, c.want)
		}
	}
}

func TestClosedLoopAgainstFixed(t *testing.T) {
	s, err := NewFixedServer(800, 0)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })

	var progress bytes.Buffer
	c := quickConfig("http://"+ln.Addr().String(), "hit")
	c.Duration, c.Warmup, c.Name, c.ServerPID, c.Progress = 1200*time.Millisecond, 100*time.Millisecond, "fixed", os.Getpid(), &progress
	c.Zipf = 1.1
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 100 || res.OK != res.Requests || len(res.Errors) != 0 {
		t.Errorf("got %d requests, %d ok, errors %v; want many, all ok", res.Requests, res.OK, res.Errors)
	}
	if res.Throughput <= 0 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("implausible figures: %+v", res.Latency)
	}
	if res.Elapsed < 1.1 || res.Elapsed > 10 {
		t.Errorf("elapsed: got %.2fs, want about 1.2s", res.Elapsed)
	}
	if res.Server == nil || res.Server.CPUPerReq <= 0 || res.Warm == nil || res.Warm.Requests != 20 {
		t.Errorf("server %+v, warm %+v: want CPU per request and 20 warmed tokens", res.Server, res.Warm)
	}
	if !strings.Contains(progress.String(), "req/s") {
		t.Errorf("no progress line in %q", progress.String())
	}
	var out bytes.Buffer
	PrintResult(&out, res)
	for _, want := range []string{"hit ES256 against fixed", "p99.9", "errors: none", "server: pid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// openEngines are the open-loop engines this system can run.
func openEngines() []string {
	if spinSupported {
		return []string{EngineGoroutines, EngineSpin}
	}
	return []string{EngineGoroutines}
}

func TestOpenLoopChargesQueueing(t *testing.T) {
	for _, engine := range openEngines() {
		t.Run(engine, func(t *testing.T) {
			// One connection; the server stalls 200 ms once. Requests
			// scheduled during the stall must be charged the time they
			// waited to be sent.
			var n atomic.Int64
			url := startFasthttp(t, func(ctx *fasthttp.RequestCtx) {
				if n.Add(1) == 60 {
					time.Sleep(200 * time.Millisecond)
				}
				ctx.SetBodyString(`{"active":true}`)
			})
			c := quickConfig(url, "hit")
			c.Connections, c.Rate, c.Duration, c.Tokens, c.Engine = 1, 500, 700*time.Millisecond, 5, engine
			res, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != "open" || res.Engine != engine || res.ServiceTime == nil || res.SendLag == nil {
				t.Fatalf("got mode %q engine %q, want open on %s with service time and send lag", res.Mode, res.Engine, engine)
			}
			if want := int64(350); res.Requests < want-20 || res.Requests > want+1 {
				t.Errorf("requests: got %d, want %d scheduled", res.Requests, want)
			}
			// About 100 of 350 requests were due during the stall: from the
			// intended time, a fifth of them waited over 100 ms.
			if res.Latency.P90 < 50e3 || res.Latency.Max < 190e3 {
				t.Errorf("latency from intended time: got p90 %.0f µs, max %.0f µs; want the stall's queueing in (p90 > 50 ms, max ≥ 190 ms)", res.Latency.P90, res.Latency.Max)
			}
			// From the actual send, only the one stalled request was slow.
			if res.ServiceTime.P90 > 20e3 || res.ServiceTime.Max < 190e3 {
				t.Errorf("service time: got p90 %.0f µs, max %.0f µs; want p90 small, max ≥ 190 ms", res.ServiceTime.P90, res.ServiceTime.Max)
			}
			if res.OK != res.Requests {
				t.Errorf("errors: %v", res.Errors)
			}
		})
	}
}

// TestOpenLoopEndsWhenTheServerGoes: a server that dies mid-run must end
// the run with its requests counted as errors, not leave the load tool
// polling connections that are gone (the spin engine did, past -duration,
// until it was killed).
func TestOpenLoopEndsWhenTheServerGoes(t *testing.T) {
	for _, engine := range openEngines() {
		t.Run(engine, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var gone atomic.Bool
			s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
				if gone.Load() {
					ctx.HijackSetNoResponse(true)
					ctx.Hijack(func(net.Conn) {}) // closes without answering
					return
				}
				ctx.SetBodyString(`{"active":true}`)
			}}
			go func() { _ = s.Serve(ln) }()
			t.Cleanup(func() { _ = s.Shutdown() })
			c := quickConfig("http://"+ln.Addr().String(), "hit")
			c.Rate, c.Duration, c.Warmup, c.Timeout, c.Engine = 2000, 2*time.Second, 0, time.Second, engine
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			time.AfterFunc(300*time.Millisecond, func() {
				_ = ln.Close() // reconnects are refused from now on
				gone.Store(true)
			})
			start := time.Now()
			res, err := Run(ctx, c)
			if took := time.Since(start); took > c.Duration+c.Timeout+2*time.Second {
				t.Fatalf("the run took %v after the server went, want about -duration (%v)", took.Round(time.Millisecond), c.Duration)
			}
			if err != nil {
				t.Fatalf("the run failed instead of reporting the lost connections: %v", err)
			}
			if res.OK == 0 || len(res.Errors) == 0 {
				t.Errorf("ok %d, errors %v: want answers before the server went and errors after", res.OK, res.Errors)
			}
		})
	}
}

// TestSpinEngine runs the spin engine against servers that misbehave: it
// must count each failure by kind, reconnect and carry on.
func TestSpinEngine(t *testing.T) {
	if !spinSupported {
		t.Skip("the spin engine needs epoll (Linux)")
	}
	answer := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"active":true}`) }
	var stalls atomic.Int64
	tests := []struct {
		name    string
		handler fasthttp.RequestHandler
		timeout time.Duration
		scen    string
		want    map[string]bool // error kinds that must appear; nil: none at all
	}{
		{name: "plain", handler: answer},
		{name: "garbage scenario", scen: "garbage", handler: func(ctx *fasthttp.RequestCtx) {
			if bytes.Count(ctx.PostBody(), []byte(".")) == 2 && len(ctx.PostBody()) > 300 {
				ctx.SetBodyString(`{"active":true}`) // a valid-looking token: a warmed one or a forgery
				return
			}
			ctx.SetBodyString(`{"active":false}`)
		}, want: map[string]bool{"active_for_garbage": true}},
		{name: "closes every 10th connection", handler: func(ctx *fasthttp.RequestCtx) {
			if ctx.ConnRequestNum()%10 == 0 {
				ctx.HijackSetNoResponse(true)
				ctx.Hijack(func(net.Conn) {}) // closes without answering
				return
			}
			answer(ctx)
		}, want: map[string]bool{"conn_closed": true}},
		{name: "stalls past the timeout", timeout: 100 * time.Millisecond, handler: func(ctx *fasthttp.RequestCtx) {
			if stalls.Add(1) == 100 {
				time.Sleep(300 * time.Millisecond)
			}
			answer(ctx)
		}, want: map[string]bool{"timeout": true}},
		{name: "status 500", handler: func(ctx *fasthttp.RequestCtx) {
			if ctx.ConnRequestNum()%5 == 0 { // not the first: the preflight must pass
				ctx.SetStatusCode(500)
				return
			}
			answer(ctx)
		}, want: map[string]bool{"status_500": true}},
		{name: "chunked answer", handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) { _, _ = w.WriteString(`{"active":true}`) })
		}, want: map[string]bool{"bad_response": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scen := tc.scen
			if scen == "" {
				scen = "hit"
			}
			c := quickConfig(startFasthttp(t, tc.handler), scen)
			c.Rate, c.Duration, c.Warmup, c.Engine = 2000, 600*time.Millisecond, 0, EngineSpin
			if tc.timeout > 0 {
				c.Timeout = tc.timeout
			}
			res, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < 1000 || res.Requests > 1201 {
				t.Errorf("requests: got %d, want about 1,200 (2,000/s for 0.6 s)", res.Requests)
			}
			if tc.want == nil && len(res.Errors) != 0 {
				t.Errorf("errors %v, want none", res.Errors)
			}
			for kind := range tc.want {
				if res.Errors[kind] == 0 {
					t.Errorf("errors %v, want some %s", res.Errors, kind)
				}
			}
			for kind := range res.Errors {
				if tc.want != nil && !tc.want[kind] {
					t.Errorf("unexpected error kind %s (%v)", kind, res.Errors)
				}
			}
			if res.Client.Busy <= 0 || res.Client.Busy > 1 {
				t.Errorf("client busy %v, want a share of the run", res.Client.Busy)
			}
		})
	}
}

func TestEngineChoice(t *testing.T) {
	tests := []struct {
		url, scenario, engine string
		want                  string // engine after defaults, or the error's text
	}{
		{"http://127.0.0.1:1", "hit", "", map[bool]string{true: EngineSpin, false: EngineGoroutines}[spinSupported]},
		{"https://127.0.0.1:1", "hit", "", EngineGoroutines},
		{"http://127.0.0.1:1", "revoke-storm", "", EngineGoroutines},
		{"https://127.0.0.1:1", "hit", EngineSpin, "plain HTTP only"},
		{"http://127.0.0.1:1", "revoke-storm", EngineSpin, "cannot run revoke-storm"},
		{"http://127.0.0.1:1", "hit", "threads", "want spin or goroutines"},
	}
	for _, tc := range tests {
		c := Config{URL: tc.url, Scenario: tc.scenario, Engine: tc.engine, HitRatio: -1}
		c.setDefaults()
		err := c.Validate()
		switch {
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s %s -engine %q: error %v, want %q", tc.url, tc.scenario, tc.engine, err, tc.want)
		case err == nil && c.Engine != tc.want:
			t.Errorf("%s %s -engine %q: engine %q, want %q", tc.url, tc.scenario, tc.engine, c.Engine, tc.want)
		}
	}
}

func TestResponseSize(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: ok, want: len(ok)},
		{in: ok[:len(ok)-1], want: 0},
		{in: ok[:20], want: 0},
		{in: ok + "HTTP/1.1", want: len(ok)},
		{in: "HTTP/1.1 200 OK\r\ncontent-length:5\r\nX: y\r\n\r\nhello", want: 48},
		{in: "HTTP/1.1 204 No Content\r\n\r\n", want: 27},
		{in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", want: 48},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", want: 62},
		{in: "HTTP/1.1 200 OK\r\n\r\nhello", wantErr: "no Content-Length"},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", wantErr: "Transfer-Encoding"},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", wantErr: "conflicting"},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: "Content-Length"},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", wantErr: "Content-Length"},
		{in: "HTTP/1.1 100 Continue\r\n\r\n", wantErr: "1xx"},
		{in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: "status code"},
		{in: "SMTP 220 hi\r\n\r\n", wantErr: "status line"},
		{in: "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", wantErr: "header line"},
		{in: "HTTP/1.1 200\n\r\ncontent-length:0\r\nX:\r\n\r\n", wantErr: "bare CR or LF"},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 0\nX: y\r\n\r\n", wantErr: "bare CR or LF"},
		{in: "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n", wantErr: "bare CR or LF"},
		{in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 20000), wantErr: "too long"},
	}
	for _, tc := range tests {
		got, err := responseSize([]byte(tc.in))
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("responseSize(%.60q) error %v, want %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("responseSize(%.60q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// FuzzResponseSize: whatever the framing reader calls a whole answer must
// be within its input, and where fasthttp reads that answer too, both must
// agree on where its body ends.
func FuzzResponseSize(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nX: 1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := responseSize(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) || n < 4 {
			t.Fatalf("size %d of a %d-byte input", n, len(b))
		}
		var resp fasthttp.Response
		if resp.Read(bufio.NewReader(bytes.NewReader(b[:n]))) != nil {
			return
		}
		head := bytes.Index(b, []byte("\r\n\r\n")) + 4
		if code := resp.StatusCode(); code != 204 && code != 304 && head+len(resp.Body()) != n {
			t.Fatalf("framing says %d bytes, fasthttp read a %d-byte header and a %d-byte body", n, head, len(resp.Body()))
		}
	})
}

// startJWTBaseline serves the nethttp-jwt baseline trusting keys.
func startJWTBaseline(t *testing.T, keys *Keys) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteKeyDir(dir, keys, ServerConfig{}); err != nil {
		t.Fatal(err)
	}
	h, err := NewJWTHandler(BaselineConfig{JWKSFile: filepath.Join(dir, JWKSFile), Issuer: keys.Issuer, ClientID: "bench", ClientSecret: "bench-secret"})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func TestScenariosAgainstVerifyingBaseline(t *testing.T) {
	keys := testKeys(t)
	url := startJWTBaseline(t, keys)
	for _, sc := range []struct{ scenario, alg string }{
		{"miss", "EdDSA"}, {"mixed", "ES256"}, {"garbage", "ES256"}, {"authz", "EdDSA"},
	} {
		t.Run(sc.scenario, func(t *testing.T) {
			c := quickConfig(url, sc.scenario)
			c.Keys, c.Alg, c.ClientID, c.ClientSecret = keys, sc.alg, "bench", "bench-secret"
			res, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || len(res.Errors) != 0 {
				t.Errorf("got %d requests, errors %v; want some, none", res.Requests, res.Errors)
			}
			switch sc.scenario {
			case "miss":
				if res.Classes["miss"].Requests != res.Requests || res.Requests > 200 {
					t.Errorf("miss: got classes %v for %d requests from a pool of 200", res.Classes, res.Requests)
				}
			case "garbage":
				if res.Classes["garbage"].Requests == 0 || res.Classes["hit"].Requests == 0 {
					t.Errorf("garbage: got classes %v, want garbage and hits", res.Classes)
				}
			}
		})
	}
	t.Run("pool exhausted", func(t *testing.T) {
		c := quickConfig(url, "miss")
		c.Keys, c.Alg, c.Pool, c.Duration, c.ClientID, c.ClientSecret = keys, "EdDSA", 30, 5*time.Second, "bench", "bench-secret"
		res, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.StoppedEarly, "pool exhausted") || res.Requests != 29 { // the preflight used one
			t.Errorf("got stopped %q after %d requests, want pool exhausted after 29", res.StoppedEarly, res.Requests)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		c := quickConfig(url, "hit")
		c.Keys, c.ClientID, c.ClientSecret = keys, "bench", "nope"
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "status_401") {
			t.Errorf("got %v, want a preflight error naming status_401", err)
		}
	})
	t.Run("untrusted keys", func(t *testing.T) {
		c := quickConfig(url, "hit")
		c.ClientID, c.ClientSecret = "bench", "bench-secret" // ephemeral keys
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "inactive_for_valid") {
			t.Errorf("got %v, want a preflight error naming inactive_for_valid", err)
		}
	})
}

// revokingServer is a stand-in for introspectd's /introspect and /revoke:
// every token is active until revoked, and revocation shows after 5 ms.
func revokingServer(t *testing.T) string {
	var mu sync.Mutex
	revoked := map[[32]byte]time.Time{}
	return startFasthttp(t, func(ctx *fasthttp.RequestCtx) {
		h := sha256.Sum256(ctx.PostArgs().Peek("token"))
		switch string(ctx.Path()) {
		case "/revoke":
			mu.Lock()
			revoked[h] = time.Now().Add(5 * time.Millisecond)
			mu.Unlock()
		case "/introspect":
			mu.Lock()
			at, ok := revoked[h]
			mu.Unlock()
			if ok && time.Now().After(at) {
				ctx.SetBodyString(`{"active":false}`)
				return
			}
			ctx.SetBodyString(`{"active":true}`)
		}
	})
}

func TestRevokeStorm(t *testing.T) {
	c := quickConfig(revokingServer(t), "revoke-storm")
	c.RevokeRate, c.Duration = 40, time.Second
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	rv := res.Revocation
	if rv == nil || rv.Revoked < 20 || len(rv.Errors) != 0 || len(res.Errors) != 0 {
		t.Fatalf("got %+v, load errors %v; want about 40 revocations without errors", rv, res.Errors)
	}
	if rv.Visible.P50 < 4e3 || rv.Visible.Max > 1e6 {
		t.Errorf("revoked→inactive: got p50 %.0f µs, max %.0f µs; want about 5 ms", rv.Visible.P50, rv.Visible.Max)
	}
}

func TestMainFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "-connections"},
		{[]string{"-connections", "0"}, 2, "-connections 0"},
		{[]string{"-connections", "x"}, 2, "invalid value"},
		{[]string{"-scenario", "nope"}, 2, "-scenario \"nope\""},
		{[]string{"-alg", "HS256"}, 2, "-alg \"HS256\""},
		{[]string{"-zipf", "0.5"}, 2, "-zipf"},
		{[]string{"-hit-ratio", "1.5"}, 2, "-hit-ratio"},
		{[]string{"-rate", "-1"}, 2, "-rate"},
		{[]string{"-duration", "0s"}, 2, "-duration"},
		{[]string{"-url", "ftp://x"}, 2, "-url"},
		{[]string{"-client-id", "x"}, 2, "go together"},
		{[]string{"-rate", "10", "-rate-of", "x.json"}, 2, "exclude each other"},
		{[]string{"-rate-of", "/nonexistent.json"}, 2, "-rate-of"},
		{[]string{"-keys", "/nonexistent"}, 2, "-keys"},
		{[]string{"-bogus"}, 2, "-bogus"},
		{[]string{"-scenario", "hit", "extra"}, 2, "unexpected argument"},
		{[]string{"frob"}, 2, "unknown command"},
		{[]string{"serve-baseline", "-kind", "nope"}, 2, "-kind"},
		{[]string{"serve-baseline", "-kind", "nethttp-jwt"}, 2, "-keys"},
		{[]string{"serve-baseline", "-kind", "fixed", "-work", "-1us"}, 2, "-work"},
		{[]string{"serve-baseline", "-kind", "nethttp-jwt", "-work", "1us"}, 2, "with -kind fixed"},
		{[]string{"cpu-gap", "-a", "x.json"}, 2, "-a and -b are required"},
		{[]string{"cpu-gap", "-a", "x.json", "-b", "y.json", "-probe", "z.json"}, 2, "go together"},
		{[]string{"cpu-gap", "-a", "/nonexistent.json", "-b", "/nonexistent.json"}, 1, "/nonexistent.json"},
		{[]string{"init"}, 2, "-dir is required"},
		{[]string{"report"}, 2, "-in and -out"},
		{[]string{"report", "-h"}, 0, "-in"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit status: got %d, want %d; stderr %s", code, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr: got %q, want it to mention %q", stderr.String(), c.want)
			}
		})
	}
}

func TestJWTBaselineAnswers(t *testing.T) {
	keys := testKeys(t)
	url := startJWTBaseline(t, keys)
	tok, err := NewMinter(keys, Claims{}).Mint("ES256")
	if err != nil {
		t.Fatal(err)
	}
	post := func(user, token string) (int, string) {
		req, _ := http.NewRequest("POST", url+"/introspect", strings.NewReader("token="+token))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, "bench-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := post("bench", tok); code != 200 || !strings.HasPrefix(body, `{"active":true`) && !strings.Contains(body, `"active":true`) {
		t.Errorf("valid token: got %d %s", code, body)
	}
	if code, body := post("bench", tok[:len(tok)-4]+"AAAA"); code != 200 || body != `{"active":false}` {
		t.Errorf("forged token: got %d %s, want 200 {\"active\":false}", code, body)
	}
	if code, _ := post("other", tok); code != 401 {
		t.Errorf("wrong caller: got %d, want 401", code)
	}
}

func TestPacerSleepsUntil(t *testing.T) {
	p := newPacer()
	defer p.close()
	var late []time.Duration
	for range 20 {
		due := time.Now().Add(300 * time.Microsecond)
		p.sleepUntil(context.Background(), due)
		d := time.Since(due)
		if d < -earlyBy {
			t.Fatalf("woke %v early, want at most %v", -d, earlyBy)
		}
		late = append(late, d)
	}
	slices.Sort(late)
	if med := late[len(late)/2]; med > 20*time.Millisecond {
		t.Errorf("median lateness %v, want well under 20 ms", med)
	}
	p.sleepUntil(context.Background(), time.Now().Add(-time.Second)) // past: returns at once
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	p.sleepUntil(ctx, time.Now().Add(time.Minute)) // cancelled: returns at once
	if time.Since(start) > time.Second {
		t.Errorf("a cancelled sleep took %v", time.Since(start))
	}
}

func TestMaxRequests(t *testing.T) {
	url := startFasthttp(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(`{"active":true}`) })
	c := quickConfig(url, "hit")
	c.Duration, c.MaxRequests = 30*time.Second, 500
	start := time.Now()
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 500 || time.Since(start) > 20*time.Second {
		t.Errorf("got %d requests in %v, want 500 well before -duration", res.Requests, time.Since(start))
	}
}

func TestRedactArgs(t *testing.T) {
	got := strings.Join(redactArgs([]string{"-client-id", "a", "-client-secret", "s3", "--client-secret=s4", "-url", "x"}), " ")
	if want := "-client-id a -client-secret REDACTED --client-secret=REDACTED -url x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestProcInfoRedacts: a result records the command lines of the server and
// of the load tool itself, which may carry -client-secret; the secret must
// not reach the result file.
func TestProcInfoRedacts(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30; true", "-client-secret", "s3cret")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var got []string
	for range 100 { // until the shell's command line is readable
		if got = readProcInfo(cmd.Process.Pid).Command; len(got) > 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if want := []string{"sh", "-c", "sleep 30; true", "-client-secret", "REDACTED"}; !slices.Equal(got, want) {
		t.Errorf("command %q, want %q", got, want)
	}
}

func TestScheduleHandsOutEverySendTime(t *testing.T) {
	for _, interval := range []time.Duration{10 * time.Microsecond, 500 * time.Microsecond} {
		t.Run(interval.String(), func(t *testing.T) {
			slots := make(chan time.Time, 8)
			start := time.Now()
			end := start.Add(50 * time.Millisecond)
			go schedule(context.Background(), slots, start, end, interval)
			var n int
			var prev time.Time
			for s := range slots {
				if early := time.Until(s); early > tickBelow/2+earlyBy {
					t.Fatalf("send time %v handed out %v early", s.Sub(start), early)
				}
				if n > 0 && s.Sub(prev) != interval {
					t.Fatalf("send times %v apart, want %v", s.Sub(prev), interval)
				}
				prev = s
				n++
			}
			if want := int(50 * time.Millisecond / interval); n != want {
				t.Errorf("got %d send times, want %d", n, want)
			}
		})
	}
}

// TestRateOfMedian: -rate-of with several result files runs at the fraction
// of their median throughput, not of the first or the best.
func TestRateOfMedian(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, tp := range []float64{110_000, 90_000, 100_000, 130_000} {
		p := filepath.Join(dir, fmt.Sprintf("r%d.json", i))
		if err := writeJSON(p, &Result{Throughput: tp}); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	// The configuration the command line gives with no flags but these.
	flagConfig := func(rateOf string) (Config, error) {
		var c Config
		var keyDir, out, rate string
		var frac float64
		var quiet bool
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		runFlags(fs, &c, &keyDir, &out, &rate, &frac, &quiet)
		if err := fs.Parse([]string{"-rate-of", rateOf}); err != nil {
			return c, err
		}
		return c, completeRunConfig(&c, keyDir, rate, frac)
	}
	for _, tc := range []struct {
		files []string
		want  float64
	}{
		{files[:1], 55_000},
		{files[:3], 50_000},  // median of 110k, 90k, 100k
		{files[:4], 52_500},  // mean of the middle two, 100k and 110k
		{files[1:3], 47_500}, // 90k and 100k
	} {
		c, err := flagConfig(strings.Join(tc.files, ","))
		if err != nil {
			t.Fatalf("%v: %v", tc.files, err)
		}
		if c.Rate != tc.want {
			t.Errorf("%d files: rate %v, want %v", len(tc.files), c.Rate, tc.want)
		}
	}
	zero := filepath.Join(dir, "zero.json")
	if err := writeJSON(zero, &Result{}); err != nil {
		t.Fatal(err)
	}
	if _, err := flagConfig(files[0] + ","); err == nil || !strings.Contains(err.Error(), "empty file name") {
		t.Errorf("a trailing comma: %v, want an error saying so", err)
	}
	if _, err := flagConfig(files[0] + "," + zero); err == nil || !strings.Contains(err.Error(), "no throughput") {
		t.Errorf("a file with no throughput: %v, want an error naming it", err)
	}
}
