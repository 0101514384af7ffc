package service

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/introspectd/introspectd/internal/config"
	"github.com/introspectd/introspectd/internal/testcert"
)

// issuerServer is a real HTTP server that publishes a JWKS the test
// rotates, and signs tokens with the keys it publishes.
type issuerServer struct {
	*httptest.Server
	mu   sync.Mutex // guards keys
	keys map[string]any
}

func newIssuerServer(t *testing.T) *issuerServer {
	s := &issuerServer{keys: map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range s.keys {
			var pub any
			switch k := k.(type) {
			case *ecdsa.PrivateKey:
				pub = &k.PublicKey
			case *rsa.PrivateKey:
				pub = &k.PublicKey
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
		}
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *issuerServer) iss() string { return s.URL + "/" }

func (s *issuerServer) addKey(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.keys[kid] = k
	s.mu.Unlock()
}

func (s *issuerServer) removeKey(kid string) {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
}

func (s *issuerServer) mint(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	s.mu.Lock()
	k := s.keys[kid]
	s.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := map[string]any{"iss": s.iss(), "sub": "alice", "aud": "orders-api", "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprintf("jti-%d", now.UnixNano()), "scope": "read"}
	for k, v := range claims {
		c[k] = v
	}
	payload, _ := json.Marshal(c)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func testConfig(t *testing.T, is *issuerServer, dataDir string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	iss := config.DefaultIssuer()
	iss.Issuer = is.iss()
	iss.JWKSURI = is.URL + "/jwks"
	iss.Algorithms = []string{"ES256"}
	iss.Audiences = []string{"orders-api"}
	iss.RefetchCooldown = config.Duration(100 * time.Millisecond)
	cfg.Issuers = []config.Issuer{iss}
	cfg.Clients = []config.Client{{ID: "gateway", Secret: "gateway-secret"}}
	cfg.NATS.DataDir = dataDir
	cfg.Revocation.MaxStaleness = config.Duration(5 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func startService(t *testing.T, cfg *config.Config, opts Options) *Service {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	return svc
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 15s", base)
}

type answer struct {
	status int
	body   string
	hdr    http.Header
}

func post(t *testing.T, client *http.Client, base, path, tok string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("gateway", "gateway-secret")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

// rawHTTP sends one request as raw bytes, header names as written, and
// returns the answer's status and body.
func rawHTTP(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func isActive(a answer) bool { return a.status == 200 && strings.HasPrefix(a.body, `{"active":true`) }

// TestEndToEnd runs the real server over loopback: JWKS from a real HTTP
// server that rotates keys, revocation through the embedded NATS, and a
// restart that must keep the revocation.
func TestEndToEnd(t *testing.T) {
	is := newIssuerServer(t)
	is.addKey(t, "k1")
	dataDir := t.TempDir()
	cfg := testConfig(t, is, dataDir)
	svc := startService(t, cfg, Options{})
	base := "http://" + svc.Addr()
	waitReady(t, base)
	client := &http.Client{Timeout: 5 * time.Second}

	t1 := is.mint(t, "k1", nil)
	if a := post(t, client, base, "/introspect", t1); !isActive(a) || a.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("k1 token: %d %s %v", a.status, a.body, a.hdr)
	}
	// Header names arrive in any case (HTTP/2 front ends send them
	// lowercase): the handler must find every one it reads.
	form := url.Values{"token": {t1}}.Encode()
	basic := base64.StdEncoding.EncodeToString([]byte("gateway:gateway-secret"))
	for _, tc := range []struct {
		name, raw string
		status    int
		prefix    string
	}{
		{"introspect, lowercase", "POST /introspect HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\nauthorization: Basic " + basic +
			fmt.Sprintf("\r\ncontent-length: %d\r\n\r\n", len(form)) + form, 200, `{"active":true`},
		{"authz, lowercase", "GET /authz HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + t1 + "\r\n\r\n", 200, ""},
		// Refused only if x-original-uri was read: %zz is no path.
		{"authz, original URI", "GET /authz HTTP/1.1\r\nhost: x\r\nAUTHORIZATION: Bearer " + t1 + "\r\nx-original-uri: /%zz\r\n\r\n", 400, ""},
	} {
		status, body := rawHTTP(t, svc.Addr(), tc.raw)
		if status != tc.status || !strings.HasPrefix(body, tc.prefix) {
			t.Errorf("%s: %d %s, want %d %s...", tc.name, status, body, tc.status, tc.prefix)
		}
	}

	// Rotation: a new key shows up in the JWKS; its first token pulls it in.
	is.addKey(t, "k2")
	t2 := is.mint(t, "k2", nil)
	if a := post(t, client, base, "/introspect", t2); !isActive(a) {
		t.Fatalf("k2 token after rotation: %s", a.body)
	}
	// The old key is withdrawn: once the JWKS is refetched its tokens die.
	is.removeKey("k1")
	time.Sleep(150 * time.Millisecond) // past the refetch cooldown
	post(t, client, base, "/introspect", is.mint(t, "k2", map[string]any{"kid-probe": true}))
	unknown := strings.Replace(t2, strings.Split(t2, ".")[0], b64JSON(`{"alg":"ES256","kid":"k9"}`), 1)
	post(t, client, base, "/introspect", unknown) // unknown kid: forces the refetch
	if a := post(t, client, base, "/introspect", t1); isActive(a) {
		t.Fatalf("token of withdrawn key k1 still active: %s", a.body)
	}

	// Revocation through /revoke, visible at once on this node.
	if a := post(t, client, base, "/revoke", t2); a.status != 200 {
		t.Fatalf("/revoke: %d %s", a.status, a.body)
	}
	waitFor(t, "revoked token inactive", func() bool { return !isActive(post(t, client, base, "/introspect", t2)) })

	// Metrics are served.
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"introspectd_requests_total", "introspectd_revocation_applied_sequence", "introspectd_jwks_keys"} {
		if !strings.Contains(string(mb), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// Restart on the same store: the revoked token stays revoked.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	svc2 := startService(t, testConfig(t, is, dataDir), Options{})
	base2 := "http://" + svc2.Addr()
	// Before and after ready, never active.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		a := post(t, client, base2, "/introspect", t2)
		if isActive(a) {
			t.Fatalf("restarted node answered a revoked token active: %s", a.body)
		}
		if a.status == 200 {
			break
		}
	}
	waitReady(t, base2)
	if a := post(t, client, base2, "/introspect", t2); isActive(a) || a.status != 200 {
		t.Fatalf("after restart: %d %s", a.status, a.body)
	}
	t3 := is.mint(t, "k2", nil)
	if a := post(t, client, base2, "/introspect", t3); !isActive(a) {
		t.Fatalf("fresh token after restart: %s", a.body)
	}
}

// TestNotReplayedAnswers503 points the node at a NATS server that does not
// exist: it must start, stay not ready, and answer 503 — never decide on a
// token without its revocation history.
func TestNotReplayedAnswers503(t *testing.T) {
	is := newIssuerServer(t)
	is.addKey(t, "k1")
	cfg := testConfig(t, is, t.TempDir())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	cfg.NATS.URL = "nats://" + dead
	svc := startService(t, cfg, Options{})
	base := "http://" + svc.Addr()
	client := &http.Client{Timeout: 5 * time.Second}
	a := post(t, client, base, "/introspect", is.mint(t, "k1", nil))
	if a.status != 503 || a.body != `{"error":"temporarily_unavailable"}` || a.hdr.Get("Retry-After") == "" {
		t.Fatalf("without history: %d %s", a.status, a.body)
	}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "nats") {
		t.Fatalf("/readyz = %d %s", resp.StatusCode, body)
	}
	if resp, _ := client.Get(base + "/healthz"); resp == nil || resp.StatusCode != 200 {
		t.Fatal("/healthz not 200")
	}
}

// TestIssuerUnreachable503: a token whose issuer's JWKS cannot be fetched
// is undecidable: 503, not inactive.
func TestIssuerUnreachable503(t *testing.T) {
	is := newIssuerServer(t)
	is.addKey(t, "k1")
	tok := is.mint(t, "k1", nil)
	cfg := testConfig(t, is, t.TempDir())
	is.Close()
	svc := startService(t, cfg, Options{})
	base := "http://" + svc.Addr()
	client := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, "history replayed", func() bool { return svc.replayed.Load() })
	if a := post(t, client, base, "/introspect", tok); a.status != 503 {
		t.Fatalf("issuer down, key never loaded: %d %s", a.status, a.body)
	}
}

func TestTLSAndReload(t *testing.T) {
	is := newIssuerServer(t)
	is.addKey(t, "k1")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	cfg := testConfig(t, is, t.TempDir())
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	svc := startService(t, cfg, Options{})
	cn := func() string {
		conn, err := tls.Dial("tcp", svc.Addr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatalf("tls dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("CN = %q", got)
	}
	if _, err := tls.Dial("tcp", svc.Addr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	writeCert(t, certFile, keyFile, "second")
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, future, future)
	if err := svc.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "second" {
		t.Fatalf("after reload CN = %q", got)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitReady2(t, client, "https://"+svc.Addr())
	if a := post(t, client, "https://"+svc.Addr(), "/introspect", is.mint(t, "k1", nil)); !isActive(a) {
		t.Fatalf("over TLS: %d %s", a.status, a.body)
	}
}

func waitReady2(t *testing.T, c *http.Client, base string) {
	waitFor(t, "ready", func() bool {
		resp, err := c.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func writeCert(t *testing.T, certFile, keyFile, cn string) {
	cert, _ := testcert.New(t, cn)
	kb, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	for file, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func b64JSON(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestFasthttpLoggerKeepsNoRequestBytes: fasthttp quotes the bytes of a
// request it could not parse; none of them may reach the log.
func TestFasthttpLoggerKeepsNoRequestBytes(t *testing.T) {
	var buf strings.Builder
	l := fasthttpLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf("error when serving connection %q<->%q: %v", "a", "b", "contents: Authorization: Bearer s3cret-token")
	if strings.Contains(buf.String(), "s3cret") {
		t.Fatalf("request bytes logged: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "fasthttp") {
		t.Fatalf("nothing logged: %q", buf.String())
	}
}
