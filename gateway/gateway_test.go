//go:build linux

package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Bounds of every wait, so that a stuck process fails the test instead of
// hanging it.
const (
	readyTimeout   = 30 * time.Second // introspectd replaying, a gateway starting
	stopTimeout    = 10 * time.Second // SIGTERM until SIGKILL
	requestTimeout = 10 * time.Second // one request through a gateway
	startAttempts  = 3                // a free port taken by someone else meanwhile
)

// The fixed names in introspectd's config and the tokens.
const (
	issuerURL = "https://issuer.gateway.test/"
	audience  = "orders-api"
)

// Challenges of the /authz contract (CONTRACT.md, RFC 6750 §3).
const (
	challengeMissing = `Bearer realm="introspect"`
	challengeInvalid = `Bearer realm="introspect", error="invalid_token"`
)

func challengeScope(scope string) string {
	return `Bearer realm="introspect", error="insufficient_scope", scope="` + scope + `"`
}

// confData fills the templates in testdata: from the test, or with the
// example addresses of docs/gateways.md.
type confData struct {
	Listen   string // where the gateway listens
	Bind     string // Caddy: the interface to bind; empty: all
	Authz    string // host:port of introspectd
	Upstream string // host:port of the protected application
	Lua      string // HAProxy: path of introspectd-authz.lua
	Dir      string // test harness files only: the gateway's folder
}

// Example addresses in docs/gateways.md.
const (
	docAuthz    = "127.0.0.1:8080"
	docUpstream = "127.0.0.1:3000"
)

// gatewaySpec says how to configure and run one gateway.
type gatewaySpec struct {
	name    string
	command string // looked up in PATH, /usr/sbin and /usr/bin
	// templates maps a template in testdata to the file it makes in the
	// gateway's folder; docTemplate is the one docs/gateways.md shows.
	templates   map[string]string
	docTemplate string
	docData     confData
	copies      []string // testdata files copied as they are (and shown in the docs)
	listen      func(d *confData, addr string)
	args        func(dir string) []string
	env         func(dir string) []string
}

var gateways = []gatewaySpec{
	{
		name:    "nginx",
		command: "nginx",
		templates: map[string]string{
			"nginx.conf.tmpl":        "nginx.conf",
			"introspectd.nginx.tmpl": "introspectd.conf",
		},
		docTemplate: "introspectd.nginx.tmpl",
		docData:     confData{Listen: "80", Authz: docAuthz, Upstream: docUpstream},
		listen:      func(d *confData, addr string) { d.Listen = addr },
		args: func(dir string) []string {
			return []string{"-p", dir + "/", "-c", "nginx.conf", "-e", filepath.Join(dir, "nginx-error.log"), "-g", "daemon off;"}
		},
	},
	{
		name:    "caddy",
		command: "caddy",
		templates: map[string]string{
			"Caddyfile.tmpl":         "Caddyfile",
			"introspectd.caddy.tmpl": "introspectd.caddy",
		},
		docTemplate: "introspectd.caddy.tmpl",
		docData:     confData{Listen: ":80", Authz: docAuthz, Upstream: docUpstream},
		listen: func(d *confData, addr string) {
			d.Listen = "http://" + addr
			d.Bind = "127.0.0.1"
		},
		args: func(dir string) []string {
			return []string{"run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile"}
		},
		// Caddy keeps state under $HOME / XDG folders: keep it in the test's.
		env: func(dir string) []string {
			return []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
		},
	},
	{
		name:    "haproxy",
		command: "haproxy",
		templates: map[string]string{
			"introspectd.haproxy.tmpl": "haproxy.cfg",
		},
		docTemplate: "introspectd.haproxy.tmpl",
		docData:     confData{Listen: ":80", Authz: docAuthz, Upstream: docUpstream, Lua: "/etc/haproxy/introspectd-authz.lua"},
		copies:      []string{"introspectd-authz.lua"},
		listen: func(d *confData, addr string) {
			d.Listen = addr
			d.Lua = filepath.Join(d.Dir, "introspectd-authz.lua")
		},
		args: func(dir string) []string { return []string{"-db", "-f", filepath.Join(dir, "haproxy.cfg")} },
	},
}

// binDir holds the introspectd binary built for this run.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gateway-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return m.Run()
}

var buildIntrospectd = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the module")
	}
	bin := filepath.Join(binDir, "introspectd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/introspectd")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/introspectd: %w\n%s", err, out)
	}
	return bin, nil
})

func TestGateways(t *testing.T) {
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			t.Parallel()
			testGateway(t, gw)
		})
	}
}

