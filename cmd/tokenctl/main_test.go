package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runT runs tokenctl with args and returns its exit status and output.
func runT(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// makeKeys runs "tokenctl keys" into a temporary directory.
func makeKeys(t *testing.T, alg string, extra ...string) (priv, jwks string) {
	t.Helper()
	dir := t.TempDir()
	priv, jwks = filepath.Join(dir, "key.jwk"), filepath.Join(dir, "jwks.json")
	args := append([]string{"keys", "-alg", alg, "-out-private", priv, "-out-jwks", jwks}, extra...)
	if code, _, stderr := runT(t, "", args...); code != 0 {
		t.Fatalf("keys -alg %s: exit %d: %s", alg, code, stderr)
	}
	return priv, jwks
}

func readJWKS(t *testing.T, path string) jose.JSONWebKeySet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v", err)
	}
	return set
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		alg   string
		extra []string
		kid   string // "" means the thumbprint
	}{
		{alg: "RS256"},
		{alg: "RS256", extra: []string{"-bits", "3072"}},
		{alg: "ES256"},
		{alg: "EdDSA"},
		{alg: "es256", extra: []string{"-kid", "2026-01"}, kid: "2026-01"},
	}
	for _, tt := range tests {
		t.Run(tt.alg+strings.Join(tt.extra, ""), func(t *testing.T) {
			t.Parallel()
			priv, jwksPath := makeKeys(t, tt.alg, tt.extra...)
			if got := mode(t, priv); got != 0o600 {
				t.Errorf("private key mode %o, want 600", got)
			}
			if got := mode(t, jwksPath); got != 0o644 {
				t.Errorf("JWKS mode %o, want 644", got)
			}
			set := readJWKS(t, jwksPath)
			if len(set.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
			}
			pub := set.Keys[0]
			if !pub.IsPublic() || !pub.Valid() {
				t.Errorf("JWKS key is not a valid public key")
			}
			if want := strings.ToUpper(tt.alg); !strings.EqualFold(pub.Algorithm, want) || pub.Use != "sig" {
				t.Errorf("alg %q use %q, want %s sig", pub.Algorithm, pub.Use, tt.alg)
			}
			wantKid := tt.kid
			if wantKid == "" {
				tp, err := pub.Thumbprint(crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				wantKid = base64.RawURLEncoding.EncodeToString(tp)
			}
			if pub.KeyID != wantKid {
				t.Errorf("kid %q, want %q", pub.KeyID, wantKid)
			}
			jwk, err := readPrivateJWK(priv)
			if err != nil {
				t.Fatal(err)
			}
			if jwk.KeyID != wantKid {
				t.Errorf("private kid %q, want %q", jwk.KeyID, wantKid)
			}
			if strings.HasPrefix(tt.alg, "RS") {
				bits := 2048
				if len(tt.extra) > 0 {
					bits = 3072
				}
				if n := pub.Key.(interface{ Size() int }).Size() * 8; n != bits {
					t.Errorf("RSA key has %d bits, want %d", n, bits)
				}
			}

			// No overwrite without -force, not even of one of the two files.
			before, _ := os.ReadFile(priv)
			other := filepath.Join(t.TempDir(), "new.json")
			for _, args := range [][]string{
				{"-out-private", priv, "-out-jwks", jwksPath},
				{"-out-private", priv, "-out-jwks", other},
			} {
				code, _, stderr := runT(t, "", append([]string{"keys", "-alg", tt.alg}, args...)...)
				if code != exitFailure || !strings.Contains(stderr, "-force") {
					t.Errorf("keys over existing files: exit %d %q, want 1 naming -force", code, stderr)
				}
			}
			if _, err := os.Stat(other); err == nil {
				t.Errorf("keys wrote %s although -out-private exists", other)
			}
			if after, _ := os.ReadFile(priv); string(after) != string(before) {
				t.Errorf("private key changed without -force")
			}
			// -force replaces both and keeps the modes.
			if code, _, stderr := runT(t, "", "keys", "-alg", tt.alg, "-force", "-out-private", priv, "-out-jwks", jwksPath); code != 0 {
				t.Fatalf("keys -force: exit %d: %s", code, stderr)
			}
			if after, _ := os.ReadFile(priv); string(after) == string(before) {
				t.Errorf("-force did not replace the private key")
			}
			if got := mode(t, priv); got != 0o600 {
				t.Errorf("private key mode after -force %o, want 600", got)
			}
			if got := mode(t, jwksPath); got != 0o644 {
				t.Errorf("JWKS mode after -force %o, want 644", got)
			}
		})
	}
}

