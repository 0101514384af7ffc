package bench

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Scenarios the load generator knows, in report order.
var Scenarios = []string{"hit", "miss", "mixed", "garbage", "revoke-storm", "authz"}

// Config describes one load run. The zero value is not usable: URL and
// Scenario are required; [Config.Validate] says what is wrong and
// [Config.setDefaults] fills in the rest.
type Config struct {
	URL         string        // base URL of the server, e.g. http://127.0.0.1:8080
	Name        string        // what the server is, for the report: introspectd, fixed, nethttp-jwt
	Scenario    string        // one of [Scenarios]
	Connections int           // keep-alive connections (and workers)
	Duration    time.Duration // measured window
	MaxRequests int64         // end the measured window after this many requests; 0: no limit
	Warmup      time.Duration // unmeasured load before the window
	Rate        float64       // requests per second; > 0 selects the open loop
	Engine      string        // open loop: EngineSpin or EngineGoroutines; "": spin where it can run
	Timeout     time.Duration // per request

	Tokens   int     // distinct warmed valid tokens
	Zipf     float64 // Zipf exponent s > 1 over the warmed tokens; 0: uniform
	Alg      string  // signing algorithm of the tokens
	HitRatio float64 // mixed and garbage: share of requests with a warmed valid token
	Pool     int     // miss and mixed: fresh tokens to pre-mint; the run stops when they run out
	Claims   Claims

	RevokeRate float64       // revoke-storm: revocations per second
	RevokeWait time.Duration // revoke-storm: how long a revoked token may still be active

	AuthzMethod string // authz: X-Forwarded-Method
	AuthzURI    string // authz: X-Forwarded-Uri

	ClientID     string // HTTP Basic caller credentials for /introspect and /revoke
	ClientSecret string

	ServerPID    int    // read the server's CPU time and RSS from /proc when > 0
	MetricsURL   string // scrape these Prometheus metrics before and after the window
	MetricsMatch string // regexp for the metric names to keep

	// Pair is a second server to measure in the same open-loop window
	// ([RunPair]), with the same requests; nil: one server.
	Pair *PairTarget
	// Slice is how long the open loop of [RunPair] sends to one server
	// before it turns to the other.
	Slice time.Duration

	Keys     *Keys     // signing keys; nil: ephemeral keys no server trusts
	Progress io.Writer // a progress line each second; nil: none
	TTY      bool      // Progress is a terminal: rewrite one line instead of adding lines
	Args     []string  // the command line, for the report
}

// PairTarget is the second server of [RunPair].
type PairTarget struct {
	URL        string
	Name       string
	ServerPID  int
	MetricsURL string // as Config.MetricsURL, for this server
}

// Open-loop engines: see spin_linux.go for why there are two.
const (
	EngineSpin       = "spin"       // one goroutine polling every connection, never sleeping (Linux, plain HTTP)
	EngineGoroutines = "goroutines" // a worker per connection, paced by a scheduler goroutine
)

// Defaults for [Config].
const (
	DefaultConnections = 50
	DefaultDuration    = 10 * time.Second
	DefaultWarmup      = time.Second
	DefaultTimeout     = 5 * time.Second
	DefaultTokens      = 10000
	DefaultAlg         = "ES256"
	DefaultRevokeRate  = 50
	DefaultRevokeWait  = 5 * time.Second
	DefaultSlice       = 250 * time.Millisecond
	MaxConnections     = 1000
)

// DefaultHitRatio returns the hit ratio a scenario uses when none is given.
func DefaultHitRatio(scenario string) float64 {
	switch scenario {
	case "mixed":
		return 0.95
	case "garbage":
		return 0.5
	case "miss":
		return 0
	}
	return 1
}

// DefaultPool returns how many fresh tokens a miss or mixed run pre-mints when
// Pool is 0: enough for 100,000 requests per second (or -rate) over the run,
// capped where minting gets slow (an RSA signature costs about 1 ms, ECDSA
// and Ed25519 tens of µs): 300,000, or 20,000 for RSA.
func (c *Config) DefaultPool() int {
	if c.Scenario != "miss" && c.Scenario != "mixed" {
		return 0
	}
	perSec := 100000.0
	if c.Rate > 0 {
		perSec = c.Rate
	}
	n := perSec * (c.Duration + c.Warmup + time.Second).Seconds() * (1 - c.HitRatio)
	limit := 300000.0
	if strings.HasPrefix(c.Alg, "RS") || strings.HasPrefix(c.Alg, "PS") {
		limit = 20000
	}
	return int(math.Max(100, math.Min(n, limit)))
}

