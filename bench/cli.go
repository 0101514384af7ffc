package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const usageHead = `introspect-bench: load generator and baselines for introspectd.

Usage:
  introspect-bench [run] [flags]          generate load and print what it measured
  introspect-bench init -dir DIR [flags]  write signing keys, a JWKS and an introspectd config
  introspect-bench serve-baseline -kind fixed|nethttp-jwt [flags]
                                          serve a baseline to compare introspectd with
  introspect-bench report -in DIR -out FILE
                                          write the Markdown report from a directory of results
  introspect-bench cpu-gap -a FILES -b FILES [-work D -probe FILES -probe-base FILES]
                                          print how much more server CPU per request the runs
                                          of -a took than those of -b, or the work per request
                                          that makes the fixed server that much costlier
                                          (for serve-baseline -work)

Run "introspect-bench COMMAND -h" for a command's flags. Flags of run:
`

// Main runs the introspect-bench command line and returns its exit status:
// 0 done, 1 failed, 2 bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		return mainRun(ctx, args, stdout, stderr)
	case "init":
		err = mainInit(args, stdout, stderr)
	case "serve-baseline":
		err = mainServeBaseline(ctx, args, stdout, stderr)
	case "report":
		err = mainReport(args, stdout, stderr)
	case "cpu-gap":
		err = mainCPUGap(args, stdout, stderr)
	case "help":
		fprint(stdout, usageHead)
		return 0
	default:
		fprintf(stderr, "introspect-bench: unknown command %q (want run, init, serve-baseline, report or cpu-gap; -h for help)\n", cmd)
		return 2
	}
	return exitCode(err, stderr)
}

// usageError is bad command-line usage: exit status 2. printed says the
// flag package has already told the user.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }

func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.printed {
			fprintln(stderr, "introspect-bench:", err)
		}
		return 2
	}
	fprintln(stderr, "introspect-bench:", err)
	return 1
}