// testGateway puts gw between a client and an upstream, with introspectd
// deciding, and checks every answer of the /authz contract end to end.
func testGateway(t *testing.T, gw gatewaySpec) {
	bin := lookGateway(t, gw.command)
	idp := newIssuer(t, issuerURL)
	authz := startIntrospectd(t, idp)
	up := newUpstream(t)
	addr := startGateway(t, gw, bin, authz.addr, up.addr)
	base := "http://" + addr

	good := idp.token(t, claims{sub: "alice", clientID: "web-app", scope: "orders:read profile"})
	noClient := idp.token(t, claims{sub: "bob", scope: "orders:read"})
	expired := idp.token(t, claims{sub: "alice", clientID: "web-app", scope: "orders:read",
		iat: time.Now().Add(-2 * time.Hour), exp: time.Now().Add(-time.Hour)})
	stranger := newIssuer(t, issuerURL).token(t, claims{sub: "alice", clientID: "web-app", scope: "orders:read"})

	cases := []struct {
		name      string
		method    string
		path      string
		header    map[string]string
		status    int
		challenge string // the exact WWW-Authenticate; "" when none is expected
		// upstream, when set, says the request must reach the upstream
		// once and checks what the upstream saw.
		upstream func(t *testing.T, r seen)
	}{
		{
			name: "good token reaches upstream with identity", method: "GET", path: "/orders/42?page=2",
			header: map[string]string{
				"Authorization": "Bearer " + good,
				// Spoofed identity: the gateway must overwrite it.
				"X-Auth-Subject":   "mallory",
				"X-Auth-Client-Id": "evil-app",
				"X-Auth-Scope":     "admin",
			},
			status: http.StatusOK,
			upstream: func(t *testing.T, r seen) {
				if r.uri != "/orders/42?page=2" {
					t.Errorf("upstream got URI %q, want %q", r.uri, "/orders/42?page=2")
				}
				wantHeader(t, r.header, "X-Auth-Subject", "alice")
				wantHeader(t, r.header, "X-Auth-Client-Id", "web-app")
				wantHeader(t, r.header, "X-Auth-Scope", "orders:read profile")
			},
		},
		{
			name: "identity the token lacks is not the client's", method: "GET", path: "/orders/7",
			header: map[string]string{"Authorization": "Bearer " + noClient, "X-Auth-Client-Id": "evil-app"},
			status: http.StatusOK,
			upstream: func(t *testing.T, r seen) {
				wantHeader(t, r.header, "X-Auth-Subject", "bob")
				for _, v := range r.header.Values("X-Auth-Client-Id") {
					if v != "" {
						t.Errorf("upstream got X-Auth-Client-Id %q for a token without client_id, want none", v)
					}
				}
			},
		},
		{
			name: "no token", method: "GET", path: "/orders/42",
			status: http.StatusUnauthorized, challenge: challengeMissing,
		},
		{
			name: "spoofed identity without token", method: "GET", path: "/orders/42",
			header: map[string]string{"X-Auth-Subject": "alice", "X-Auth-Scope": "orders:read"},
			status: http.StatusUnauthorized, challenge: challengeMissing,
		},
		{
			name: "garbage token", method: "GET", path: "/orders/42",
			header: map[string]string{"Authorization": "Bearer not-a-token"},
			status: http.StatusUnauthorized, challenge: challengeInvalid,
		},
		{
			name: "token of an unknown key", method: "GET", path: "/orders/42",
			header: map[string]string{"Authorization": "Bearer " + stranger},
			status: http.StatusUnauthorized, challenge: challengeInvalid,
		},
		{
			name: "expired token", method: "GET", path: "/orders/42",
			header: map[string]string{"Authorization": "Bearer " + expired},
			status: http.StatusUnauthorized, challenge: challengeInvalid,
		},
		{
			name: "scope missing", method: "GET", path: "/admin/users",
			header: map[string]string{"Authorization": "Bearer " + good},
			status: http.StatusForbidden, challenge: challengeScope("admin"),
		},
		{
			name: "scope missing for the method", method: "DELETE", path: "/orders/42",
			header: map[string]string{"Authorization": "Bearer " + good},
			status: http.StatusForbidden, challenge: challengeScope("orders:write"),
		},
		{
			// introspectd reads the original request from these headers:
			// the gateway must set them itself, never pass the client's.
			name: "spoofed original URI", method: "GET", path: "/admin/users",
			header: map[string]string{
				"Authorization":   "Bearer " + good,
				"X-Forwarded-Uri": "/orders/1",
				"X-Original-URI":  "/orders/1",
			},
			status: http.StatusForbidden, challenge: challengeScope("admin"),
		},
		{
			name: "spoofed original method", method: "DELETE", path: "/orders/42",
			header: map[string]string{
				"Authorization":      "Bearer " + good,
				"X-Forwarded-Method": "GET",
				"X-Original-Method":  "GET",
			},
			status: http.StatusForbidden, challenge: challengeScope("orders:write"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up.take() // anything from before (the readiness probe never reaches it)
			resp, body := do(t, tc.method, base+tc.path, tc.header)
			if resp.StatusCode != tc.status {
				t.Errorf("got status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			got := resp.Header.Values("WWW-Authenticate")
			switch {
			case tc.challenge == "" && len(got) != 0:
				t.Errorf("got WWW-Authenticate %q, want none", got)
			case tc.challenge != "" && (len(got) != 1 || got[0] != tc.challenge):
				t.Errorf("got WWW-Authenticate %q, want exactly [%q]", got, tc.challenge)
			}
			reqs := up.take()
			if tc.upstream == nil {
				if len(reqs) != 0 {
					t.Fatalf("upstream called %d times, want never", len(reqs))
				}
				return
			}
			if body != "upstream ok" {
				t.Errorf("got body %q, want %q", body, "upstream ok")
			}
			if len(reqs) != 1 {
				t.Fatalf("upstream called %d times, want once", len(reqs))
			}
			tc.upstream(t, reqs[0])
		})
	}

	// Last, as it stops introspectd: the gateway must refuse, not let
	// requests through.
	t.Run("introspectd down", func(t *testing.T) {
		if err := authz.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop introspectd: %v", err)
		}
		up.take()
		for _, tok := range []string{good, noClient} {
			resp, body := do(t, "GET", base+"/orders/42", map[string]string{"Authorization": "Bearer " + tok})
			if resp.StatusCode < 500 || resp.StatusCode > 599 {
				t.Errorf("got status %d, want 5xx (body %q)", resp.StatusCode, body)
			} else {
				t.Logf("%s answered %d", gw.name, resp.StatusCode)
			}
		}
		if reqs := up.take(); len(reqs) != 0 {
			t.Fatalf("upstream called %d times with introspectd down, want never", len(reqs))
		}
	})
}

// TestDocsMatchTestdata keeps docs/gateways.md to the configurations that
// TestGateways runs: each is the testdata template filled with the docs'
// example addresses.
func TestDocsMatchTestdata(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "gateways.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range gateways {
		want := render(t, gw.docTemplate, gw.docData)
		if !bytes.Contains(docs, want) {
			t.Errorf("docs/gateways.md lacks the %s configuration the tests use (testdata/%s); it should contain:\n%s",
				gw.name, gw.docTemplate, want)
		}
		for _, name := range gw.copies {
			want, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(docs, want) {
				t.Errorf("docs/gateways.md lacks testdata/%s as it is", name)
			}
		}
	}
}

