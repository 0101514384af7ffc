package metrics_test

// Tests of dashboards/: the Grafana dashboard, the Prometheus rules and
// their promtool unit tests, checked against the metrics a real introspectd
// serves after a short workload, and scraped by a real Prometheus.
//
// promtool and prometheus come from Debian's prometheus package, which
// `make test` installs (dashboards/install-prometheus.sh). Without them
// these tests fail rather than skip: the alerts are only as good as their
// tests.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/introspectd/introspectd/internal/config"
	"github.com/introspectd/introspectd/internal/devissuer"
	"github.com/introspectd/introspectd/internal/service"
	"github.com/introspectd/introspectd/introspect"
)

var (
	dashboardsDir = filepath.Join("..", "..", "dashboards")
	dashboardFile = filepath.Join(dashboardsDir, "introspectd.json")
	rulesFile     = filepath.Join(dashboardsDir, "rules", "introspectd.rules.yml")
	rulesTestFile = filepath.Join(dashboardsDir, "rules", "introspectd.rules.test.yml")
	promConfig    = filepath.Join(dashboardsDir, "prometheus.yml")
)

// waitLimit bounds every wait on a process or a server in these tests.
const waitLimit = 30 * time.Second

// prometheusSynthetic are series that Prometheus itself makes, not the
// service: rules and dashboards may use them.
var prometheusSynthetic = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// tool finds a binary of Debian's prometheus package, failing the test
// with what to do when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not on PATH: run `make test` (it installs Debian's prometheus package via "+
			"dashboards/install-prometheus.sh), or run `bash dashboards/install-prometheus.sh` once", name)
	}
	return p
}