// parse parses fs and turns errors into usage errors. The flag package has
// already printed the problem and the usage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return usageError{err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// runFlags binds the flags of the run command to a Config.
func runFlags(fs *flag.FlagSet, c *Config, keyDir, out, rateOf *string, rateFraction *float64, quiet *bool) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base `URL` of the server under test (paths /introspect, /revoke, /authz are appended)")
	fs.StringVar(&c.Name, "name", "introspectd", "what the server under test is, for the report: introspectd, fixed or nethttp-jwt")
	fs.StringVar(&c.Scenario, "scenario", "hit", "load `scenario`: "+strings.Join(Scenarios, ", ")+
		"\n  hit: warmed valid tokens (see -tokens, -zipf)\n  miss: a fresh, never seen token per request (see -alg, -pool)"+
		"\n  mixed: -hit-ratio warmed tokens, the rest fresh\n  garbage: forged and malformed tokens mixed with -hit-ratio warmed ones"+
		"\n  revoke-storm: hit load while tokens are revoked via POST /revoke at -revoke-rate"+
		"\n  authz: GET /authz with Authorization: Bearer and X-Forwarded-Method/-Uri")
	fs.IntVar(&c.Connections, "connections", DefaultConnections, "keep-alive `connections`, one worker each")
	fs.DurationVar(&c.Duration, "duration", DefaultDuration, "measured `time`")
	fs.Int64Var(&c.MaxRequests, "max-requests", 0, "end the measured time after this many `requests` (or -duration, whichever comes first); 0: no limit")
	fs.DurationVar(&c.Warmup, "warmup", DefaultWarmup, "unmeasured load before the measured time (after warming the tokens)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop at this many `req/s`, latency measured from each request's intended send time; 0: closed loop")
	fs.StringVar(rateOf, "rate-of", "", "open loop at -rate-fraction of the throughput in this result `file` (JSON written by -out); several files, comma-separated: of their median throughput")
	fs.Float64Var(rateFraction, "rate-fraction", 0.5, "the `fraction` of -rate-of's throughput to send")
	fs.StringVar(&c.Engine, "engine", "", "open-loop `engine`: spin (one goroutine polls every connection and never sleeps, so the load tool's own wake-ups do not add to latency; Linux, http only) or goroutines (a worker per connection) (default spin where it can run, else goroutines)")
	fs.DurationVar(&c.Timeout, "timeout", DefaultTimeout, "per-request `timeout`")
	fs.IntVar(&c.Tokens, "tokens", DefaultTokens, "distinct valid tokens, minted and warmed before the run")
	fs.Float64Var(&c.Zipf, "zipf", 0, "pick warmed tokens with Zipf skew of this exponent `s` (> 1, e.g. 1.01); 0: uniform")
	fs.StringVar(&c.Alg, "alg", DefaultAlg, "signing `algorithm` of the tokens: "+strings.Join(Algorithms, ", "))
	c.HitRatio = -1
	fs.Func("hit-ratio", "share of requests that carry a warmed valid token, 0 to 1 (default 0.95 for mixed, 0.5 for garbage)", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			return errors.New("want a number from 0 to 1")
		}
		c.HitRatio = v
		return nil
	})
	fs.IntVar(&c.Pool, "pool", 0, "fresh tokens to pre-mint for miss and mixed; the run stops when they are used up (default: enough for 100,000 req/s, at most 300,000, or 20,000 for RSA)")
	fs.IntVar(&c.Claims.Size, "token-size", 800, "pad tokens with a claim to about this many `bytes`")
	fs.Float64Var(&c.RevokeRate, "revoke-rate", DefaultRevokeRate, "revoke-storm: revocations per `second`")
	fs.DurationVar(&c.RevokeWait, "revoke-wait", DefaultRevokeWait, "revoke-storm: how long a revoked token may stay active before it counts as an error")
	fs.StringVar(&c.AuthzMethod, "authz-method", "GET", "authz: X-Forwarded-Method to send")
	fs.StringVar(&c.AuthzURI, "authz-uri", "/api/bench", "authz: X-Forwarded-Uri to send")
	fs.StringVar(&c.ClientID, "client-id", "", "caller `id` for HTTP Basic authentication to /introspect and /revoke")
	fs.StringVar(&c.ClientSecret, "client-secret", "", "caller `secret` (default $INTROSPECT_BENCH_CLIENT_SECRET)")
	fs.StringVar(keyDir, "keys", "", "key `directory` written by init; the server must trust its jwks.json (default: ephemeral keys, fine only for -name fixed)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server process `id`: report its CPU time per request and memory from /proc")
	fs.StringVar(&c.MetricsURL, "metrics-url", "", "server Prometheus `URL` to scrape before and after the measured time, e.g. http://127.0.0.1:8080/metrics")
	fs.StringVar(&c.MetricsMatch, "metrics-match", DefaultMetricsMatch, "`regexp` of the metric names to keep from -metrics-url")
	fs.StringVar(out, "out", "", "write the result as JSON to this `file`")
	fs.BoolVar(quiet, "quiet", false, "no progress line on stderr")
}

// startCPUProfile profiles the load tool itself into path; the returned
// function stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

func mainRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("introspect-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c                   Config
		keyDir, out, rateOf string
		rateFraction        float64
		quiet               bool
	)
	runFlags(fs, &c, &keyDir, &out, &rateOf, &rateFraction, &quiet)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load tool itself to this `file`")
	var pair PairTarget
	fs.StringVar(&pair.URL, "pair-url", "", "measure this second server in the same open-loop window, with the same requests: the schedule's send times go to -url and to this `URL` in turns of -slice, each server having the load for -duration in all (Linux, spin engine)")
	fs.StringVar(&pair.Name, "pair-name", "fixed", "what the -pair-url server is, for the report")
	fs.IntVar(&pair.ServerPID, "pair-server-pid", 0, "the -pair-url server's process `id`, as -server-pid")
	fs.StringVar(&pair.MetricsURL, "pair-metrics-url", "", "the -pair-url server's Prometheus `URL`, as -metrics-url")
	pairOut := fs.String("pair-out", "", "write the -pair-url server's result as JSON to this `file` (needed with -out)")
	fs.DurationVar(&c.Slice, "slice", DefaultSlice, "with -pair-url: how long the open loop sends to one server before turning to the other")
	fs.Usage = func() {
		fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return exitCode(err, stderr)
	}
	if c.ClientSecret == "" {
		c.ClientSecret = os.Getenv("INTROSPECT_BENCH_CLIENT_SECRET")
	}
	c.Args = append([]string{"introspect-bench"}, redactArgs(args)...)
	if pair.URL != "" {
		c.Pair = &pair
		if (out == "") != (*pairOut == "") {
			return exitCode(usageError{err: errors.New("-out and -pair-out go together with -pair-url")}, stderr)
		}
	} else {
		// The pair flags mean nothing alone; say so rather than ignore them.
		var alone []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "pair-out" || f.Name == "pair-name" || f.Name == "pair-server-pid" || f.Name == "pair-metrics-url" || f.Name == "slice" {
				alone = append(alone, "-"+f.Name)
			}
		})
		if len(alone) > 0 {
			return exitCode(usageError{err: fmt.Errorf("%s needs -pair-url", strings.Join(alone, ", "))}, stderr)
		}
	}
	if err := completeRunConfig(&c, keyDir, rateOf, rateFraction); err != nil {
		return exitCode(err, stderr)
	}
	if !quiet {
		c.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				c.TTY = true
			}
		}
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return exitCode(err, stderr)
	}
	results, outs := []*Result{nil}, []string{out}
	if c.Pair != nil {
		results, outs = []*Result{nil, nil}, []string{out, *pairOut}
		results[0], results[1], err = RunPair(ctx, c)
	} else {
		results[0], err = Run(ctx, c)
	}
	stopProfile()
	if err != nil {
		return exitCode(err, stderr)
	}
	for i, res := range results {
		if i > 0 {
			fprintln(stdout)
		}
		PrintResult(stdout, res)
		if outs[i] != "" {
			if err := writeJSON(outs[i], res); err != nil {
				return exitCode(err, stderr)
			}
		}
	}
	for _, res := range results {
		if res.OK == 0 {
			return exitCode(fmt.Errorf("no request to %s succeeded", res.URL), stderr)
		}
	}
	return 0
}

// redactArgs hides the value of -client-secret, so that results and
// reports can be shared.
func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "client-secret" {
			continue
		}
		if hasValue {
			out[i] = a[:strings.IndexByte(a, '=')+1] + "REDACTED"
		} else if i+1 < len(out) {
			out[i+1] = "REDACTED"
		}
	}
	return out
}

// completeRunConfig applies the flags that need files, and validates.
func completeRunConfig(c *Config, keyDir, rateOf string, rateFraction float64) error {
	if keyDir != "" {
		k, err := LoadKeys(keyDir)
		if err != nil {
			return usageError{err: fmt.Errorf("-keys: %w", err)}
		}
		c.Keys = k
	}
	if rateOf != "" {
		if c.Rate != 0 {
			return usageError{err: errors.New("-rate and -rate-of exclude each other")}
		}
		if !(rateFraction > 0) {
			return usageError{err: fmt.Errorf("-rate-fraction %v: want > 0", rateFraction)}
		}
		peak, err := medianThroughput(strings.Split(rateOf, ","))
		if err != nil {
			return usageError{err: fmt.Errorf("-rate-of: %w", err)}
		}
		c.Rate = peak * rateFraction
	}
	// Validate first: a zero given on the command line is an error, not "the default".
	if err := c.Validate(); err != nil {
		return usageError{err: err}
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return usageError{err: err}
	}
	return nil
}

