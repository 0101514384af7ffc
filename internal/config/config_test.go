package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const baseYAML = `issuers:
  - issuer: "https://auth.example.com/"
    jwks_file: jwks.json
clients:
  - id: gateway
    secret: "s3cret-gateway"
`

// setup writes yaml as config.yaml into a temp folder with a jwks.json and
// returns the file's path.
func setup(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "jwks.json", `{"keys":[]}`)
	p := filepath.Join(dir, "config.yaml")
	writeFile(t, dir, "config.yaml", yaml)
	return p
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mapLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func mapEnviron(env map[string]string) func() []string {
	return func() []string {
		var s []string
		for k, v := range env {
			s = append(s, k+"="+v)
		}
		return s
	}
}

// loadWith loads path with env as the whole environment and args as the
// command line.
func loadWith(t *testing.T, path string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("introspectd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return load(path, mapLookup(env), mapEnviron(env), fs, LoadOptions{})
}

func configErrors(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*Error
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("error %q (%T) is not a *config.Error", e, e)
			continue
		}
		out = append(out, ce)
	}
	return out
}

func TestLoadValid(t *testing.T) {
	p := setup(t, baseYAML)
	c, err := loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	want := Default()
	want.Issuers = []Issuer{DefaultIssuer()}
	want.Issuers[0].Issuer = "https://auth.example.com/"
	want.Issuers[0].JWKSFile = filepath.Join(dir, "jwks.json")
	want.Clients = []Client{{ID: "gateway", Secret: "s3cret-gateway"}}
	want.NATS.DataDir = filepath.Join(dir, "data/nats")
	want.origin = c.origin
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%v\nwant\n%v", c, want)
	}
}

func TestLoadFull(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"jwks.json", "ca.pem", "cert.pem", "key.pem", "nats.creds"} {
		writeFile(t, dir, f, "x")
	}
	writeFile(t, dir, "hmac.key", strings.Repeat("k", 32)+"\n")
	p := writeFile(t, dir, "config.yaml", `
listen: "127.0.0.1:9000"
log_format: text
log_level: debug
pprof_listen: "localhost:6060"
issuers:
  - issuer: "https://a.example/"
    jwks_uri: "https://a.example/jwks"
    audiences: [orders]
    algorithms: [RS256, PS256]
    leeway: 1m
    typ: [at+jwt]
    refresh_interval: 1h
    refetch_cooldown: 30s
    fetch_timeout: 2s
  - issuer: "https://b.example/"
    discovery: true
  - issuer: hmac-issuer
    algorithms: [HS256]
    hmac_secret_file: hmac.key
  - issuer: local
    jwks_file: /`+filepath.ToSlash(filepath.Join(dir, "jwks.json"))[1:]+`
clients:
  - id: a
    secret: s
    audiences: [orders]
  - id: b
    secret_sha256: "`+strings.Repeat("ab", 32)+`"
nats:
  url: "nats://n1:4222, tls://n2:4222"
  subject: revs
  stream: REVS
  replicas: 3
  creds_file: nats.creds
  ca_file: ca.pem
  cert_file: cert.pem
  key_file: key.pem
revocation:
  max_token_lifetime: 12h
  max_staleness: 2m
  fail_closed: true
cache:
  max_bytes: 1048576
  negative_ttl: 0s
routes:
  - path_prefix: /admin
    methods: [post, Delete]
    scopes: [admin]
claims_headers:
  email: X-User-Email
tls:
  cert_file: cert.pem
  key_file: key.pem
http:
  read_timeout: 1s
  write_timeout: 2s
  idle_timeout: 3s
  max_body_bytes: 4096
  max_header_bytes: 2048
  concurrency: 10
  shutdown_timeout: 4s
`)
	c, err := loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:9000"},
		{"log_format", c.LogFormat, "text"},
		{"pprof", c.PprofListen, "localhost:6060"},
		{"leeway", c.Issuers[0].Leeway.D(), time.Minute},
		{"algorithms", c.Issuers[0].Algorithms, []string{"RS256", "PS256"}},
		{"default algorithms", c.Issuers[1].Algorithms, DefaultAlgorithms},
		{"hmac file", c.Issuers[2].HMACSecretFile, filepath.Join(dir, "hmac.key")},
		{"abs jwks", c.Issuers[3].JWKSFile, filepath.Join(dir, "jwks.json")},
		{"replicas", c.NATS.Replicas, 3},
		{"creds", c.NATS.CredsFile, filepath.Join(dir, "nats.creds")},
		{"fail_closed", c.Revocation.FailClosed, true},
		{"max_bytes", c.Cache.MaxBytes, int64(1 << 20)},
		{"negative_ttl", c.Cache.NegativeTTL, Duration(0)},
		{"methods", c.Routes[0].Methods, []string{"POST", "DELETE"}},
		{"claims", c.ClaimsHeaders, map[string]string{"email": "X-User-Email"}},
		{"tls", c.TLS.KeyFile, filepath.Join(dir, "key.pem")},
		{"concurrency", c.HTTP.Concurrency, 10},
		{"shutdown", c.HTTP.ShutdownTimeout.D(), 4 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	k, err := c.Issuers[2].HMACKey()
	if err != nil || string(k) != strings.Repeat("k", 32) {
		t.Errorf("HMACKey: got %q, %v; want 32 k without newline", k, err)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	for _, body := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		p := setup(t, body)
		_, err := loadWith(t, p, nil)
		errs := configErrors(t, err)
		// Defaults only: the missing issuers and clients are the only problems.
		if len(errs) != 2 || errs[0].Key != "issuers" || errs[1].Key != "clients" {
			t.Errorf("%q: got %v, want only the issuers and clients errors", body, err)
		}
	}
}