func (c *Config) setDefaults() {
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Tokens == 0 {
		c.Tokens = DefaultTokens
	}
	if c.Alg == "" {
		c.Alg = DefaultAlg
	}
	if c.HitRatio < 0 { // negative: not given
		c.HitRatio = DefaultHitRatio(c.Scenario)
	}
	if c.Pool == 0 {
		c.Pool = c.DefaultPool()
	}
	if c.RevokeRate == 0 {
		c.RevokeRate = DefaultRevokeRate
	}
	if c.RevokeWait == 0 {
		c.RevokeWait = DefaultRevokeWait
	}
	if c.AuthzMethod == "" {
		c.AuthzMethod = "GET"
	}
	if c.AuthzURI == "" {
		c.AuthzURI = "/api/bench"
	}
	if c.MetricsMatch == "" {
		c.MetricsMatch = DefaultMetricsMatch
	}
	if c.Claims.Size == 0 {
		c.Claims.Size = 800
	}
	if c.Pair != nil && c.Slice == 0 {
		c.Slice = DefaultSlice
	}
	if c.Engine == "" {
		c.Engine = EngineGoroutines
		// revoke-storm's revocations go through Go's poller, which the
		// spin loop would keep waiting.
		if spinSupported && strings.HasPrefix(c.URL, "http://") && c.Scenario != "revoke-storm" {
			c.Engine = EngineSpin
		}
	}
}