// mint runs "tokenctl mint" and returns the token.
func mint(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runT(t, "", append([]string{"mint"}, args...)...)
	if code != 0 {
		t.Fatalf("mint: exit %d: %s", code, stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("mint printed %q, want one line", stdout)
	}
	return strings.TrimSpace(stdout)
}

// verify checks tok against the JWKS file and returns its header and claims.
func verify(t *testing.T, tok, jwksPath string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("token does not parse: %v", err)
	}
	h := jws.Signatures[0].Header
	set := readJWKS(t, jwksPath)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS, want 1", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

func TestMint(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			priv, jwks := makeKeys(t, alg)
			before := time.Now().Unix()
			tok := mint(t, "-key", priv, "-iss", "https://auth.example.com/", "-sub", "alice",
				"-aud", "orders-api", "-aud", "billing", "-scope", "orders:read orders:write",
				"-client-id", "gateway", "-ttl", "15m",
				"-claim", "roles=[\"admin\"]", "-claim", "tenant=acme", "-claim", "n=42")
			h, c := verify(t, tok, jwks)
			if h.Algorithm != alg {
				t.Errorf("alg %q, want %q", h.Algorithm, alg)
			}
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
				t.Errorf("typ %v, want at+jwt", typ)
			}
			want := map[string]any{
				"iss": "https://auth.example.com/", "sub": "alice",
				"aud":   []any{"orders-api", "billing"},
				"scope": "orders:read orders:write", "client_id": "gateway",
				"roles": []any{"admin"}, "tenant": "acme", "n": float64(42),
			}
			for k, v := range want {
				if got, _ := json.Marshal(c[k]); string(got) != mustJSON(t, v) {
					t.Errorf("claim %s = %s, want %s", k, got, mustJSON(t, v))
				}
			}
			iat, exp := c["iat"].(float64), c["exp"].(float64)
			if int64(iat) < before || int64(iat) > time.Now().Unix() || exp-iat != 900 {
				t.Errorf("iat %v exp %v, want iat now and exp iat+900", iat, exp)
			}
			if jti, _ := c["jti"].(string); len(jti) != 22 {
				t.Errorf("jti %q, want 22 random base64url characters", jti)
			}
		})
	}

	t.Run("options", func(t *testing.T) {
		t.Parallel()
		priv, jwks := makeKeys(t, "ES256")
		tok := mint(t, "-key", priv, "-iss", "i", "-sub", "s", "-aud", "one", "-jti", "none", "-typ", "")
		h, c := verify(t, tok, jwks)
		if _, ok := h.ExtraHeaders[jose.HeaderType]; ok {
			t.Errorf("-typ \"\": header has typ %v", h.ExtraHeaders[jose.HeaderType])
		}
		if _, ok := c["jti"]; ok {
			t.Errorf("-jti none: claims have jti")
		}
		if c["aud"] != "one" {
			t.Errorf("one -aud: aud %v, want the string one", c["aud"])
		}
		for _, k := range []string{"scope", "client_id"} {
			if _, ok := c[k]; ok {
				t.Errorf("claim %s present without its flag", k)
			}
		}
		tok = mint(t, "-key", priv, "-iss", "i", "-sub", "s", "-jti", "order-42", "-claim", "sub=override", "-claim", "exp=1767225600")
		_, c = verify(t, tok, jwks)
		if c["jti"] != "order-42" || c["sub"] != "override" || c["exp"] != float64(1767225600) {
			t.Errorf("jti %v sub %v exp %v, want order-42, override, 1767225600", c["jti"], c["sub"], c["exp"])
		}
	})

	t.Run("public key refused", func(t *testing.T) {
		t.Parallel()
		_, jwks := makeKeys(t, "EdDSA")
		set := readJWKS(t, jwks)
		b, _ := json.Marshal(set.Keys[0])
		pub := filepath.Join(t.TempDir(), "pub.jwk")
		if err := os.WriteFile(pub, b, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runT(t, "", "mint", "-key", pub, "-iss", "i", "-sub", "s")
		if code != exitFailure || !strings.Contains(stderr, "public key") {
			t.Errorf("mint with a public key: exit %d %q, want 1 saying public key", code, stderr)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClaimFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg     string
		key     string
		want    string // JSON of the value
		wantErr bool
	}{
		{arg: "tenant=acme", key: "tenant", want: `"acme"`},
		{arg: "n=42", key: "n", want: `42`},
		{arg: "big=12345678901234567890", key: "big", want: `12345678901234567890`},
		{arg: "f=1.5", key: "f", want: `1.5`},
		{arg: "ok=true", key: "ok", want: `true`},
		{arg: "x=null", key: "x", want: `null`},
		{arg: `roles=["a","b"]`, key: "roles", want: `["a","b"]`},
		{arg: `obj={"a":{"b":1}}`, key: "obj", want: `{"a":{"b":1}}`},
		{arg: `q="42"`, key: "q", want: `"42"`},
		{arg: "s=hello world", key: "s", want: `"hello world"`},
		{arg: "eq=a=b", key: "eq", want: `"a=b"`},
		{arg: "empty=", key: "empty", want: `""`},
		{arg: "bad={", key: "bad", want: `"{"`},
		{arg: "TRUE=True", key: "TRUE", want: `"True"`},
		{arg: "noequals", wantErr: true},
		{arg: "=v", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			t.Parallel()
			var c claimsFlag
			err := c.Set(tt.arg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Set(%q) = nil, want an error", tt.arg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q): %v", tt.arg, err)
			}
			got, err := json.Marshal(c.vals[tt.key])
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Set(%q): %s = %s, want %s", tt.arg, tt.key, got, tt.want)
			}
		})
	}
}

func TestMintDevServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dev/token" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Get("ttl") == "bad" {
			http.Error(w, "ttl: want a duration", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "h.%s.s\n", base64.RawURLEncoding.EncodeToString([]byte(q.Encode())))
	}))
	t.Cleanup(srv.Close)

	tok := mint(t, "-dev-server", srv.URL+"/", "-sub", "bob", "-scope", "admin read", "-client-id", "cli", "-ttl", "10m")
	q, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if want := "client_id=cli&scope=admin+read&sub=bob&ttl=10m0s"; string(q) != want {
		t.Errorf("query %q, want %q", q, want)
	}
	tok = mint(t, "-dev-server", srv.URL)
	if q, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1]); len(q) != 0 {
		t.Errorf("query %q without flags, want none (server defaults)", q)
	}

	code, _, stderr := runT(t, "", "mint", "-dev-server", srv.URL+"/nowhere")
	if code != exitFailure || !strings.Contains(stderr, "404") {
		t.Errorf("dev server 404: exit %d %q, want 1 with the status", code, stderr)
	}
}

// fakeIntrospect is an RFC 7662 endpoint that wants client gateway:s3cret.
func fakeIntrospect(t *testing.T, tlsServer bool) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/introspect" || r.Method != http.MethodPost {
			t.Errorf("request %s %s, want POST /introspect", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q, want application/x-www-form-urlencoded", ct)
		}
		id, secret, ok := r.BasicAuth()
		if !ok || id != "gateway" || secret != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="introspect"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if len(r.PostForm) != 1 || len(r.PostForm["token"]) != 1 {
			t.Errorf("form %v, want token only", r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.PostForm.Get("token") {
		case "good.to+ken=":
			fmt.Fprint(w, `{"active":true,"sub":"alice","scope":"a b","exp":1767225600}`)
		case "busy":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
		case "weird":
			fmt.Fprint(w, `{"nope":1}`)
		default:
			fmt.Fprint(w, `{"active":false}`)
		}
	})
	srv := httptest.NewUnstartedServer(h)
	// The unknown-CA case makes the server log a handshake error.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsServer {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestIntrospect(t *testing.T) {
	srv := fakeIntrospect(t, false)
	tlsSrv := fakeIntrospect(t, true)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tok")
	if err := os.WriteFile(tokFile, []byte("  good.to+ken=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	auth := []string{"-client-id", "gateway", "-client-secret", "s3cret"}

	tests := []struct {
		name       string
		env        string // TOKENCTL_CLIENT_SECRET
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "active", args: append([]string{"-url", srv.URL, "-token", "good.to+ken="}, auth...),
			wantCode: 0, wantStdout: "{\n  \"active\": true,\n  \"sub\": \"alice\",\n  \"scope\": \"a b\",\n  \"exp\": 1767225600\n}\n"},
		{name: "inactive", args: append([]string{"-url", srv.URL + "/", "-token", "other"}, auth...),
			wantCode: exitInactive, wantStdout: "{\n  \"active\": false\n}\n"},
		{name: "url with path", args: append([]string{"-url", srv.URL + "/introspect", "-token", "other"}, auth...),
			wantCode: exitInactive},
		{name: "token file", args: append([]string{"-url", srv.URL, "-token-file", tokFile}, auth...), wantCode: 0},
		{name: "stdin", stdin: "good.to+ken=\n", args: append([]string{"-url", srv.URL, "-token", "-"}, auth...), wantCode: 0},
		{name: "secret from env", env: "s3cret", args: []string{"-url", srv.URL, "-client-id", "gateway", "-token", "good.to+ken="}, wantCode: 0},
		{name: "flag beats env", env: "wrong", args: append([]string{"-url", srv.URL, "-token", "good.to+ken="}, auth...), wantCode: 0},
		{name: "wrong secret", args: []string{"-url", srv.URL, "-client-id", "gateway", "-client-secret", "x", "-token", "good.to+ken="},
			wantCode: exitFailure, wantStderr: `401 Unauthorized: {"error":"invalid_client"}`},
		{name: "no client", args: []string{"-url", srv.URL, "-token", "good.to+ken="}, wantCode: exitFailure, wantStderr: "401"},
		{name: "503", args: append([]string{"-url", srv.URL, "-token", "busy"}, auth...),
			wantCode: exitFailure, wantStderr: `503 Service Unavailable (Retry-After: 2): {"error":"temporarily_unavailable"}`},
		{name: "not RFC 7662", args: append([]string{"-url", srv.URL, "-token", "weird"}, auth...), wantCode: exitFailure, wantStderr: `"active"`},
		{name: "unreachable", args: append([]string{"-url", "http://127.0.0.1:1", "-token", "x", "-timeout", "2s"}, auth...), wantCode: exitFailure},
		{name: "https with -ca", args: append([]string{"-url", tlsSrv.URL, "-ca", ca, "-token", "good.to+ken="}, auth...), wantCode: 0},
		{name: "https unknown CA", args: append([]string{"-url", tlsSrv.URL, "-token", "good.to+ken="}, auth...),
			wantCode: exitFailure, wantStderr: "certificate"},
		{name: "https insecure", args: append([]string{"-url", tlsSrv.URL, "-insecure-skip-verify", "-token", "good.to+ken="}, auth...),
			wantCode: 0, wantStderr: "warning: -insecure-skip-verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TOKENCTL_CLIENT_SECRET", tt.env)
			code, stdout, stderr := runT(t, tt.stdin, append([]string{"introspect"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if strings.Contains(stderr+stdout, "s3cret") {
				t.Errorf("output shows the client secret")
			}
		})
	}
}

// startJetStream runs an embedded nats-server with a stream on
// introspect.revocations.> and returns its URL and the stream.
func startJetStream(t *testing.T) (string, jetstream.Stream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "REVOCATIONS", Subjects: []string{"introspect.revocations.>"}})
	if err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), st
}