// run runs a tool with a bounded time and returns its combined output and
// error.
func run(t *testing.T, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// --- the dashboard -------------------------------------------------------

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string      `json:"name"`
			Datasource *datasource `json:"datasource"`
			Expr       string      `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Panels  []panel                   `json:"panels"` // a collapsed row's panels
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: not valid JSON: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardExprs returns every PromQL expression of the dashboard, keyed
// by where it is.
func dashboardExprs(d dashboard) map[string]string {
	exprs := map[string]string{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			exprs[fmt.Sprintf("annotation %q", a.Name)] = a.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			exprs[fmt.Sprintf("variable %q", v.Name)] = v.Definition
		}
	}
	return exprs
}

const dsVar = "${datasource}"

func TestDashboardJSON(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both set (provisioning keys dashboards by uid)", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
	}

	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	if i, ok := vars["datasource"]; !ok {
		t.Error("no `datasource` template variable")
	} else if v := d.Templating.List[i]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("datasource variable: type %q query %s, want type datasource, query \"prometheus\"", v.Type, v.Query)
	}
	if i, ok := vars["instance"]; !ok {
		t.Error("no `instance` template variable")
	} else {
		v := d.Templating.List[i]
		if want := "label_values(introspectd_build_info, instance)"; v.Definition != want || !strings.Contains(string(v.Query), want) {
			t.Errorf("instance variable: definition %q query %s, want %q", v.Definition, v.Query, want)
		}
		if !v.Multi || !v.IncludeAll {
			t.Errorf("instance variable: multi %v includeAll %v, want both", v.Multi, v.IncludeAll)
		}
		if v.Datasource == nil || v.Datasource.UID != dsVar {
			t.Errorf("instance variable: datasource %+v, want uid %s", v.Datasource, dsVar)
		}
	}

	ids := map[int]string{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel %q: id %d already used by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: no gridPos", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dsVar || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want {prometheus %s}", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource != nil && tg.Datasource.UID != dsVar {
				t.Errorf("panel %q target %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, dsVar)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty expr", p.Title, tg.RefID)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q target %s: %q does not filter on $instance", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" && (a.Datasource == nil || a.Datasource.UID != dsVar) {
			t.Errorf("annotation %q: datasource %+v, want uid %s", a.Name, a.Datasource, dsVar)
		}
	}
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}
	for where, expr := range dashboardExprs(d) {
		if _, err := selectorNames(expr); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
}

// --- PromQL ----------------------------------------------------------------

// grafanaVars stand in for Grafana's variables so that the parser sees
// PromQL: ranges become a duration, others a label value.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
	"${instance}", "placeholder", "$instance", "placeholder",
	"${datasource}", "placeholder", "$datasource", "placeholder",
)

var promql = parser.NewParser(parser.Options{})

// selectorNames parses expr and returns the metric names its vector
// selectors (plain and inside range selectors) read.
func selectorNames(expr string) ([]string, error) {
	q := grafanaVars.Replace(expr)
	if strings.Contains(q, "$") {
		return nil, fmt.Errorf("%q: a Grafana variable this test does not know; add it to grafanaVars", expr)
	}
	if strings.HasPrefix(q, "label_values(") {
		// Grafana's variable query: label_values(<selector>, <label>).
		sel, _, ok := strings.Cut(strings.TrimPrefix(q, "label_values("), ",")
		if !ok {
			return nil, fmt.Errorf("%q: want label_values(selector, label)", expr)
		}
		q = sel
	}
	e, err := promql.ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			err = fmt.Errorf("%q: a selector without a metric name", expr)
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// --- the rules -------------------------------------------------------------

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// wantAlerts are the alerts the operators asked for (issue 4).
var wantAlerts = []string{
	"IntrospectdHighLatencyP99", "IntrospectdHitRatioDrop", "IntrospectdRevocationLag", "IntrospectdNotReady",
	"IntrospectdJWKSStale", "IntrospectdJWKSFetchFailing", "IntrospectdNATSDisconnected",
	"IntrospectdMalformedRevocationEvents",
}

func TestRules(t *testing.T) {
	rf := loadRules(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, k := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			for _, part := range []string{"Means:", "Check:", "Do:"} {
				if !strings.Contains(r.Annotations["runbook"], part) {
					t.Errorf("%s: runbook does not say %q (what it means, what to check, what to do)", r.Alert, part)
				}
			}
		}
	}
	for _, a := range wantAlerts {
		if !alerts[a] {
			t.Errorf("alert %s missing from %s", a, rulesFile)
		}
	}

	t.Run("promtool check rules", func(t *testing.T) {
		out, err := run(t, nil, "promtool", "check", "rules", rulesFile)
		if err != nil {
			t.Fatalf("promtool check rules: %v\n%s", err, out)
		}
		t.Logf("promtool check rules:\n%s", out)
	})

	t.Run("promtool test rules", func(t *testing.T) {
		out, err := run(t, nil, "promtool", "test", "rules", rulesTestFile)
		if err != nil {
			t.Fatalf("promtool test rules: %v\n%s", err, out)
		}
		if !strings.Contains(out, "SUCCESS") {
			t.Fatalf("promtool test rules did not say SUCCESS:\n%s", out)
		}
	})

	t.Run("every alert fires and stays quiet", func(t *testing.T) {
		b, err := os.ReadFile(rulesTestFile)
		if err != nil {
			t.Fatal(err)
		}
		var tf struct {
			Tests []struct {
				Name       string `yaml:"name"`
				AlertTests []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", rulesTestFile, err)
		}
		fires, quiet := map[string]bool{}, map[string]bool{}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertTests {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname] = true
				} else {
					quiet[at.Alertname] = true
				}
			}
		}
		for _, a := range slices.Sorted(maps.Keys(alerts)) {
			if !fires[a] {
				t.Errorf("%s: no promtool case where it fires", a)
			}
			if !quiet[a] {
				t.Errorf("%s: no promtool case where it does not fire", a)
			}
		}
	})

	t.Run("promtool check config", func(t *testing.T) {
		// The example points at /etc/prometheus; check it against ours.
		b, err := os.ReadFile(promConfig)
		if err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(rulesFile)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cfg := strings.ReplaceAll(string(b), "/etc/prometheus/rules/introspectd.rules.yml", abs)
		cfg = strings.ReplaceAll(cfg, "/etc/prometheus/targets/", dir+"/")
		p := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, nil, "promtool", "check", "config", p)
		if err != nil {
			t.Fatalf("promtool check config %s: %v\n%s", promConfig, err, out)
		}
	})
}

// --- a real service --------------------------------------------------------

const (
	clientID     = "gateway"
	clientSecret = "gateway-secret"
)

// node is a running introspectd with an embedded NATS and a dev issuer.
type node struct {
	svc  *service.Service
	base string
	dev  *devissuer.Dev
	hc   *http.Client
}

func startNode(t *testing.T) *node {
	t.Helper()
	dev, err := devissuer.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.NATS.DataDir = t.TempDir()
	cfg.Clients = []config.Client{{ID: clientID, Secret: clientSecret}}
	cfg.Routes = []config.Route{{PathPrefix: "/admin", Scopes: []string{"admin"}}}
	svc, err := service.Start(context.Background(), cfg, service.Options{
		Logger:  slog.New(slog.DiscardHandler),
		Issuers: []introspect.IssuerConfig{dev.IssuerConfig()},
	})
	if err != nil {
		t.Fatalf("service.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	n := &node{svc: svc, base: "http://" + svc.Addr(), dev: dev, hc: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(n.hc.CloseIdleConnections)
	// /introspect opens a moment after /readyz turns 200 (the service
	// notices the replay on its own tick): wait for it, with a request
	// that the workload's counts do not care about.
	waitFor(t, "/introspect to answer", func() bool {
		st, _ := n.do(t, "POST", "/introspect", url.Values{"token": {"warm-up"}}, map[string]string{"Authorization": "Basic " + basic(clientID, clientSecret)})
		return st == 200
	})
	return n
}

func (n *node) mint(t *testing.T, scope string) string {
	t.Helper()
	tok, err := n.dev.Mint(devissuer.Claims{Sub: "alice", ClientID: "web", Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request and returns the status and body.
func (n *node) do(t *testing.T, method, path string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, n.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *node) introspect(t *testing.T, tok string) (int, string) {
	t.Helper()
	return n.do(t, "POST", "/introspect", url.Values{"token": {tok}},
		map[string]string{"Authorization": "Basic " + basic(clientID, clientSecret)})
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// workload exercises every endpoint and the main outcomes.
func (n *node) workload(t *testing.T) {
	t.Helper()
	active, revoked := n.mint(t, "read"), n.mint(t, "read")
	check := func(what string, gotStatus int, gotBody string, wantStatus int, wantPrefix string) {
		t.Helper()
		if gotStatus != wantStatus || !strings.HasPrefix(gotBody, wantPrefix) {
			t.Fatalf("%s: got %d %q, want %d %q…", what, gotStatus, gotBody, wantStatus, wantPrefix)
		}
	}
	for range 3 { // the first one verifies, the others hit the cache
		st, b := n.introspect(t, active)
		check("introspect active", st, b, 200, `{"active":true`)
	}
	st, b := n.introspect(t, "not-a-jwt")
	check("introspect garbage", st, b, 200, `{"active":false}`)
	st, b = n.introspect(t, "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	check("introspect unknown issuer", st, b, 200, `{"active":false}`)
	st, b = n.do(t, "POST", "/introspect", url.Values{"x": {"y"}}, map[string]string{"Authorization": "Basic " + basic(clientID, clientSecret)})
	check("introspect without token", st, b, 400, `{"error":"invalid_request"`)
	st, b = n.do(t, "POST", "/introspect", url.Values{"token": {active}}, nil)
	check("introspect without client", st, b, 401, `{"error":"invalid_client"`)

	st, b = n.do(t, "GET", "/authz", nil, map[string]string{"Authorization": "Bearer " + active, "X-Forwarded-Uri": "/orders"})
	check("authz allowed", st, b, 200, "")
	st, b = n.do(t, "GET", "/authz", nil, map[string]string{"Authorization": "Bearer " + active, "X-Forwarded-Uri": "/admin/users"})
	check("authz forbidden", st, b, 403, "")
	st, b = n.do(t, "GET", "/authz", nil, nil)
	check("authz without token", st, b, 401, "")

	st, b = n.introspect(t, revoked)
	check("introspect before revoke", st, b, 200, `{"active":true`)
	st, b = n.do(t, "POST", "/revoke", url.Values{"token": {revoked}}, map[string]string{"Authorization": "Basic " + basic(clientID, clientSecret)})
	check("revoke", st, b, 200, "")
	waitFor(t, "the revoked token to turn inactive", func() bool {
		_, b := n.introspect(t, revoked)
		return b == `{"active":false}`
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) scrape(t *testing.T) []byte {
	t.Helper()
	resp, err := n.hc.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return b
}

func parseMetrics(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// seriesNames are the names a family's samples have in PromQL.
func seriesNames(f *dto.MetricFamily) []string {
	n := f.GetName()
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{n + "_bucket", n + "_sum", n + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{n, n + "_sum", n + "_count"}
	}
	return []string{n}
}

// value returns the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAgainstDashboards runs the real service, then checks its
// /metrics against the dashboard and the rules, lints it with promtool,
// and lets a real Prometheus scrape it with the rules loaded.
func TestMetricsAgainstDashboards(t *testing.T) {
	n := startNode(t)
	n.workload(t)
	// POST /revoke applies the event on this node as soon as JetStream
	// acknowledges it; the consumer, which the applied counters count,
	// receives it a moment later.
	var text []byte
	waitFor(t, "the revocation event to come back through the consumer", func() bool {
		text = n.scrape(t)
		v, ok := value(parseMetrics(t, text), "introspectd_revocation_applied_sequence", nil)
		return ok && v > 0
	})
	fams := parseMetrics(t, text)

	t.Run("workload is counted", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			labels map[string]string
		}{
			{"introspectd_requests_total", map[string]string{"endpoint": "introspect", "outcome": "active"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "introspect", "outcome": "inactive"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "introspect", "outcome": "invalid_request"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "introspect", "outcome": "invalid_client"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "authz", "outcome": "allowed"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "authz", "outcome": "forbidden"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "authz", "outcome": "unauthorized"}},
			{"introspectd_requests_total", map[string]string{"endpoint": "revoke", "outcome": "revoked"}},
			{"introspectd_request_duration_seconds", map[string]string{"endpoint": "introspect"}},
			{"introspectd_cache_hits_total", map[string]string{"cache": "verified"}},
			{"introspectd_cache_misses_total", map[string]string{"cache": "verified"}},
			{"introspectd_verifications_total", map[string]string{"alg": "ES256"}},
			{"introspectd_verification_failures_total", map[string]string{"reason": "malformed"}},
			{"introspectd_verification_failures_total", map[string]string{"reason": "revoked"}},
			{"introspectd_revocation_events_applied_total", map[string]string{"kind": "token"}},
			{"introspectd_revocation_denylist_entries", map[string]string{"kind": "token"}},
			{"introspectd_revocation_applied_sequence", nil},
			{"introspectd_ready", nil},
			{"introspectd_nats_connected", nil},
			{"introspectd_build_info", nil},
		} {
			v, ok := value(fams, c.name, c.labels)
			if !ok || v <= 0 {
				t.Errorf("%s%v = %v (present: %v), want > 0 after the workload", c.name, c.labels, v, ok)
			}
		}
	})

	t.Run("every metric the dashboard and rules use exists", func(t *testing.T) {
		have := maps.Clone(prometheusSynthetic)
		for _, f := range fams {
			for _, s := range seriesNames(f) {
				have[s] = true
			}
		}
		rf := loadRules(t)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					have[r.Record] = true
				}
			}
		}
		uses := dashboardExprs(loadDashboard(t))
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				uses[fmt.Sprintf("rule %s%s in group %s", r.Record, r.Alert, g.Name)] = r.Expr
			}
		}
		used := map[string]bool{}
		for _, where := range slices.Sorted(maps.Keys(uses)) {
			names, err := selectorNames(uses[where])
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			for _, name := range names {
				used[name] = true
				if !have[name] {
					t.Errorf("%s uses %s, which the service does not export (nor a recording rule define)", where, name)
				}
			}
		}
		var unused []string
		for name, f := range fams {
			if strings.HasPrefix(name, "introspectd_") && !slices.ContainsFunc(seriesNames(f), func(s string) bool { return used[s] }) {
				unused = append(unused, name)
			}
		}
		slices.Sort(unused)
		if len(unused) > 0 {
			t.Logf("exported but on no dashboard panel or rule: %v", unused)
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		out, err := run(t, text, "promtool", "check", "metrics")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("promtool check metrics on /metrics: %v\n%s", err, out)
		}
	})

	t.Run("prometheus scrapes it", func(t *testing.T) {
		prometheusScrapes(t, n)
	})
}

// --- a real Prometheus ----------------------------------------------------

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// promAPI reads one Prometheus HTTP API answer into data.
func promAPI(hc *http.Client, base, path string, data any) error {
	resp, err := hc.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %d: %w", path, resp.StatusCode, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

type vectorResult []struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func prometheusScrapes(t *testing.T, n *node) {
	bin := tool(t, "prometheus")
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: introspectd
    static_configs:
      - targets: [%q]
`, rules, n.svc.Addr())
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	var out syncBuffer
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nprometheus output:\n%s", fmt.Sprintf(format, args...), out.String())
	}

	// Keep traffic flowing while Prometheus scrapes, so that the request
	// rate it records is not zero. Bounded by the waits below.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tok, err := n.dev.Mint(devissuer.Claims{Sub: "bob"})
		if err != nil {
			return
		}
		form := url.Values{"token": {tok}}.Encode()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			req, _ := http.NewRequest("POST", n.base+"/introspect", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientID, clientSecret)
			if resp, err := n.hc.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)

	base := "http://" + addr
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(waitLimit)
	wait := func(what string, cond func() (bool, string)) {
		t.Helper()
		last := ""
		for {
			select {
			case <-exited:
				fail("prometheus exited while waiting for %s", what)
			default:
			}
			ok, why := cond()
			if ok {
				return
			}
			if why != "" {
				last = why
			}
			if time.Now().After(deadline) {
				fail("timed out after %s waiting for %s (last: %s)", waitLimit, what, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	wait("the introspectd target to be up", func() (bool, string) {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := promAPI(hc, base, "/api/v1/targets", &data); err != nil {
			return false, err.Error()
		}
		if len(data.ActiveTargets) == 0 {
			return false, "no active target"
		}
		tg := data.ActiveTargets[0]
		if tg.Health == "up" {
			t.Logf("prometheus: target %s is up", tg.ScrapeURL)
			return true, ""
		}
		return false, fmt.Sprintf("target %s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError)
	})

	query := func(q string) (vectorResult, error) {
		var data struct {
			ResultType string       `json:"resultType"`
			Result     vectorResult `json:"result"`
		}
		err := promAPI(hc, base, "/api/v1/query?query="+url.QueryEscape(q), &data)
		return data.Result, err
	}
	// A recording rule yields a value: the request rate of /introspect
	// answered active, which the traffic above keeps above zero.
	const rec = `introspectd:request_rate:rate1m{endpoint="introspect",outcome="active"}`
	wait("recording rule "+rec+" to yield a value above 0", func() (bool, string) {
		res, err := query(rec + " > 0")
		if err != nil {
			return false, err.Error()
		}
		if len(res) == 0 {
			return false, "no sample yet"
		}
		t.Logf("prometheus: %s = %v (instance %s)", rec, res[0].Value[1], res[0].Metric["instance"])
		return true, ""
	})
	for _, q := range []string{"introspectd_ready", `introspectd:hit_ratio:rate5m{cache="verified"}`, "introspectd:revocation_lag:events"} {
		wait(q, func() (bool, string) {
			res, err := query(q)
			if err != nil {
				return false, err.Error()
			}
			if len(res) == 0 {
				return false, "no sample yet"
			}
			t.Logf("prometheus: %s = %v", q, res[0].Value[1])
			return true, ""
		})
	}
	if res, err := query("introspectd_ready"); err != nil || len(res) != 1 || res[0].Value[1] != "1" {
		t.Errorf("prometheus: introspectd_ready = %v (%v), want 1", res, err)
	}

	// Every rule evaluated without error, and no alert fires on a healthy node.
	wait("every rule to be evaluated", func() (bool, string) {
		var data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Type      string `json:"type"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					State     string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := promAPI(hc, base, "/api/v1/rules", &data); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				n++
				switch {
				case r.Health == "err":
					fail("rule %s in group %s: %s", r.Name, g.Name, r.LastError)
				case r.Health != "ok":
					return false, fmt.Sprintf("rule %s: health %q", r.Name, r.Health)
				case r.Type == "alerting" && r.State != "inactive":
					t.Errorf("alert %s is %s on a healthy node", r.Name, r.State)
				}
			}
		}
		if n == 0 {
			return false, "no rules loaded"
		}
		t.Logf("prometheus: %d rules evaluated without error", n)
		return true, ""
	})
}