// medianThroughput is the median throughput of the result files at paths
// (the mean of the middle two for an even count). One closed-loop run of a
// server swings by 15% or more on a shared machine, so a rate taken from the
// median of several is steadier than one taken from any single run.
func medianThroughput(paths []string) (float64, error) {
	var tps []float64
	for _, p := range paths {
		if p == "" {
			return 0, errors.New("an empty file name in the list")
		}
		r, err := ReadResult(p)
		if err != nil {
			return 0, err
		}
		if r.Throughput <= 0 {
			return 0, fmt.Errorf("%s: no throughput in it", p)
		}
		tps = append(tps, r.Throughput)
	}
	return median(tps), nil
}

// ReadResult reads a result JSON file written by -out.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// PrintResult writes the human-readable summary of r.
func PrintResult(w io.Writer, r *Result) {
	mode := fmt.Sprintf("closed loop, %d connections", r.Connections)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f req/s, %d connections", r.Rate, r.Connections)
	}
	fprintf(w, "\n%s %s against %s (%s), %s, %.1fs\n", r.Scenario, r.Alg, r.Name, r.URL, mode, r.Elapsed)
	if r.PairedWith != "" {
		fprintf(w, "in one window with %s, taking turns of %v (the time above is this server's share)\n",
			r.PairedWith, time.Duration(r.SliceSeconds*float64(time.Second)).Round(time.Millisecond))
	}
	if r.StoppedEarly != "" {
		fprintf(w, "stopped early: %s\n", r.StoppedEarly)
	}
	fprintf(w, "%d requests, %d ok, %.0f req/s; tokens %d bytes\n\n", r.Requests, r.OK, r.Throughput, r.TokenBytes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fprintln(tw, "latency µs\tcount\tp50\tp90\tp99\tp99.9\tmax\tmean\t")
	row := func(name string, l Latency) {
		fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	}
	row("all", r.Latency)
	if len(r.Classes) > 1 {
		for _, k := range sortedKeys(r.Classes) {
			row(k, r.Classes[k].Latency)
		}
	}
	if r.ServiceTime != nil {
		row("service time", *r.ServiceTime)
		row("send lag", *r.SendLag)
	}
	if rv := r.Revocation; rv != nil {
		row("POST /revoke", rv.Revoke)
		row("revoked→inactive", rv.Visible)
	}
	_ = tw.Flush()
	errs := r.Errors
	if r.Revocation != nil && len(r.Revocation.Errors) > 0 {
		errs = map[string]int64{}
		for k, v := range r.Errors {
			errs[k] = v
		}
		for k, v := range r.Revocation.Errors {
			errs["revoke: "+k] += v
		}
	}
	if len(errs) == 0 {
		fprintln(w, "\nerrors: none")
	} else {
		fprintln(w, "\nerrors:")
		for _, k := range sortedKeys(errs) {
			fprintf(w, "  %-32s %d\n", k, errs[k])
		}
	}
	if wr := r.Warm; wr != nil {
		fprintf(w, "warm: %d tokens in %.1fs, %d errors", wr.Requests, wr.Elapsed, countErrors(wr.Errors))
		if wr.RSSAfter > 0 {
			fprintf(w, "; server RSS %.1f → %.1f MiB, %.0f bytes per token", mib(wr.RSSBefore), mib(wr.RSSAfter), wr.BytesPerToken)
		}
		fprintln(w)
	}
	if s := r.Server; s != nil {
		fprintf(w, "server: pid %d, %.2f cores busy, %.1f µs CPU per request, RSS %.1f MiB\n", s.PID, s.CPUUtil, s.CPUPerReq, mib(s.RSS))
	}
	if r.Client.Busy > 0 {
		fprintf(w, "client: %s engine, busy %.0f%% of the time on requests (it polls the rest of the time, so its core shows %.2f cores busy)\n", r.Engine, 100*r.Client.Busy, r.Client.CPUUtil)
	} else {
		fprintf(w, "client: %.2f cores busy\n", r.Client.CPUUtil)
	}
	if r.MetricsErr != "" {
		fprintf(w, "metrics: %s\n", r.MetricsErr)
	}
	for _, k := range sortedKeys(r.Histograms) {
		h := r.Histograms[k]
		fprintf(w, "server histogram %s: %.0f observations, p50 ≤ %g, p99 ≤ %g\n", k, h.Count, h.P50Le, h.P99Le)
	}
}