type storedMsg struct{ subject, body string }

// messagesSince returns the stream's messages after sequence seq.
func messagesSince(t *testing.T, st jetstream.Stream, seq uint64) ([]storedMsg, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []storedMsg
	for s := seq + 1; s <= info.State.LastSeq; s++ {
		m, err := st.GetMsg(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, storedMsg{m.Subject, string(m.Data)})
	}
	return msgs, info.State.LastSeq
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	url, st := startJetStream(t)

	priv, _ := makeKeys(t, "ES256")
	const iss = "https://auth.example.com/"
	withJTI := mint(t, "-key", priv, "-iss", iss, "-sub", "alice", "-jti", "jti-1", "-ttl", "2h")
	noJTI := mint(t, "-key", priv, "-iss", iss, "-sub", "alice", "-jti", "none")
	jwtExp := func(tok string) int64 {
		c, ok := jwtClaims(tok)
		if !ok || c.exp == 0 {
			t.Fatalf("minted token has no readable exp")
		}
		return c.exp
	}
	hexSum := func(tok string) string {
		s := sha256.Sum256([]byte(tok))
		return hex.EncodeToString(s[:])
	}
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte(withJTI+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const jan2026 = 1767225600
	now := time.Now().Unix()

	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []storedMsg
		// exp is checked within a second of now+ttl instead of exactly.
		approxExp time.Duration
	}{
		{
			name: "JWT with jti: token and jti events",
			args: []string{"-token", withJTI},
			want: []storedMsg{
				{"introspect.revocations.token", fmt.Sprintf(`{"token_sha256":"%s","exp":%d}`, hexSum(withJTI), jwtExp(withJTI))},
				{"introspect.revocations.jti", fmt.Sprintf(`{"iss":"%s","jti":"jti-1","exp":%d}`, iss, jwtExp(withJTI))},
			},
		},
		{
			name: "JWT from file",
			args: []string{"-token-file", tokFile},
			want: []storedMsg{
				{"introspect.revocations.token", fmt.Sprintf(`{"token_sha256":"%s","exp":%d}`, hexSum(withJTI), jwtExp(withJTI))},
				{"introspect.revocations.jti", fmt.Sprintf(`{"iss":"%s","jti":"jti-1","exp":%d}`, iss, jwtExp(withJTI))},
			},
		},
		{
			name: "JWT without jti: token event only",
			args: []string{"-token", noJTI},
			want: []storedMsg{
				{"introspect.revocations.token", fmt.Sprintf(`{"token_sha256":"%s","exp":%d}`, hexSum(noJTI), jwtExp(noJTI))},
			},
		},
		{
			name:  "opaque token from stdin with -exp",
			stdin: "opaque-token-123\n",
			args:  []string{"-token", "-", "-exp", "2026-01-01T00:00:00Z"},
			want: []storedMsg{
				{"introspect.revocations.token", fmt.Sprintf(`{"token_sha256":"%s","exp":%d}`, hexSum("opaque-token-123"), jan2026)},
			},
		},
		{
			name:      "opaque token: now+24h",
			args:      []string{"-token", "opaque-token-456"},
			want:      []storedMsg{{"introspect.revocations.token", fmt.Sprintf(`{"token_sha256":"%s","exp":`, hexSum("opaque-token-456"))}},
			approxExp: 24 * time.Hour,
		},
		{
			name: "jti with iss",
			args: []string{"-jti", "abc", "-iss", iss, "-exp", strconv.Itoa(jan2026)},
			want: []storedMsg{{"introspect.revocations.jti", fmt.Sprintf(`{"iss":"%s","jti":"abc","exp":%d}`, iss, jan2026)}},
		},
		{
			name:      "jti any issuer with -ttl",
			args:      []string{"-jti", "abc", "-ttl", "1h"},
			want:      []storedMsg{{"introspect.revocations.jti", `{"jti":"abc","exp":`}},
			approxExp: time.Hour,
		},
		{
			name: "sub",
			args: []string{"-sub", "alice", "-iss", iss, "-not-before", "2026-01-01T00:00:00Z"},
			want: []storedMsg{{"introspect.revocations.sub", fmt.Sprintf(`{"iss":"%s","sub":"alice","not_before":%d}`, iss, jan2026)}},
		},
		{
			name: "client",
			args: []string{"-client", "gateway", "-iss", iss, "-not-before", strconv.Itoa(jan2026)},
			want: []storedMsg{{"introspect.revocations.client", fmt.Sprintf(`{"iss":"%s","client_id":"gateway","not_before":%d}`, iss, jan2026)}},
		},
		{
			name:      "sub not before now",
			args:      []string{"-sub", "bob", "-iss", iss},
			want:      []storedMsg{{"introspect.revocations.sub", fmt.Sprintf(`{"iss":"%s","sub":"bob","not_before":`, iss)}},
			approxExp: 0,
		},
	}
	seqRE := regexp.MustCompile(`(\w+) event seq (\d+)`)
	var last uint64
	for _, tt := range tests {
		// Not parallel: each case reads the messages it added.
		code, stdout, stderr := runT(t, tt.stdin, append([]string{"revoke", "-nats", url}, tt.args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.name, code, stderr)
		}
		for _, tok := range []string{withJTI, noJTI, "opaque-token"} {
			if strings.Contains(stdout+stderr, tok) {
				t.Errorf("%s: output shows the token", tt.name)
			}
		}
		got, newLast := messagesSince(t, st, last)
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %d messages stored, want %d: %v", tt.name, len(got), len(tt.want), got)
		}
		// stdout names each event with its stream sequence.
		m := seqRE.FindAllStringSubmatch(stdout, -1)
		if !strings.HasPrefix(stdout, "revoked: ") || len(m) != len(tt.want) {
			t.Errorf("%s: stdout %q, want revoked: and %d sequences", tt.name, stdout, len(tt.want))
		}
		for i, w := range tt.want {
			g := got[i]
			if g.subject != w.subject {
				t.Errorf("%s: message %d subject %q, want %q", tt.name, i, g.subject, w.subject)
			}
			if i < len(m) && (m[i][1] != strings.TrimPrefix(w.subject, "introspect.revocations.") || m[i][2] != strconv.FormatUint(last+uint64(i)+1, 10)) {
				t.Errorf("%s: stdout %q, want %s event seq %d", tt.name, stdout, w.subject, last+uint64(i)+1)
			}
			if strings.HasSuffix(w.body, "}") {
				if g.body != w.body {
					t.Errorf("%s: message %d body\n got %s\nwant %s", tt.name, i, g.body, w.body)
				}
				continue
			}
			// Body ends in a time near now: check the prefix and the value.
			rest, ok := strings.CutPrefix(g.body, w.body)
			n, err := strconv.ParseInt(strings.TrimSuffix(rest, "}"), 10, 64)
			want := now + int64(tt.approxExp/time.Second)
			if !ok || !strings.HasSuffix(rest, "}") || err != nil || n < want-2 || n > want+60 {
				t.Errorf("%s: message %d body %s, want %s<about %d>}", tt.name, i, g.body, w.body, want)
			}
		}
		last = newLast
	}

	// The token event of a twin-capable (ECDSA) JWT carries the hash of the
	// exact string: stdout names it by its first 12 hex digits only.
	_, stdout, _ := runT(t, "", "revoke", "-nats", url, "-token", withJTI)
	if !strings.Contains(stdout, "token sha256 "+hexSum(withJTI)[:12]+")") {
		t.Errorf("stdout %q, want the token's 12-digit hash prefix", stdout)
	}

	t.Run("no stream", func(t *testing.T) {
		code, _, stderr := runT(t, "", "revoke", "-nats", url, "-subject", "elsewhere.revocations", "-sub", "a", "-iss", "i", "-timeout", "2s")
		if code != exitFailure || !strings.Contains(stderr, "stream") {
			t.Errorf("exit %d %q, want 1 naming the missing stream", code, stderr)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		code, _, stderr := runT(t, "", "revoke", "-nats", "nats://u:hunter2@127.0.0.1:1", "-sub", "a", "-iss", "i", "-timeout", "2s")
		if code != exitFailure || !strings.Contains(stderr, "connect to NATS") || strings.Contains(stderr, "hunter2") {
			t.Errorf("exit %d %q, want 1, connect error, password redacted", code, stderr)
		}
	})
}