// lookGateway finds a gateway's binary. A missing one fails the test:
// these tests are part of `make test`, which installs the gateways.
func lookGateway(t *testing.T, command string) string {
	t.Helper()
	if p, err := exec.LookPath(command); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, command)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found: run `make test` (it installs nginx, caddy and haproxy with gateway/install-deps.sh), or `bash gateway/install-deps.sh` as root", command)
	return ""
}

func render(t *testing.T, name string, d confData) []byte {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return b.Bytes()
}

// startGateway writes gw's configuration into a new folder and runs it on a
// free loopback port until it answers HTTP.
func startGateway(t *testing.T, gw gatewaySpec, bin, authz, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range gw.copies {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	if gw.env != nil {
		env = gw.env(dir)
	}
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		addr := freeAddr(t)
		d := confData{Authz: authz, Upstream: upstream, Dir: dir}
		gw.listen(&d, addr)
		for tmpl, file := range gw.templates {
			if err := os.WriteFile(filepath.Join(dir, file), render(t, tmpl, d), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := startProc(t, fmt.Sprintf("%s-%d", gw.name, attempt), dir, env, bin, gw.args(dir)...)
		lastErr = p.waitHTTP("http://"+addr+"/", func(int) bool { return true })
		if lastErr == nil {
			return addr
		}
		if !p.exited() {
			break // not a port taken meanwhile: give up
		}
	}
	t.Fatalf("%s did not start: %v", gw.name, lastErr)
	return ""
}

// introspectd is a running introspectd process.
type introspectd struct {
	*proc
	addr string
}

// startIntrospectd runs the introspectd binary with a config that trusts
// idp, on a free loopback port with an embedded NATS server, and waits until
// it is ready.
func startIntrospectd(t *testing.T, idp *issuer) *introspectd {
	t.Helper()
	bin, err := buildIntrospectd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), idp.jwks, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "introspectd.yaml")
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		addr := freeAddr(t)
		cfg := fmt.Sprintf(`listen: %q
log_format: text
issuers:
  - issuer: %q
    jwks_file: "jwks.json"
    audiences: [%q]
    algorithms: ["ES256"]
    leeway: "30s"
clients:
  - id: "gateway-test"
    secret: "gateway-test-secret"
nats:
  data_dir: "nats"
routes:
  - path_prefix: "/orders"
    methods: ["POST", "PUT", "PATCH", "DELETE"]
    scopes: ["orders:write"]
  - path_prefix: "/orders"
    scopes: ["orders:read"]
  - path_prefix: "/admin"
    scopes: ["admin"]
`, addr, idp.iss, audience)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		p := startProc(t, fmt.Sprintf("introspectd-%d", attempt), dir, nil, bin, "-config", cfgPath)
		lastErr = p.waitHTTP("http://"+addr+"/readyz", func(s int) bool { return s == http.StatusOK })
		if lastErr == nil {
			return &introspectd{proc: p, addr: addr}
		}
		if !p.exited() {
			break
		}
	}
	t.Fatalf("introspectd did not become ready: %v", lastErr)
	return nil
}