// Validate reports the first thing wrong with c, naming the flag.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("-url %q: want http://host:port", c.URL)
	case !contains(Scenarios, c.Scenario):
		return fmt.Errorf("-scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	case !contains(Algorithms, c.Alg):
		return fmt.Errorf("-alg %q: want one of %s", c.Alg, strings.Join(Algorithms, ", "))
	case c.Connections < 1 || c.Connections > MaxConnections:
		return fmt.Errorf("-connections %d: want 1 to %d", c.Connections, MaxConnections)
	case c.Duration <= 0:
		return fmt.Errorf("-duration %v: want > 0", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("-warmup %v: want >= 0", c.Warmup)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("-rate %v: want >= 0 (0: closed loop)", c.Rate)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout %v: want > 0", c.Timeout)
	case c.Tokens < 1:
		return fmt.Errorf("-tokens %d: want >= 1", c.Tokens)
	case c.Zipf != 0 && !(c.Zipf > 1):
		return fmt.Errorf("-zipf %v: want 0 (uniform) or an exponent > 1", c.Zipf)
	case c.HitRatio > 1 || (c.HitRatio < 0 && c.HitRatio != -1):
		return fmt.Errorf("-hit-ratio %v: want 0 to 1", c.HitRatio)
	case c.MaxRequests < 0:
		return fmt.Errorf("-max-requests %d: want >= 0", c.MaxRequests)
	case c.Pool < 0:
		return fmt.Errorf("-pool %d: want >= 0", c.Pool)
	case c.RevokeRate <= 0 || c.RevokeWait <= 0:
		return fmt.Errorf("-revoke-rate %v, -revoke-wait %v: want > 0", c.RevokeRate, c.RevokeWait)
	case c.Claims.Size < 0 || c.Claims.Size > 16000:
		return fmt.Errorf("-token-size %d: want 0 to 16000", c.Claims.Size)
	case c.ServerPID < 0:
		return fmt.Errorf("-server-pid %d: want a process id", c.ServerPID)
	case (c.ClientID == "") != (c.ClientSecret == ""):
		return errors.New("-client-id and -client-secret go together")
	case c.Engine != "" && c.Engine != EngineSpin && c.Engine != EngineGoroutines:
		return fmt.Errorf("-engine %q: want %s or %s", c.Engine, EngineSpin, EngineGoroutines)
	case c.Engine == EngineSpin && !spinSupported:
		return errors.New("-engine spin needs Linux (epoll)")
	case c.Engine == EngineSpin && u != nil && u.Scheme != "http":
		return errors.New("-engine spin speaks plain HTTP only; use -engine goroutines for https")
	case c.Engine == EngineSpin && c.Scenario == "revoke-storm":
		return errors.New("-engine spin cannot run revoke-storm (its revocations need Go's poller); use -engine goroutines")
	}
	if c.Pair != nil {
		if err := c.validatePair(); err != nil {
			return err
		}
	}
	if c.MetricsMatch != "" {
		if _, err := regexp.Compile(c.MetricsMatch); err != nil {
			return fmt.Errorf("-metrics-match: %w", err)
		}
	}
	if c.ServerPID > 0 {
		if _, err := readProc(c.ServerPID); err != nil {
			return fmt.Errorf("-server-pid %d: %w", c.ServerPID, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Result is what a run measured; it is the JSON file the report reads.
type Result struct {
	Tool        string    `json:"tool"`
	Name        string    `json:"name"`
	Scenario    string    `json:"scenario"`
	Alg         string    `json:"alg"`
	Mode        string    `json:"mode"`             // closed or open
	Engine      string    `json:"engine,omitempty"` // open loop: spin or goroutines
	URL         string    `json:"url"`
	Connections int       `json:"connections"`
	Rate        float64   `json:"rate,omitempty"`
	Tokens      int       `json:"tokens"`
	Zipf        float64   `json:"zipf,omitempty"`
	HitRatio    float64   `json:"hit_ratio"`
	TokenBytes  int       `json:"token_bytes"`
	Started     time.Time `json:"started"`
	LoadAvg     string    `json:"loadavg"` // /proc/loadavg as the measured time began
	Elapsed     float64   `json:"elapsed_s"`
	// PairedWith names the server measured in the same window (RunPair),
	// the two taking turns every SliceSeconds; Elapsed is then this
	// server's share of the window.
	PairedWith   string  `json:"paired_with,omitempty"`
	SliceSeconds float64 `json:"slice_s,omitempty"`

	Requests   int64   `json:"requests"`
	OK         int64   `json:"ok"`
	Throughput float64 `json:"throughput_rps"`
	// Latency is end to end: from the send in the closed loop, from the
	// intended send time in the open loop.
	Latency Latency `json:"latency"`
	// LatencyHist is Latency's whole histogram (HdrHistogram V2 compressed
	// encoding, base64, nanoseconds), so that a report can pool runs: a
	// p99 over several runs is not a function of their p99s.
	LatencyHist string                 `json:"latency_hist,omitempty"`
	ServiceTime *Latency               `json:"service_time,omitempty"` // open loop: from the actual send
	SendLag     *Latency               `json:"send_lag,omitempty"`     // open loop: actual minus intended send
	Classes     map[string]ClassResult `json:"classes"`
	Errors      map[string]int64       `json:"errors"`

	Warm       *WarmResult                  `json:"warm,omitempty"`
	Revocation *RevocationResult            `json:"revocation,omitempty"`
	Server     *ServerResult                `json:"server,omitempty"`
	Client     ClientResult                 `json:"client"`
	Metrics    map[string]MetricDelta       `json:"metrics,omitempty"`
	Histograms map[string]HistogramEstimate `json:"server_histograms,omitempty"`
	MetricsErr string                       `json:"metrics_error,omitempty"`

	StoppedEarly string `json:"stopped_early,omitempty"`
}

// ClassResult is the share of a run that sent one kind of token.
type ClassResult struct {
	Requests int64            `json:"requests"`
	Latency  Latency          `json:"latency"`
	Errors   map[string]int64 `json:"errors,omitempty"`
}

// WarmResult describes the pass that put every warmed token in the cache.
type WarmResult struct {
	Requests      int64            `json:"requests"`
	Elapsed       float64          `json:"elapsed_s"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	RSSBefore     int64            `json:"server_rss_before,omitempty"`
	RSSAfter      int64            `json:"server_rss_after,omitempty"`
	BytesPerToken float64          `json:"server_bytes_per_token,omitempty"`
}

// RevocationResult is what revoke-storm measured besides the load.
type RevocationResult struct {
	Revoked int64            `json:"revoked"`
	Revoke  Latency          `json:"revoke_latency"` // POST /revoke
	Visible Latency          `json:"visible_after"`  // from the /revoke answer to the first active:false
	Errors  map[string]int64 `json:"errors,omitempty"`
}

// ServerResult is the server process over the measured window.
type ServerResult struct {
	procInfo
	CPUSeconds float64 `json:"cpu_s"`
	CPUPerReq  float64 `json:"cpu_us_per_req"`
	CPUUtil    float64 `json:"cpu_util"` // cores busy on average
	RSS        int64   `json:"rss_bytes"`
}

// ClientResult is the load generator over the measured window.
type ClientResult struct {
	procInfo
	Args    []string `json:"args"`
	CPUUtil float64  `json:"cpu_util"`
	// Busy is the share of the measured time the spin engine spent on
	// requests and answers rather than polling (its CPUUtil is always
	// about 1); 0 for the goroutine engine.
	Busy float64 `json:"busy,omitempty"`
}

// Load is how busy the load tool was: the share of its core it needed.
func (c ClientResult) Load() float64 {
	if c.Busy > 0 {
		return c.Busy
	}
	return c.CPUUtil
}

// Token classes: the kind of token a request carries.
const (
	classHit = iota
	classMiss
	classGarbage
	numClasses
)

var classNames = [numClasses]string{"hit", "miss", "garbage"}

type classStats struct {
	lat    *hdr.Histogram
	errors map[string]int64
}

type phaseStats struct {
	class   [numClasses]classStats
	service *hdr.Histogram // open loop only
	lag     *hdr.Histogram
	busy    time.Duration // spin engine: time spent on requests and answers
}

func (p *phaseStats) fail(class int, kind string) {
	c := &p.class[class]
	if c.errors == nil {
		c.errors = map[string]int64{}
	}
	c.errors[kind]++
}

// run holds the state of one load run.
type run struct {
	cfg      Config
	addr     string
	isTLS    bool
	basic    string
	hitBody  [][]byte // prepared per warmed token: form body or Bearer header
	hitReq   [][]byte // spin engine: the whole request per warmed token
	missPool [][]byte
	missNext atomic.Int64
	garbage  *Garbage
	revoke   []string
	tokenLen int

	stop    context.CancelCauseFunc
	done    atomic.Int64 // requests completed, for progress
	failed  atomic.Int64
	workers []*worker
	peer    *run // RunPair: the other server's run, counted in the progress line
}

// counts returns the requests completed and failed so far, the peer's too.
func (r *run) counts() (done, failed int64) {
	done, failed = r.done.Load(), r.failed.Load()
	if r.peer != nil {
		done += r.peer.done.Load()
		failed += r.peer.failed.Load()
	}
	return done, failed
}

var errPoolExhausted = errors.New("fresh-token pool exhausted (raise -pool)")

// Run generates the load c describes against c.URL and returns what it
// measured. Cancelling ctx (SIGINT) ends the measured window early; the
// result is still returned, with StoppedEarly set.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.Pair != nil {
		return nil, errors.New("bench: a Config with Pair is for RunPair")
	}
	r, err := newRun(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	return r.measure(ctx)
}

// newRun prepares a run of c up to its measurement: the tokens (minted, or
// shared with tokensOf so that two servers get the same requests), the
// workers and a preflight request.
func newRun(ctx context.Context, c Config, tokensOf *run) (*run, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: c}
	u, _ := url.Parse(c.URL)
	r.addr, r.isTLS = u.Host, u.Scheme == "https"
	if u.Port() == "" {
		r.addr = net.JoinHostPort(u.Hostname(), map[bool]string{false: "80", true: "443"}[r.isTLS])
	}
	if c.ClientID != "" {
		cred := url.QueryEscape(c.ClientID) + ":" + url.QueryEscape(c.ClientSecret) // RFC 6749 §2.3.1
		r.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
	}
	// Fail fast, before minting for seconds, when nothing listens.
	conn, err := net.DialTimeout("tcp", r.addr, c.Timeout)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.URL, err)
	}
	_ = conn.Close()
	if tokensOf != nil {
		r.hitBody, r.missPool, r.garbage, r.revoke, r.tokenLen =
			tokensOf.hitBody, tokensOf.missPool, tokensOf.garbage, tokensOf.revoke, tokensOf.tokenLen
	} else if err := r.prepareTokens(ctx); err != nil {
		return nil, err
	}
	for i := range c.Connections {
		r.workers = append(r.workers, r.newWorker(i))
	}
	if err := r.preflight(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		if r.cfg.TTY {
			fprint(r.cfg.Progress, "\r\033[K")
		}
		fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func (r *run) prepareTokens(ctx context.Context) error {
	c := &r.cfg
	keys := c.Keys
	if keys == nil {
		var err error
		if keys, err = GenerateKeys(DefaultIssuer, c.Alg); err != nil {
			return err
		}
		if c.Scenario != "hit" || c.Name != "fixed" {
			r.logf("warning: no -keys: tokens are signed by ephemeral keys that no server trusts")
		}
	}
	m := NewMinter(keys, c.Claims)
	mint := func(what string, n int) ([]string, error) {
		start := time.Now()
		ts, err := m.MintN(c.Alg, n)
		if err == nil {
			r.logf("minted %d %s %s tokens in %.1fs", n, c.Alg, what, time.Since(start).Seconds())
		}
		return ts, err
	}
	if c.Scenario != "miss" {
		hits, err := mint("warm", c.Tokens)
		if err != nil {
			return err
		}
		r.tokenLen = len(hits[0])
		r.hitBody = make([][]byte, len(hits))
		for i, t := range hits {
			r.hitBody[i] = r.encodeValid(t)
		}
		if c.Scenario == "revoke-storm" {
			n := int(c.RevokeRate*(c.Duration.Seconds()+1)) + 10
			if r.revoke, err = mint("to revoke", n); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.Scenario == "miss" || c.Scenario == "mixed" {
		ms, err := mint("fresh", c.Pool)
		if err != nil {
			return err
		}
		r.tokenLen = len(ms[0])
		r.missPool = make([][]byte, len(ms))
		for i, t := range ms {
			r.missPool[i] = r.encodeValid(t)
		}
	}
	if c.Scenario == "garbage" {
		g, err := NewGarbage(m, c.Alg, 64)
		if err != nil {
			return err
		}
		r.garbage = g
	}
	return nil
}

// encodeValid prepares a valid token as the request carries it: the form body
// of /introspect, or the Authorization header of /authz. JWS compact tokens
// need no form escaping.
func (r *run) encodeValid(tok string) []byte {
	if r.cfg.Scenario == "authz" {
		return []byte("Bearer " + tok)
	}
	return []byte("token=" + tok)
}

// appendFormToken appends "token=" and tok, form-encoded.
func appendFormToken(dst, tok []byte) []byte {
	const hex = "0123456789ABCDEF"
	dst = append(dst, "token="...)
	for _, b := range tok {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

type worker struct {
	r    *run
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
	rng  *rand.Rand
	zipf *rand.Zipf
	buf  []byte
}

func (r *run) newWorker(i int) *worker {
	c := &r.cfg
	w := &worker{
		r: r,
		hc: &fasthttp.HostClient{
			Addr:                          r.addr,
			IsTLS:                         r.isTLS,
			MaxConns:                      1,
			MaxIdleConnDuration:           time.Hour,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
		},
		req:  fasthttp.AcquireRequest(),
		resp: fasthttp.AcquireResponse(),
		rng:  rand.New(rand.NewSource(int64(i)*7919 + time.Now().UnixNano())),
	}
	if c.Zipf > 1 && len(r.hitBody) > 1 {
		w.zipf = rand.NewZipf(w.rng, c.Zipf, 1, uint64(len(r.hitBody)-1))
	}
	u, _ := url.Parse(c.URL)
	base := strings.TrimSuffix(u.Path, "/")
	req := w.req
	if c.Scenario == "authz" {
		req.Header.SetMethod(fasthttp.MethodGet)
		req.SetRequestURI(u.Scheme + "://" + u.Host + base + "/authz")
		req.Header.Set("X-Forwarded-Method", c.AuthzMethod)
		req.Header.Set("X-Forwarded-Uri", c.AuthzURI)
	} else {
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(u.Scheme + "://" + u.Host + base + "/introspect")
		req.Header.SetContentType("application/x-www-form-urlencoded")
		if r.basic != "" {
			req.Header.Set("Authorization", r.basic)
		}
	}
	return w
}

// hitIndex picks a warmed token.
func (w *worker) hitIndex() int {
	if w.zipf != nil {
		return int(w.zipf.Uint64())
	}
	return w.rng.Intn(len(w.r.hitBody))
}

// chooseClass picks the kind of token the next request carries.
func (w *worker) chooseClass() int {
	r := w.r
	switch r.cfg.Scenario {
	case "miss":
		return classMiss
	case "mixed":
		if w.rng.Float64() >= r.cfg.HitRatio {
			return classMiss
		}
	case "garbage":
		if w.rng.Float64() >= r.cfg.HitRatio {
			return classGarbage
		}
	}
	return classHit
}

// prepare sets up the next request and returns its token class, or false
// when the fresh-token pool has run out.
func (w *worker) prepare() (int, bool) {
	class := w.chooseClass()
	if class == classHit {
		w.setToken(w.r.hitBody[w.hitIndex()])
		return class, true
	}
	return class, w.prepareOther(class)
}

// prepareOther sets up a request for a miss or garbage token; false when
// the fresh-token pool has run out.
func (w *worker) prepareOther(class int) bool {
	r := w.r
	switch class {
	case classMiss:
		i := r.missNext.Add(1) - 1
		if i >= int64(len(r.missPool)) {
			r.stop(errPoolExhausted)
			return false
		}
		w.setToken(r.missPool[i])
	case classGarbage:
		tok, _ := r.garbage.Token(w.buf[:0])
		w.buf = tok
		var body []byte
		body = appendFormToken(body, tok) // fasthttp keeps a raw body until the next request
		w.req.SetBodyRaw(body)
	}
	return true
}

func (w *worker) setToken(b []byte) {
	if w.r.cfg.Scenario == "authz" {
		w.req.Header.SetBytesV("Authorization", b)
		return
	}
	w.req.SetBodyRaw(b)
}

// do sends the prepared request and returns "" or the kind of failure.
func (w *worker) do(class int) string {
	err := w.hc.DoTimeout(w.req, w.resp, w.r.cfg.Timeout)
	if err != nil {
		return errorKind(err)
	}
	return w.r.check(class, w.resp)
}

// check judges a response: valid tokens must be active, garbage inactive with
// exactly {"active":false}.
func (r *run) check(class int, resp *fasthttp.Response) string {
	code := resp.StatusCode()
	if code != fasthttp.StatusOK {
		return fmt.Sprintf("status_%d", code)
	}
	if r.cfg.Scenario == "authz" {
		if len(resp.Header.Peek("X-Auth-Subject")) == 0 {
			return "authz_no_subject"
		}
		return ""
	}
	active, ok := parseActive(resp.Body())
	switch {
	case !ok:
		return "bad_body"
	case class == classGarbage && active:
		return "active_for_garbage"
	case class == classGarbage && string(trimSpace(resp.Body())) != `{"active":false}`:
		return "inactive_body_not_exact"
	case class != classGarbage && !active:
		return "inactive_for_valid"
	}
	return ""
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// parseActive finds the top-level "active" member of an RFC 7662 answer
// without decoding the rest.
func parseActive(body []byte) (active, ok bool) {
	const key = `"active"`
	i := indexOf(body, key)
	if i < 0 {
		return false, false
	}
	b := body[i+len(key):]
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r' || b[0] == ':') {
		b = b[1:]
	}
	switch {
	case len(b) >= 4 && string(b[:4]) == "true":
		return true, true
	case len(b) >= 5 && string(b[:5]) == "false":
		return false, true
	}
	return false, false
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// errorKind names a transport error for the error table.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_closed"
	case errors.As(err, new(*net.OpError)):
		return "conn_error"
	}
	return "client_error"
}

// preflight sends one request of the scenario and fails clearly when the
// server is not there or does not accept the bench's tokens.
func (r *run) preflight() error {
	w := r.workers[0]
	class := classHit
	if r.cfg.Scenario == "miss" {
		class = classMiss
		w.setToken(r.missPool[0])
		r.missNext.Store(1)
	} else {
		w.setToken(r.hitBody[0])
	}
	err := w.hc.DoTimeout(w.req, w.resp, r.cfg.Timeout)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", r.cfg.URL, err)
	}
	if kind := r.check(class, w.resp); kind != "" {
		hint := ""
		switch {
		case kind == "status_401":
			hint = " (wrong or missing -client-id/-client-secret?)"
		case kind == "inactive_for_valid" || strings.HasPrefix(kind, "authz") || kind == "status_403":
			hint = " (does the server trust the JWKS in -keys, issuer and algorithm " + r.cfg.Alg + "?)"
		}
		return fmt.Errorf("preflight against %s: a valid token got %s%s; body %.200q", r.cfg.URL, kind, hint, w.resp.Body())
	}
	return nil
}

// phase runs the load for d (the open loop: sends the requests scheduled in
// d) and returns per-worker stats. warm sends every warmed token once instead.
func (r *run) phase(ctx context.Context, d time.Duration, warm bool, limit int64) []*phaseStats {
	c := &r.cfg
	open := c.Rate > 0 && !warm
	if open && c.Engine == EngineSpin {
		return r.spinPhase(ctx, d, limit)
	}
	start := time.Now()
	end := start.Add(d)
	// The open loop: send times are fixed in advance and handed out by
	// schedule; a free worker takes the next one. When all are busy, send
	// times queue up and their requests are charged the wait.
	var slots chan time.Time
	if open {
		slots = make(chan time.Time, 4*len(r.workers))
		go schedule(ctx, slots, start, end, time.Duration(float64(time.Second)/c.Rate))
	}
	var warmNext, issued atomic.Int64
	stats := make([]*phaseStats, len(r.workers))
	var wg sync.WaitGroup
	for i, w := range r.workers {
		st := &phaseStats{}
		if open {
			st.service, st.lag = newHist(), newHist()
		}
		stats[i] = st
		wg.Go(func() {
			for ctx.Err() == nil {
				if limit > 0 && issued.Add(1) > limit {
					return
				}
				var (
					class    = classHit
					intended time.Time
				)
				switch {
				case warm:
					j := warmNext.Add(1) - 1
					if j >= int64(len(r.hitBody)) {
						return
					}
					w.setToken(r.hitBody[j])
				case open:
					var ok bool
					if intended, ok = <-slots; !ok {
						return
					}
					fallthrough
				default:
					var ok bool
					if class, ok = w.prepare(); !ok {
						return
					}
				}
				sent := time.Now()
				kind := w.do(class)
				now := time.Now()
				cs := &st.class[class]
				if cs.lat == nil {
					cs.lat = newHist()
				}
				if open {
					from := intended
					if sent.Before(intended) { // schedule may hand out a send time a little early
						from = sent
					}
					record(cs.lat, now.Sub(from))
					record(st.service, now.Sub(sent))
					record(st.lag, sent.Sub(intended))
				} else {
					record(cs.lat, now.Sub(sent))
				}
				r.done.Add(1)
				if kind != "" {
					st.fail(class, kind)
					r.failed.Add(1)
				}
				if !open && !warm && !now.Before(end) {
					return
				}
			}
		})
	}
	wg.Wait()
	return stats
}

// tickBelow is the interval between requests under which schedule wakes on
// a periodic tick instead of once per request: at tens of thousands of
// requests per second, arming a timer per request would cost the load tool
// a fifth of its core in syscalls. Each tick releases the requests due
// within half a tick, so a request leaves at most half a tick early or late.
const tickBelow = 50 * time.Microsecond

// schedule sends into slots the send times start, start+interval, ... before
// end, each when it comes, then closes slots.
func schedule(ctx context.Context, slots chan<- time.Time, start, end time.Time, interval time.Duration) {
	defer close(slots)
	p := newPacer()
	defer p.close()
	var tick func()
	if interval < tickBelow {
		tick = p.ticker(tickBelow)
	}
	for j := int64(0); ; j++ {
		t := start.Add(time.Duration(j) * interval)
		if !t.Before(end) || ctx.Err() != nil {
			return
		}
		if tick != nil {
			for time.Until(t) > tickBelow/2 {
				tick()
			}
		} else {
			p.sleepUntil(ctx, t)
		}
		select {
		case slots <- t:
		case <-ctx.Done():
			return
		}
	}
}

// progress prints a line each second until ctx is done.
func (r *run) progress(ctx context.Context, what string) {
	if r.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var lastDone int64
	last := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d, failed := r.counts()
			sep := "\n"
			if r.cfg.TTY {
				sep = ""
				fprint(r.cfg.Progress, "\r\033[K")
			}
			fprintf(r.cfg.Progress, "%s %s %4.0fs %9.0f req/s  %10d done  %d errors%s",
				r.cfg.Scenario, what, now.Sub(start).Seconds(),
				float64(d-lastDone)/now.Sub(last).Seconds(), d, failed, sep)
			lastDone, last = d, now
		}
	}
}

func (r *run) withProgress(ctx context.Context, what string, f func()) {
	r.done.Store(0)
	r.failed.Store(0)
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.progress(pctx, what) })
	f()
	cancel()
	wg.Wait()
	if r.cfg.TTY && r.cfg.Progress != nil {
		fprint(r.cfg.Progress, "\r\033[K")
	}
}

func (r *run) measure(parent context.Context) (*Result, error) {
	c := &r.cfg
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	r.stop = stop

	res := r.newResult()
	r.warm(ctx, res)
	w := r.openWindow(res)
	start := time.Now()
	var revRes *RevocationResult
	var revWG sync.WaitGroup
	if c.Scenario == "revoke-storm" && ctx.Err() == nil {
		rctx, rcancel := context.WithTimeout(ctx, c.Duration)
		defer rcancel()
		revWG.Go(func() { revRes = r.revokeStorm(rctx) })
	}
	var st []*phaseStats
	if ctx.Err() == nil {
		r.withProgress(ctx, "run", func() { st = r.phase(ctx, c.Duration, false, c.MaxRequests) })
	}
	revWG.Wait()
	elapsed := time.Since(start)
	res.Revocation = revRes
	r.closeWindow(ctx, parent, w, res, mergeStats(st), elapsed, elapsed)
	return res, nil
}

func (r *run) newResult() *Result {
	c := &r.cfg
	res := &Result{
		Tool: "introspect-bench", Name: c.Name, Scenario: c.Scenario, Alg: c.Alg, Mode: "closed",
		URL: c.URL, Connections: c.Connections, Tokens: len(r.hitBody), Zipf: c.Zipf,
		HitRatio: c.HitRatio, TokenBytes: r.tokenLen, Classes: map[string]ClassResult{},
		Errors: map[string]int64{},
	}
	if c.Rate > 0 {
		res.Mode, res.Rate, res.Engine = "open", c.Rate, c.Engine
	}
	return res
}

// warm puts every warmed token in the cache, so that the window sees only
// hits, then runs the unmeasured warm-up load.
func (r *run) warm(ctx context.Context, res *Result) {
	c := &r.cfg
	if len(r.hitBody) > 0 {
		wr := &WarmResult{}
		before, _ := r.serverSample()
		start := time.Now()
		var st []*phaseStats
		r.withProgress(ctx, "warm", func() { st = r.phase(ctx, 0, true, 0) })
		wr.Elapsed = time.Since(start).Seconds()
		after, _ := r.serverSample()
		merged := mergeStats(st)
		wr.Requests = merged.class[classHit].lat.TotalCount()
		wr.Errors = merged.class[classHit].errors
		if c.ServerPID > 0 {
			wr.RSSBefore, wr.RSSAfter = before.RSS, after.RSS
			wr.BytesPerToken = float64(after.RSS-before.RSS) / float64(len(r.hitBody))
		}
		res.Warm = wr
		r.logf("warmed %d tokens in %.1fs (%d errors)", wr.Requests, wr.Elapsed, countErrors(wr.Errors))
	}
	if ctx.Err() == nil && c.Warmup > 0 {
		r.withProgress(ctx, "warmup", func() { r.phase(ctx, c.Warmup, false, 0) })
	}
}

// window holds what is read as the measured window opens.
type window struct {
	metrics   map[string]float64
	match     *regexp.Regexp
	srv, cli  ProcSample
	srvErr    error
	metricErr bool
}

func (r *run) openWindow(res *Result) *window {
	c := &r.cfg
	w := &window{}
	if c.MetricsURL != "" {
		w.match = regexp.MustCompile(c.MetricsMatch)
		var err error
		if w.metrics, err = scrape(c.MetricsURL, w.match, c.Timeout); err != nil {
			res.MetricsErr, w.metricErr = err.Error(), true
		}
	}
	w.srv, w.srvErr = r.serverSample()
	w.cli, _ = readProc(0)
	r.done.Store(0)
	r.failed.Store(0)
	res.Started = time.Now().UTC()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.TrimSpace(string(b))
	}
	return w
}

// closeWindow completes res from what the window measured: merged, over
// elapsed (the time this server had the load; the whole window but for
// RunPair) and wall (the whole window, for the load tool's own figures).
func (r *run) closeWindow(ctx, parent context.Context, w *window, res *Result, merged *phaseStats, elapsed, wall time.Duration) {
	c := &r.cfg
	srvAfter, srvErr := r.serverSample()
	cliAfter, _ := readProc(0)
	if c.MetricsURL != "" && !w.metricErr {
		after, err := scrape(c.MetricsURL, w.match, c.Timeout)
		if err != nil {
			res.MetricsErr = err.Error()
		} else {
			res.Metrics = metricDeltas(w.metrics, after)
			res.Histograms = histogramEstimates(res.Metrics)
		}
	}

	if cause := context.Cause(ctx); cause != nil {
		switch {
		case errors.Is(cause, errPoolExhausted):
			res.StoppedEarly = fmt.Sprintf("%v after %.1fs", cause, wall.Seconds())
		case parent.Err() != nil:
			res.StoppedEarly = fmt.Sprintf("interrupted after %.1fs", wall.Seconds())
		}
	}
	res.Elapsed = elapsed.Seconds()
	all := newHist()
	for k, cs := range merged.class {
		if cs.lat == nil {
			continue
		}
		all.Merge(cs.lat)
		res.Classes[classNames[k]] = ClassResult{Requests: cs.lat.TotalCount(), Latency: summarize(cs.lat), Errors: cs.errors}
		for kind, n := range cs.errors {
			res.Errors[kind] += n
		}
	}
	res.Requests = all.TotalCount()
	res.OK = res.Requests - countErrors(res.Errors)
	if elapsed > 0 {
		res.Throughput = float64(res.Requests) / elapsed.Seconds()
	}
	res.Latency = summarize(all)
	if b, err := all.Encode(hdr.V2CompressedEncodingCookieBase); err == nil {
		res.LatencyHist = string(b)
	}
	if merged.service != nil {
		s, l := summarize(merged.service), summarize(merged.lag)
		res.ServiceTime, res.SendLag = &s, &l
	}
	served := res.Requests
	if rv := res.Revocation; rv != nil {
		served += rv.Revoke.Count + rv.Visible.Count // roughly: each revocation costs a few requests more
	}
	if c.ServerPID > 0 && w.srvErr == nil && srvErr == nil && elapsed > 0 {
		cpu := (srvAfter.CPU - w.srv.CPU).Seconds()
		res.Server = &ServerResult{procInfo: readProcInfo(c.ServerPID), CPUSeconds: cpu,
			CPUUtil: cpu / elapsed.Seconds(), RSS: srvAfter.RSS}
		if served > 0 {
			res.Server.CPUPerReq = cpu / float64(served) * 1e6
		}
	}
	res.Client = ClientResult{procInfo: readProcInfo(0), Args: c.Args}
	if wall > 0 {
		res.Client.CPUUtil = (cliAfter.CPU - w.cli.CPU).Seconds() / wall.Seconds()
	}
	if elapsed > 0 {
		res.Client.Busy = merged.busy.Seconds() / elapsed.Seconds()
	}
}

func (r *run) serverSample() (ProcSample, error) {
	if r.cfg.ServerPID <= 0 {
		return ProcSample{}, errors.New("no server pid")
	}
	return readProc(r.cfg.ServerPID)
}

func mergeStats(st []*phaseStats) *phaseStats {
	m := &phaseStats{}
	for _, s := range st {
		for k, cs := range s.class {
			if cs.lat == nil {
				continue
			}
			if m.class[k].lat == nil {
				m.class[k].lat = newHist()
			}
			m.class[k].lat.Merge(cs.lat)
			for kind, n := range cs.errors {
				if m.class[k].errors == nil {
					m.class[k].errors = map[string]int64{}
				}
				m.class[k].errors[kind] += n
			}
		}
		if s.service != nil {
			if m.service == nil {
				m.service, m.lag = newHist(), newHist()
			}
			m.service.Merge(s.service)
			m.lag.Merge(s.lag)
		}
		m.busy += s.busy
	}
	return m
}

func countErrors(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