func TestLoadNoFile(t *testing.T) {
	c, err := load("", mapLookup(nil), nil, nil, LoadOptions{})
	if err == nil {
		t.Fatalf("got %v, want an error for no issuers", c)
	}
	d := Default()
	d.Dev = true
	if err := d.Validate(); err != nil {
		t.Errorf("Default() in dev mode: %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := loadWith(t, filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("got %v, want no such file", err)
	}
}

type wantErr struct {
	key  string
	line int // 0: any
	msg  string
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // appended to baseYAML unless full is set
		full bool
		env  map[string]string
		args []string
		want []wantErr
	}{
		{name: "unknown key", yaml: "lisen: x\n", want: []wantErr{{"lisen", 7, `unknown key "lisen" (did you mean "listen"?)`}}},
		{name: "unknown nested key", full: true, yaml: `issuers:
  - issuer: a
    jwks_url: "https://a/jwks"
clients: [{id: a, secret: b}]
`, want: []wantErr{{"issuers[0].jwks_url", 3, `unknown key "jwks_url" (did you mean "jwks_uri"?)`}}},
		{name: "unknown key no suggestion", yaml: "nats: {zzzzzzzz: 1}\n", want: []wantErr{{"nats.zzzzzzzz", 7, `unknown key "zzzzzzzz"`}}},
		{name: "duplicate key", yaml: "listen: ':1'\nlisten: ':2'\n", want: []wantErr{{"listen", 8, "duplicate key (first on line 7)"}}},
		{name: "bare number duration", yaml: "revocation: {max_staleness: 60}\n", want: []wantErr{{"revocation.max_staleness", 7, `want a duration string like "30s"`}}},
		{name: "bad duration", full: true, yaml: `issuers:
  - issuer: a
    jwks_file: jwks.json
    algorithms:
      - RS256
    leeway: 3x
`, want: []wantErr{{"issuers[0].leeway", 6, `"3x" is not a duration`}}},
		{name: "list wanted", yaml: "routes: /admin\n", want: []wantErr{{"routes", 7, "want a list"}}},
		{name: "list in issuer", full: true, yaml: "issuers:\n  - issuer: a\n    jwks_file: jwks.json\n    audiences: orders\n", want: []wantErr{{"issuers[0].audiences", 4, "want a list"}}},
		{name: "bool wanted", yaml: "revocation: {fail_closed: yes please}\n", want: []wantErr{{"revocation.fail_closed", 7, "want true or false"}}},
		{name: "integer wanted", yaml: "cache: {max_bytes: lots}\n", want: []wantErr{{"cache.max_bytes", 7, `"lots" is not an integer`}}},
		{name: "integer float", yaml: "cache: {max_bytes: 1.5}\n", want: []wantErr{{"cache.max_bytes", 7, `"1.5" is not an integer`}}},
		{name: "integer overflow", yaml: "http: {max_body_bytes: 99999999999999999999}\n", want: []wantErr{{"http.max_body_bytes", 7, "out of range"}}},
		{name: "string wanted", yaml: "listen: [a]\n", want: []wantErr{{"listen", 7, "want a string"}}},
		{name: "string not bool", yaml: "log_format: true\n", want: []wantErr{{"log_format", 7, "want a string, not a boolean"}}},
		{name: "mapping wanted", yaml: "nats: x\n", want: []wantErr{{"nats", 7, "want a mapping"}}},
		{name: "top level list", full: true, yaml: "- a\n", want: []wantErr{{"config.yaml", 1, "want a mapping"}}},
		{name: "syntax", full: true, yaml: "listen: ':1'\n  bad: [\n", want: []wantErr{{"config.yaml", 0, ""}}},
		{name: "two documents", full: true, yaml: "listen: ':1'\n---\nlisten: ':2'\n", want: []wantErr{{"config.yaml", 0, "more than one YAML document"}}},
		{name: "many errors at once", yaml: "lisen: x\ncache: {max_bytes: lots}\nhttp: {read_timeout: 5}\n", want: []wantErr{
			{"lisen", 7, "unknown key"}, {"cache.max_bytes", 8, "not an integer"}, {"http.read_timeout", 9, "want a duration string"},
		}},

		// Validation.
		{name: "listen", yaml: "listen: 8080\n", want: []wantErr{{"listen", 7, `"8080" is not host:port`}}},
		{name: "listen port", yaml: "listen: ':99999'\n", want: []wantErr{{"listen", 7, "bad port"}}},
		{name: "log format", yaml: "log_format: xml\n", want: []wantErr{{"log_format", 7, "want json or text"}}},
		{name: "log level", yaml: "log_level: trace\n", want: []wantErr{{"log_level", 7, "want debug, info, warn or error"}}},
		{name: "pprof not loopback", yaml: "pprof_listen: ':6060'\n", want: []wantErr{{"pprof_listen", 7, "not a loopback address"}}},
		{name: "pprof public", yaml: "pprof_listen: '0.0.0.0:6060'\n", want: []wantErr{{"pprof_listen", 7, "not a loopback address"}}},
		{name: "no issuers", full: true, yaml: "clients: [{id: a, secret: b}]\n", want: []wantErr{{"issuers", 0, "no issuers configured"}}},
		{name: "no clients", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\n", want: []wantErr{{"clients", 0,
			"no clients configured: callers of /introspect must authenticate (add clients, or run with -dev)"}}},
		{name: "issuer missing", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - jwks_file: jwks.json\n", want: []wantErr{{"issuers[0].issuer", 3, "missing"}}},
		{name: "issuer duplicate", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - {issuer: a, jwks_file: jwks.json}\n  - {issuer: a, jwks_file: jwks.json}\n",
			want: []wantErr{{"issuers[1].issuer", 4, `"a" is already issuers[0]`}}},
		{name: "alg none", full: true, yaml: issuerYAML("algorithms: [RS256, NoNe]"), want: []wantErr{{"issuers[0].algorithms[1]", 4, `"none" is never accepted`}}},
		{name: "alg unknown", full: true, yaml: issuerYAML("algorithms: [rs256]"), want: []wantErr{{"issuers[0].algorithms[0]", 4, `unknown algorithm "rs256" (did you mean "RS256"?)`}}},
		{name: "alg empty", full: true, yaml: issuerYAML("algorithms: []"), want: []wantErr{{"issuers[0].algorithms", 4, "want at least one algorithm"}}},
		{name: "leeway range", full: true, yaml: issuerYAML("leeway: 6m"), want: []wantErr{{"issuers[0].leeway", 4, "too long"}}},
		{name: "leeway negative", full: true, yaml: issuerYAML("leeway: -1s"), want: []wantErr{{"issuers[0].leeway", 4, "negative"}}},
		{name: "refresh zero", full: true, yaml: issuerYAML("refresh_interval: 0s"), want: []wantErr{{"issuers[0].refresh_interval", 4, "too short"}}},
		{name: "fetch timeout zero", full: true, yaml: issuerYAML("fetch_timeout: 0s"), want: []wantErr{{"issuers[0].fetch_timeout", 4, "too short"}}},
		{name: "typ empty", full: true, yaml: issuerYAML("typ: ['']"), want: []wantErr{{"issuers[0].typ[0]", 4, "must not be empty"}}},
		{name: "audience empty", full: true, yaml: issuerYAML("audiences: ['']"), want: []wantErr{{"issuers[0].audiences[0]", 4, "must not be empty"}}},
		{name: "two key sources", full: true, yaml: issuerYAML("jwks_uri: https://a/jwks"), want: []wantErr{{"issuers[0].jwks_uri", 4, "set only one of jwks_file, jwks_uri"}}},
		{name: "no key source", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n", want: []wantErr{{"issuers[0]", 3, "no key source"}}},
		{name: "hs without secret", full: true, yaml: issuerYAML("algorithms: [HS256]"), want: []wantErr{{"issuers[0].algorithms", 4, "HS* algorithms need hmac_secret or hmac_secret_file"}}},
		{name: "secret without hs", full: true, yaml: issuerYAML("hmac_secret: " + strings.Repeat("x", 32)), want: []wantErr{{"issuers[0].hmac_secret", 4, "algorithms has no HS256"}}},
		{name: "hmac short", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    algorithms: [HS256]\n    hmac_secret: short\n",
			want: []wantErr{{"issuers[0].hmac_secret", 5, "too short (5 bytes); want at least 32"}}},
		{name: "hmac only with RS", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    algorithms: [HS256, RS256]\n    hmac_secret: " + strings.Repeat("x", 32) + "\n",
			want: []wantErr{{"issuers[0]", 3, "no key source for RS256"}}},
		{name: "hmac both", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    algorithms: [HS256]\n    hmac_secret: " + strings.Repeat("x", 32) + "\n    hmac_secret_file: jwks.json\n",
			want: []wantErr{{"issuers[0].hmac_secret", 5, "set only one of hmac_secret and hmac_secret_file"}}},
		{name: "hmac file missing", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    algorithms: [HS256]\n    hmac_secret_file: nope.key\n",
			want: []wantErr{{"issuers[0].hmac_secret_file", 5, "no such file or directory"}}},
		{name: "jwks file missing", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    jwks_file: nope.json\n",
			want: []wantErr{{"issuers[0].jwks_file", 4, "open "}, {"issuers[0].jwks_file", 4, "nope.json: no such file or directory"}}},
		{name: "jwks uri scheme", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    jwks_uri: ftp://a/jwks\n",
			want: []wantErr{{"issuers[0].jwks_uri", 4, "not an http(s) URL"}}},
		{name: "discovery needs URL issuer", full: true, yaml: "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    discovery: true\n",
			want: []wantErr{{"issuers[0].discovery", 4, "not an http(s) URL"}}},
		{name: "client id missing", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\nclients:\n  - secret: b\n", want: []wantErr{{"clients[0].id", 3, "missing"}}},
		{name: "client duplicate", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\nclients:\n  - {id: a, secret: b}\n  - {id: a, secret: c}\n",
			want: []wantErr{{"clients[1].id", 4, `"a" is already clients[0]`}}},
		{name: "client no secret", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\nclients:\n  - id: a\n", want: []wantErr{{"clients[0]", 3, "set secret or secret_sha256"}}},
		{name: "client both secrets", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\nclients:\n  - id: a\n    secret: b\n    secret_sha256: " + strings.Repeat("0", 64) + "\n",
			want: []wantErr{{"clients[0].secret_sha256", 5, "set only one of secret and secret_sha256"}}},
		{name: "client bad sha", full: true, yaml: "issuers: [{issuer: a, jwks_file: jwks.json}]\nclients:\n  - id: a\n    secret_sha256: abc\n",
			want: []wantErr{{"clients[0].secret_sha256", 4, "want 64 hex characters"}}},
		{name: "nats url", yaml: "nats: {url: 'http://x:4222'}\n", want: []wantErr{{"nats.url", 7, "not a nats:// or tls:// URL"}}},
		{name: "nats url list", yaml: "nats: {url: 'nats://a:1,ws://b:2'}\n", want: []wantErr{{"nats.url", 7, "ws://b:2 is not a nats:// or tls:// URL"}}},
		{name: "nats subject wildcard", yaml: "nats: {subject: 'a.*'}\n", want: []wantErr{{"nats.subject", 7, "wildcard"}}},
		{name: "nats subject empty token", yaml: "nats: {subject: 'a..b'}\n", want: []wantErr{{"nats.subject", 7, "empty token"}}},
		{name: "nats stream", yaml: "nats: {stream: 'A.B'}\n", want: []wantErr{{"nats.stream", 7, "not a valid stream name"}}},
		{name: "nats replicas", yaml: "nats: {replicas: 7}\n", want: []wantErr{{"nats.replicas", 7, "want 1 to 5"}}},
		{name: "nats auth", yaml: "nats: {user: u, token: t}\n", want: []wantErr{{"nats.token", 7, "set only one of user, token"}}},
		{name: "nats password", yaml: "nats: {password: p}\n", want: []wantErr{{"nats.password", 7, "needs nats.user"}}},
		{name: "nats creds missing", yaml: "nats: {creds_file: x.creds}\n", want: []wantErr{{"nats.creds_file", 7, "no such file"}}},
		{name: "nats cert without key", yaml: "nats: {cert_file: jwks.json}\n", want: []wantErr{{"nats.cert_file", 7, "set both"}}},
		{name: "nats embedded public", yaml: "nats: {embedded_listen: '0.0.0.0:4222'}\n", want: []wantErr{{"nats.embedded_listen", 7, "not a loopback address"}}},
		{name: "revocation zero", yaml: "revocation: {max_staleness: 0s}\n", want: []wantErr{{"revocation.max_staleness", 7, "too short"}}},
		{name: "cache small", yaml: "cache: {max_bytes: 1000}\n", want: []wantErr{{"cache.max_bytes", 7, "too small"}}},
		{name: "route prefix", yaml: "routes: [{path_prefix: admin, scopes: [a]}]\n", want: []wantErr{{"routes[0].path_prefix", 7, "must start with /"}}},
		{name: "route method", yaml: "routes: [{path_prefix: /a, methods: ['GE T']}]\n", want: []wantErr{{"routes[0].methods[0]", 7, "not an HTTP method"}}},
		{name: "route scope", yaml: "routes:\n  - path_prefix: /a\n    scopes: [a, '']\n", want: []wantErr{{"routes[0].scopes[1]", 9, "must not be empty"}}},
		{name: "claims header invalid", yaml: "claims_headers: {email: 'X User'}\n", want: []wantErr{{`claims_headers["email"]`, 7, "not a valid header name"}}},
		{name: "claims header forbidden", yaml: "claims_headers: {sub: authorization}\n", want: []wantErr{{`claims_headers["sub"]`, 7, "may not be set from a claim"}}},
		{name: "claims header x-auth", yaml: "claims_headers: {sub: X-Auth-Subject}\n", want: []wantErr{{`claims_headers["sub"]`, 7, "reserved"}}},
		{name: "claims header twice", yaml: "claims_headers: {a: X-A, b: x-a}\n", want: []wantErr{{`claims_headers["b"]`, 7, "already used"}}},
		{name: "tls half", yaml: "tls: {cert_file: jwks.json}\n", want: []wantErr{{"tls.cert_file", 7, "set both"}}},
		{name: "tls missing", yaml: "tls: {cert_file: c.pem, key_file: k.pem}\n", want: []wantErr{{"tls.cert_file", 7, "no such file"}, {"tls.key_file", 7, "no such file"}}},
		{name: "http ranges", yaml: "http: {max_body_bytes: 0, concurrency: 0, read_timeout: 0s}\n", want: []wantErr{
			{"http.max_body_bytes", 7, "out of range"}, {"http.concurrency", 7, "out of range"}, {"http.read_timeout", 7, "too short"}}},

		// Environment and flags.
		{name: "env integer", env: map[string]string{"INTROSPECTD_CACHE_MAX_BYTES": "lots"},
			want: []wantErr{{"INTROSPECTD_CACHE_MAX_BYTES", 0, `"lots" is not an integer`}}},
		{name: "env bool", env: map[string]string{"INTROSPECTD_REVOCATION_FAIL_CLOSED": "maybe"},
			want: []wantErr{{"INTROSPECTD_REVOCATION_FAIL_CLOSED", 0, `"maybe" is not a boolean`}}},
		{name: "env duration", env: map[string]string{"INTROSPECTD_HTTP_READ_TIMEOUT": "30"},
			want: []wantErr{{"INTROSPECTD_HTTP_READ_TIMEOUT", 0, `want a duration string like "30s"`}}},
		{name: "env unknown", env: map[string]string{"INTROSPECTD_NATS_ULR": "nats://x"},
			want: []wantErr{{"INTROSPECTD_NATS_ULR", 0, "unknown variable (did you mean INTROSPECTD_NATS_URL?)"}}},
		{name: "env file-only", env: map[string]string{"INTROSPECTD_ISSUERS": "x"},
			want: []wantErr{{"INTROSPECTD_ISSUERS", 0, "issuers can only be set in the config file"}}},
		{name: "env validation names variable", env: map[string]string{"INTROSPECTD_LISTEN": "nope"},
			want: []wantErr{{"INTROSPECTD_LISTEN", 0, "not host:port"}}},
		{name: "flag integer", args: []string{"-cache.max_bytes=lots"},
			want: []wantErr{{"-cache.max_bytes", 0, `"lots" is not an integer`}}},
		{name: "flag bool", args: []string{"-revocation.fail_closed=maybe"},
			want: []wantErr{{"-revocation.fail_closed", 0, "not a boolean"}}},
		{name: "flag duration", args: []string{"-revocation.max_staleness", "1x"},
			want: []wantErr{{"-revocation.max_staleness", 0, `"1x" is not a duration`}}},
		{name: "flag validation names flag", args: []string{"-nats.replicas", "9"},
			want: []wantErr{{"-nats.replicas", 0, "want 1 to 5"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if !tt.full {
				y = baseYAML + y
			}
			_, err := loadWith(t, setup(t, y), tt.env, tt.args...)
			errs := configErrors(t, err)
			if len(errs) == 0 {
				t.Fatalf("got no error, want %v", tt.want)
			}
			for _, w := range tt.want {
				found := false
				for _, e := range errs {
					if (e.Key == w.key || strings.HasSuffix(e.Key, string(filepath.Separator)+w.key)) && (w.line == 0 || e.Line == w.line) && strings.Contains(e.Msg, w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("got %v\nwant key %q line %d with %q", err, w.key, w.line, w.msg)
				}
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Error(), e.Key) {
					t.Errorf("%q does not start with its key %q", e.Error(), e.Key)
				}
			}
		})
	}
}

func issuerYAML(extra string) string {
	return "clients: [{id: a, secret: b}]\nissuers:\n  - issuer: a\n    " + extra + "\n    jwks_file: jwks.json\n"
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Key: "issuers[0].leeway", Line: 7, Msg: `"3x" is not a duration`}, `issuers[0].leeway (line 7): "3x" is not a duration`},
		{Error{Key: "INTROSPECTD_CACHE_MAX_BYTES", Msg: `"lots" is not an integer`}, `INTROSPECTD_CACHE_MAX_BYTES: "lots" is not an integer`},
		{Error{Line: 3, Msg: "x"}, "line 3: x"},
		{Error{Msg: "x"}, "x"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	p := setup(t, baseYAML+`
listen: "127.0.0.1:1"
log_level: warn
nats:
  url: "nats://file:4222"
  replicas: 2
revocation:
  max_staleness: 10s
  fail_closed: false
cache:
  max_bytes: 2097152
`)
	env := map[string]string{
		"INTROSPECTD_LOG_LEVEL":                "error",
		"INTROSPECTD_NATS_URL":                 "nats://env:4222",
		"INTROSPECTD_REVOCATION_MAX_STALENESS": "20s",
		"INTROSPECTD_REVOCATION_FAIL_CLOSED":   "true",
		"INTROSPECTD_CACHE_MAX_BYTES":          "3145728",
		"INTROSPECTD_CONFIG":                   "ignored.yaml",
		"OTHER":                                "ignored",
	}
	c, err := loadWith(t, p, env, "-nats.url=nats://flag:4222", "-revocation.max_staleness", "30s", "-cache.max_bytes=4194304")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"file only", c.Listen, "127.0.0.1:1"},
		{"file only int", c.NATS.Replicas, 2},
		{"default", c.LogFormat, "json"},
		{"env over file", c.LogLevel, "error"},
		{"env over file bool", c.Revocation.FailClosed, true},
		{"flag over env", c.NATS.URL, "nats://flag:4222"},
		{"flag over env duration", c.Revocation.MaxStaleness.D(), 30 * time.Second},
		{"flag over env int", c.Cache.MaxBytes, int64(4 << 20)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// A bool flag without a value means true and beats the environment.
	env["INTROSPECTD_REVOCATION_FAIL_CLOSED"] = "false"
	c, err = loadWith(t, p, env, "-revocation.fail_closed")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Revocation.FailClosed {
		t.Error("-revocation.fail_closed: got false, want true")
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "jwks.json", "{}")
	p := writeFile(t, dir, "config.yaml", baseYAML+"nats: {data_dir: store}\n")
	c, err := loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "store"); c.NATS.DataDir != want {
		t.Errorf("file data_dir: got %q, want %q", c.NATS.DataDir, want)
	}
	// From the environment, relative to the working directory: unchanged.
	c, err = loadWith(t, p, map[string]string{"INTROSPECTD_NATS_DATA_DIR": "envstore"})
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.DataDir != "envstore" {
		t.Errorf("env data_dir: got %q, want %q", c.NATS.DataDir, "envstore")
	}
	// The default is relative to the file too.
	p = writeFile(t, dir, "config.yaml", baseYAML)
	c, err = loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data", "nats"); c.NATS.DataDir != want {
		t.Errorf("default data_dir: got %q, want %q", c.NATS.DataDir, want)
	}
}