func TestTokenEvents(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	enc := func(payload string) string {
		return "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	tests := []struct {
		name    string
		tok     string
		expAt   int64
		wantExp int64
		wantJTI string
	}{
		{name: "jwt exp", tok: enc(`{"exp":1767225600,"jti":"j","iss":"i"}`), wantExp: 1767225600, wantJTI: "j"},
		{name: "later -exp wins", tok: enc(`{"exp":1767225600,"jti":"j"}`), expAt: 1767225601, wantExp: 1767225601, wantJTI: "j"},
		{name: "earlier -exp loses", tok: enc(`{"exp":1767225600}`), expAt: 1700000001, wantExp: 1767225600},
		{name: "fractional exp", tok: enc(`{"exp":1767225600.2}`), wantExp: 1767225601},
		{name: "string exp", tok: enc(`{"exp":"1767225600"}`), wantExp: now.Unix() + 86400},
		{name: "no exp", tok: enc(`{"jti":"j"}`), wantExp: now.Unix() + 86400, wantJTI: "j"},
		{name: "jti not a string", tok: enc(`{"jti":5}`), wantExp: now.Unix() + 86400},
		{name: "opaque", tok: "abc", wantExp: now.Unix() + 86400},
		{name: "opaque -exp", tok: "abc", expAt: 1767225600, wantExp: 1767225600},
		{name: "payload not JSON", tok: "a.b.c", wantExp: now.Unix() + 86400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs := tokenEvents(tt.tok, tt.expAt, now)
			if evs[0].TokenSHA256 != sha256.Sum256([]byte(tt.tok)) || evs[0].Exp != tt.wantExp {
				t.Errorf("token event exp %d, want %d", evs[0].Exp, tt.wantExp)
			}
			gotJTI := ""
			if len(evs) == 2 {
				gotJTI = evs[1].Jti
				if evs[1].Exp != tt.wantExp {
					t.Errorf("jti event exp %d, want %d", evs[1].Exp, tt.wantExp)
				}
			}
			if gotJTI != tt.wantJTI || len(evs) > 2 {
				t.Errorf("%d events, jti %q; want jti %q", len(evs), gotJTI, tt.wantJTI)
			}
			for _, ev := range evs {
				if err := ev.Validate(); err != nil {
					t.Errorf("event %s: %v", ev.Kind, err)
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	t.Setenv("TOKENCTL_CLIENT_SECRET", "")
	t.Setenv("TOKENCTL_NATS_PASSWORD", "")
	priv, _ := makeKeys(t, "EdDSA")
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"keys", "-nope"}, "-nope"},
		{[]string{"keys", "-out-private", "a", "-out-jwks", "b"}, "-alg is required"},
		{[]string{"keys", "-alg", "HS256", "-out-private", "a", "-out-jwks", "b"}, "-alg"},
		{[]string{"keys", "-alg", "ES256", "-bits", "4096", "-out-private", "a", "-out-jwks", "b"}, "-bits"},
		{[]string{"keys", "-alg", "RS256", "-bits", "1024", "-out-private", "a", "-out-jwks", "b"}, "-bits"},
		{[]string{"keys", "-alg", "ES256", "-out-jwks", "b"}, "-out-private"},
		{[]string{"keys", "-alg", "ES256", "-out-private", "a"}, "-out-jwks"},
		{[]string{"keys", "-alg", "ES256", "-out-private", "a", "-out-jwks", "./a"}, "same file"},
		{[]string{"mint", "-iss", "i", "-sub", "s"}, "-key"},
		{[]string{"mint", "-key", priv, "-sub", "s"}, "-iss"},
		{[]string{"mint", "-key", priv, "-iss", "i"}, "-sub"},
		{[]string{"mint", "-key", priv, "-iss", "i", "-sub", "s", "-ttl", "-1h"}, "-ttl"},
		{[]string{"mint", "-key", priv, "-iss", "i", "-sub", "s", "-ttl", "soon"}, "-ttl"},
		{[]string{"mint", "-key", priv, "-iss", "i", "-sub", "s", "-claim", "novalue"}, "-claim"},
		{[]string{"mint", "-dev-server", "http://127.0.0.1:1", "-claim", "a=b", "-iss", "i"}, "-claim, -iss cannot be used with -dev-server"},
		{[]string{"mint", "-dev-server", "localhost:8080"}, "-dev-server"},
		{[]string{"introspect", "-token", "t"}, "-url is required"},
		{[]string{"introspect", "-url", "ftp://x", "-token", "t"}, "-url"},
		{[]string{"introspect", "-url", "http://x"}, "-token"},
		{[]string{"introspect", "-url", "http://x", "-token", "t", "-token-file", "f"}, "-token and -token-file"},
		{[]string{"introspect", "-url", "http://x", "-client-id", "gw", "-token", "t"}, "-client-secret"},
		{[]string{"introspect", "-url", "http://x", "-client-secret", "s", "-token", "t"}, "-client-id"},
		{[]string{"introspect", "-url", "http://x", "-client-id", "a:b", "-client-secret", "s", "-token", "t"}, "-client-id"},
		{[]string{"revoke"}, "-token, -token-file, -jti, -sub, -client"},
		{[]string{"revoke", "-jti", "x"}, "-exp"},
		{[]string{"revoke", "-jti", "x", "-exp", "tomorrow"}, "-exp"},
		{[]string{"revoke", "-jti", "x", "-exp", "1767225600", "-ttl", "1h"}, "-exp and -ttl"},
		{[]string{"revoke", "-sub", "a"}, "-iss"},
		{[]string{"revoke", "-client", "c"}, "-iss"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-not-before", "yesterday"}, "-not-before"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-exp", "1767225600"}, "-exp cannot be used with -sub"},
		{[]string{"revoke", "-jti", "a", "-sub", "b"}, "-jti and -sub"},
		{[]string{"revoke", "-token", "t", "-iss", "i"}, "-iss cannot be used with -token"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-subject", "introspect.*"}, "-subject"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-creds", "c", "-user", "u"}, "-creds and -user"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-password", "p"}, "-password needs -user"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-user", "u"}, "-password"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-nats", "http://x:4222"}, "-nats"},
		{[]string{"revoke", "-sub", "a", "-iss", "i", "-timeout", "0s"}, "-timeout"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runT(t, "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}

	t.Run("positional argument not echoed", func(t *testing.T) {
		code, _, stderr := runT(t, "", "revoke", "-sub", "a", "-iss", "i", "eyJSECRET.TOKEN.x")
		if code != exitUsage || strings.Contains(stderr, "SECRET") {
			t.Errorf("exit %d %q, want 2 without the argument", code, stderr)
		}
		code, _, stderr = runT(t, "", "eyJSECRET.TOKEN.x")
		if code != exitUsage || strings.Contains(stderr, "SECRET") {
			t.Errorf("exit %d %q, want 2 without the argument", code, stderr)
		}
	})

	t.Run("help", func(t *testing.T) {
		code, stdout, _ := runT(t, "", "-h")
		if code != 0 {
			t.Errorf("tokenctl -h: exit %d, want 0", code)
		}
		for _, c := range commands {
			if !strings.Contains(stdout, "  "+c.name+" ") {
				t.Errorf("tokenctl -h does not list %s", c.name)
			}
			code, stdout, _ := runT(t, "", c.name, "-h")
			if code != 0 || !strings.Contains(stdout, "Usage: tokenctl "+c.name) || !strings.Contains(stdout, "Examples:") {
				t.Errorf("tokenctl %s -h: exit %d, output %q", c.name, code, stdout)
			}
		}
	})
}