// fprint, fprintf and fprintln write human output (the terminal, a log):
// a failed write there is not worth failing a run for.
func fprint(w io.Writer, a ...any)                 { _, _ = fmt.Fprint(w, a...) }
func fprintf(w io.Writer, format string, a ...any) { _, _ = fmt.Fprintf(w, format, a...) }
func fprintln(w io.Writer, a ...any)               { _, _ = fmt.Fprintln(w, a...) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func mainInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("introspect-bench init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`directory` to write keys.json (private, mode 0600), jwks.json and introspectd.yaml into (required)")
	issuer := fs.String("issuer", DefaultIssuer, "issuer (iss) of the bench tokens")
	var sc ServerConfig
	fs.StringVar(&sc.Listen, "listen", "127.0.0.1:8080", "listen `address` written into introspectd.yaml")
	fs.StringVar(&sc.ClientID, "client-id", "bench", "caller id written into introspectd.yaml")
	fs.StringVar(&sc.ClientSecret, "client-secret", "bench-secret", "caller secret written into introspectd.yaml")
	fs.Int64Var(&sc.CacheBytes, "cache-bytes", 512<<20, "cache.max_bytes written into introspectd.yaml")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{err: errors.New("init: -dir is required")}
	}
	if _, _, err := net.SplitHostPort(sc.Listen); err != nil {
		return usageError{err: fmt.Errorf("init: -listen %q: %w", sc.Listen, err)}
	}
	k, err := GenerateKeys(*issuer)
	if err != nil {
		return err
	}
	if err := WriteKeyDir(*dir, k, sc); err != nil {
		return err
	}
	fprintf(stdout, "wrote %s, %s and %s in %s\nstart the service:  introspectd -config %s\nthen load it:       introspect-bench -keys %s -url http://%s -client-id %s -client-secret %s\n",
		PrivateKeysFile, JWKSFile, ConfigFile, *dir, filepath.Join(*dir, ConfigFile), *dir, sc.Listen, sc.ClientID, sc.ClientSecret)
	return nil
}

func mainServeBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("introspect-bench serve-baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c BaselineConfig
	fs.StringVar(&c.Kind, "kind", "", "`baseline`: fixed (fasthttp, pre-encoded answer: the HTTP ceiling) or nethttp-jwt (net/http + golang-jwt verifying every request)")
	listen := fs.String("listen", "127.0.0.1:0", "listen `address`; port 0 picks one (printed on stdout)")
	keyDir := fs.String("keys", "", "nethttp-jwt: key `directory` written by init (its jwks.json and issuer)")
	fs.StringVar(&c.ClientID, "client-id", "", "nethttp-jwt: require this HTTP Basic caller id on /introspect (empty: none)")
	fs.StringVar(&c.ClientSecret, "client-secret", "", "nethttp-jwt: the caller secret")
	fs.IntVar(&c.TokenSize, "token-size", 800, "fixed: answer as for a token of about this many `bytes`")
	fs.DurationVar(&c.Work, "work", 0, "fixed: spend this much CPU on each request before answering, e.g. the `duration` cpu-gap prints: the CPU-matched ceiling (0: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if c.Work < 0 || (c.Work > 0 && c.Kind != "fixed") {
		return usageError{err: fmt.Errorf("serve-baseline: -work %v: want a duration of 0 or more, with -kind fixed", c.Work)}
	}
	switch c.Kind {
	case "fixed":
	case "nethttp-jwt":
		if *keyDir == "" {
			return usageError{err: errors.New("serve-baseline: -kind nethttp-jwt needs -keys DIR")}
		}
		k, err := LoadKeys(*keyDir)
		if err != nil {
			return usageError{err: fmt.Errorf("-keys: %w", err)}
		}
		c.Issuer, c.JWKSFile = k.Issuer, filepath.Join(*keyDir, JWKSFile)
	default:
		return usageError{err: fmt.Errorf("serve-baseline: -kind %q: want one of %s", c.Kind, strings.Join(BaselineKinds, ", "))}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fprintf(stdout, "%s baseline listening on http://%s\n", c.Kind, ln.Addr())
	return ServeBaseline(ctx, ln, c)
}

func mainCPUGap(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("introspect-bench cpu-gap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := fs.String("a", "", "comma-separated result `files` of the costlier server")
	b := fs.String("b", "", "comma-separated result `files` of the server to compare it with")
	work := fs.Duration("work", 0, "with -probe: the `duration` of work the fixed server of the probe spent per request")
	probe := fs.String("probe", "", "result `files` of the fixed server spending -work per request; then print the work that makes it as much costlier than the plain one as -a is than -b")
	probeBase := fs.String("probe-base", "", "result `files` of the plain fixed server paired with -probe")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *a == "" || *b == "" {
		return usageError{err: errors.New("cpu-gap: -a and -b are required")}
	}
	if (*probe != "" || *probeBase != "" || *work != 0) && (*probe == "" || *probeBase == "" || *work <= 0) {
		return usageError{err: errors.New("cpu-gap: -work, -probe and -probe-base go together")}
	}
	gap, err := CPUGap(strings.Split(*a, ","), strings.Split(*b, ","))
	if err != nil {
		return err
	}
	if *probe != "" {
		got, err := CPUGap(strings.Split(*probe, ","), strings.Split(*probeBase, ","))
		if err != nil {
			return err
		}
		gap = ScaleWork(*work, gap, got)
	}
	fprintln(stdout, gap)
	return nil
}

// CPUGap returns how much more server CPU per request, on average, the runs
// in files a took than those in files b, rounded to 10 ns and 0 when a took
// less. Every run must have read its server's CPU.
func CPUGap(a, b []string) (time.Duration, error) {
	mean := func(paths []string) (float64, error) {
		var sum float64
		for _, p := range paths {
			r, err := ReadResult(p)
			if err != nil {
				return 0, err
			}
			if r.Server == nil || r.Server.CPUPerReq <= 0 {
				return 0, fmt.Errorf("%s: no server CPU per request (run with -server-pid)", p)
			}
			sum += r.Server.CPUPerReq
		}
		return sum / float64(len(paths)), nil
	}
	ma, err := mean(a)
	if err != nil {
		return 0, err
	}
	mb, err := mean(b)
	if err != nil {
		return 0, err
	}
	return max(time.Duration((ma-mb)*1e3)*time.Nanosecond, 0).Round(10 * time.Nanosecond), nil
}

// ScaleWork returns the work per request that makes the fixed server gap
// costlier per request, given that work made it got costlier in a probe.
// In the open loop, work costs a server less than itself per request,
// because a busier server serves more requests per wake-up: on 2026-12-06,
// by hand, 1.2 µs of work added 0.5 µs per request and 2.1 µs added 0.7
// µs. It assumes the two in proportion, and stays within a factor of 4 of
// work, so that one noisy probe cannot send it far.
func ScaleWork(work, gap, got time.Duration) time.Duration {
	w := 4 * work
	if got > 0 {
		w = time.Duration(float64(work) * float64(gap) / float64(got))
	}
	return min(max(w, work/4), 4*work).Round(10 * time.Nanosecond)
}

func mainReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("introspect-bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "`directory` of result JSON files, raw-verify benchmark output (*.bench.txt) and commands.txt (required)")
	out := fs.String("out", "", "Markdown `file` to write (required; - for stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return usageError{err: errors.New("report: -in and -out are required")}
	}
	md, err := BuildReport(*in, time.Now())
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err = io.WriteString(stdout, md)
		return err
	}
	return os.WriteFile(*out, []byte(md), 0o644)
}