// proc is a subprocess in its own process group, killed with the group
// when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string        // its stdout and stderr
	done chan struct{} // closed once it exited and err is set
	err  error
}

func startProc(t *testing.T, name, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Its own group, so that a stop reaches nginx's workers too; and killed
	// if the test binary dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(syscall.SIGKILL); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			p.dumpLog(t)
		}
	})
	return p
}

// cleanEnv is this process's environment without INTROSPECTD_* variables,
// which would override the config file.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INTROSPECTD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals p's process group and waits for p to exit, with SIGKILL
// after stopTimeout.
func (p *proc) stop(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	pgid := -p.cmd.Process.Pid
	if err := syscall.Kill(pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s needed SIGKILL after %v", p.name, stopTimeout)
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s survived SIGKILL", p.name)
	}
}

// waitHTTP polls url until ok accepts the status, p exits, or readyTimeout
// passes.
func (p *proc) waitHTTP(url string, ok func(status int) bool) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v (see %s)", p.name, p.err, p.log)
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not ready after %v: %s", p.name, url, readyTimeout, last)
}

func (p *proc) dumpLog(t *testing.T) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("%s output (end):\n%s", p.name, b)
	// nginx logs to its own files.
	for _, name := range []string{"nginx-error.log"} {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(p.log), name)); err == nil && len(b) > 0 {
			if len(b) > max {
				b = b[len(b)-max:]
			}
			t.Logf("%s (end):\n%s", name, b)
		}
	}
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// do sends one request straight to the gateway, without keep-alive.
func do(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(body)
}

// wantHeader checks that h carries name exactly once, with value want.
func wantHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if got := h.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("upstream got %s %q, want exactly [%q]", name, got, want)
	}
}

// seen is a request as the upstream received it.
type seen struct {
	method string
	uri    string
	header http.Header
}

// upstream is the protected application: it records what reaches it and
// answers 200 "upstream ok".
type upstream struct {
	addr string

	mu   sync.Mutex // guards reqs
	reqs []seen
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{method: r.Method, uri: r.RequestURI, header: r.Header.Clone()})
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(srv.Close)
	u.addr = srv.Listener.Addr().String()
	return u
}

// take returns the requests seen since the last take.
func (u *upstream) take() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.reqs
	u.reqs = nil
	return r
}

// issuer signs ES256 access tokens and publishes its key as a JWKS.
type issuer struct {
	iss    string
	signer jose.Signer
	jwks   []byte
}

func newIssuer(t *testing.T, iss string) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "gateway-test", Algorithm: string(jose.ES256), Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{iss: iss, signer: signer, jwks: jwks}
}

type claims struct {
	sub, clientID, scope string
	iat, exp             time.Time // zero: now, now+1h
}

func (is *issuer) token(t *testing.T, c claims) string {
	t.Helper()
	if c.iat.IsZero() {
		c.iat = time.Now()
	}
	if c.exp.IsZero() {
		c.exp = c.iat.Add(time.Hour)
	}
	m := map[string]any{
		"iss":   is.iss,
		"sub":   c.sub,
		"aud":   audience,
		"iat":   c.iat.Unix(),
		"exp":   c.exp.Unix(),
		"scope": c.scope,
		"jti":   rand.Text(),
	}
	if c.clientID != "" {
		m["client_id"] = c.clientID
	}
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := is.signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