func TestDevMode(t *testing.T) {
	c := Default()
	c.Dev = true
	if err := c.Validate(); err != nil {
		t.Fatalf("dev config: %v", err)
	}
	c.Dev = false
	errs := configErrors(t, c.Validate())
	if len(errs) != 2 {
		t.Fatalf("got %v, want issuers and clients errors", errs)
	}
}

func TestRedacted(t *testing.T) {
	const (
		hmac     = "hmac-secret-hmac-secret-hmac-secret!"
		secret   = "client-secret-value"
		natsPass = "nats-password-value"
		natsTok  = "nats-token-value"
	)
	sha := strings.Repeat("cd", 32)
	dir := t.TempDir()
	writeFile(t, dir, "jwks.json", "{}")
	p := writeFile(t, dir, "config.yaml", fmt.Sprintf(`
issuers:
  - issuer: h
    algorithms: [HS256]
    hmac_secret: %q
clients:
  - id: a
    secret: %q
  - id: b
    secret_sha256: %q
nats:
  url: "nats://x:4222,nats://nuser:url-password@y:4222, tls://url-token@z:4222"
  user: u
  password: %q
`, hmac, secret, sha, natsPass))
	c, err := loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.NATS.Token = natsTok // not valid together with user; Redacted does not care
	s := c.String()
	for _, sec := range []string{hmac, secret, sha, natsPass, natsTok, "url-password", "url-token"} {
		if strings.Contains(s, sec) {
			t.Errorf("String() contains secret %q:\n%s", sec, s)
		}
	}
	if !strings.Contains(s, "nats://nuser:REDACTED@y:4222") || !strings.Contains(s, "max_staleness: 1m0s") {
		t.Errorf("String() lacks REDACTED or durations:\n%s", s)
	}
	r := c.Redacted()
	if r.Clients[0].Secret != Redacted || r.Clients[1].Secret != "" || r.Clients[1].SecretSHA256 != Redacted ||
		r.Issuers[0].HMACSecret != Redacted || r.NATS.Password != Redacted || r.NATS.Token != Redacted {
		t.Errorf("Redacted: got %+v", r)
	}
	// A deep copy: the original keeps its secrets.
	r.Issuers[0].Algorithms[0] = "changed"
	if c.Clients[0].Secret != secret || c.Issuers[0].Algorithms[0] != "HS256" {
		t.Error("Redacted changed the original")
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	RegisterFlags(fs)
	for name, def := range map[string]string{
		"listen":                   ":8080",
		"log_format":               "json",
		"nats.url":                 "",
		"nats.subject":             "introspect.revocations",
		"revocation.max_staleness": "1m0s",
		"revocation.fail_closed":   "",
		"cache.max_bytes":          "268435456",
		"tls.cert_file":            "",
		"http.read_timeout":        "5s",
		"http.shutdown_timeout":    "15s",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag -%s", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("-%s default: got %q, want %q", name, f.DefValue, def)
		}
		if !strings.Contains(f.Usage, "INTROSPECTD_"+strings.ToUpper(strings.ReplaceAll(name, ".", "_"))) {
			t.Errorf("-%s usage %q lacks its variable", name, f.Usage)
		}
	}
	for _, name := range []string{"issuers", "clients", "routes", "claims_headers", "dev"} {
		if fs.Lookup(name) != nil {
			t.Errorf("unexpected flag -%s", name)
		}
	}
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if !strings.Contains(b.String(), "-http.read_timeout duration") {
		t.Errorf("usage lacks the duration type:\n%s", b.String())
	}
}

// TestDocTags checks that every field has a doc tag (used for -h and the README).
func TestDocTags(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Config](), reflect.TypeFor[Issuer](), reflect.TypeFor[Client](), reflect.TypeFor[NATS](),
		reflect.TypeFor[Revocation](), reflect.TypeFor[Cache](), reflect.TypeFor[Route](), reflect.TypeFor[TLS](), reflect.TypeFor[HTTP](),
	} {
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() && f.Tag.Get("doc") == "" {
				t.Errorf("%s.%s has no doc tag", typ.Name(), f.Name)
			}
		}
	}
}

func TestAlias(t *testing.T) {
	p := setup(t, `
x_auds: &auds [a, b]
`)
	_, err := loadWith(t, p, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "x_auds"`) {
		t.Errorf("got %v, want unknown key", err)
	}
	p = setup(t, `issuers:
  - &iss
    issuer: a
    jwks_file: jwks.json
    audiences: &auds [x, y]
clients:
  - {id: c, secret: s, audiences: *auds}
`)
	c, err := loadWith(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].Audiences; !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("alias: got %v", got)
	}
}

func TestKeys(t *testing.T) {
	keys := Keys()
	byPath := map[string]Key{}
	for _, k := range keys {
		byPath[k.Path] = k
	}
	want := []Key{
		{Path: "listen", Type: "string", Env: "INTROSPECTD_LISTEN", Flag: "listen", Default: ":8080"},
		{Path: "issuers", Type: "list"},
		{Path: "issuers[].leeway", Type: "duration", Default: "30s"},
		{Path: "issuers[].algorithms", Type: "list", Default: "RS256, ES256, EdDSA"},
		{Path: "issuers[].hmac_secret", Type: "string", Secret: true},
		{Path: "nats", Type: "section"},
		{Path: "nats.password", Type: "string", Env: "INTROSPECTD_NATS_PASSWORD", Flag: "nats.password", Secret: true},
		{Path: "revocation.fail_closed", Type: "bool", Env: "INTROSPECTD_REVOCATION_FAIL_CLOSED", Flag: "revocation.fail_closed"},
		{Path: "cache.max_bytes", Type: "int", Env: "INTROSPECTD_CACHE_MAX_BYTES", Flag: "cache.max_bytes", Default: "268435456"},
		{Path: "claims_headers", Type: "map"},
	}
	for _, w := range want {
		got, ok := byPath[w.Path]
		if !ok {
			t.Errorf("no key %s", w.Path)
			continue
		}
		got.Doc = ""
		if got != w {
			t.Errorf("got %+v, want %+v", got, w)
		}
	}
	// Every key with a variable has a flag, and RegisterFlags registers it.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	RegisterFlags(fs)
	n := 0
	for _, k := range keys {
		if k.Flag != "" {
			n++
			if fs.Lookup(k.Flag) == nil {
				t.Errorf("no flag -%s", k.Flag)
			}
		}
	}
	count := 0
	fs.VisitAll(func(*flag.Flag) { count++ })
	if count != n {
		t.Errorf("got %d flags, want %d", count, n)
	}
}

func TestAllProblemsReported(t *testing.T) {
	// A decode error does not hide validation errors elsewhere, but does
	// hide those that follow from it.
	p := setup(t, `listen: nope
issuers:
  - issuer: a
    jwks_url: https://a/jwks
clients: [{id: a, secret: b}]
cache: {max_bytes: lots}
`)
	_, err := loadWith(t, p, map[string]string{"INTROSPECTD_NATS_REPLICAS": "x"}, "-http.concurrency=0")
	errs := configErrors(t, err)
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	want := []string{"issuers[0].jwks_url", "cache.max_bytes", "INTROSPECTD_NATS_REPLICAS", "listen", "-http.concurrency"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("got keys %q, want %q\n%v", keys, want, err)
	}
}

func TestHMACKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ content, want string }{
		{"abc\n", "abc"}, {"abc\r\n", "abc"}, {"abc", "abc"}, {"abc\n\n", "abc\n"},
	} {
		is := Issuer{HMACSecretFile: writeFile(t, dir, "k", tt.content)}
		got, err := is.HMACKey()
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.content, got, err, tt.want)
		}
	}
}
