package introspect

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/introspectd/introspectd/revocation"
)

const (
	testClientID     = "gateway"
	testClientSecret = "s3cret-s3cret"
)

type handlerEnv struct {
	h    *Handler
	chk  *Checker
	deny *revocation.DenyList
	ln   *fasthttputil.InmemoryListener
	pub  *recordingPublisher
}

type recordingPublisher struct {
	events []revocation.Event
	fail   atomic.Bool
}

func (p *recordingPublisher) Publish(_ context.Context, ev ...revocation.Event) (uint64, error) {
	if p.fail.Load() {
		return 0, context.DeadlineExceeded
	}
	p.events = append(p.events, ev...)
	return uint64(len(p.events)), nil
}

func newHandlerEnv(t testing.TB, mod func(*HandlerConfig)) *handlerEnv {
	t.Helper()
	deny := revocation.NewDenyList(revocation.DenyListConfig{Leeway: 30 * time.Second, MaxTokenLifetime: 24 * time.Hour})
	chk := newTestChecker(t, nil, deny)
	pub := &recordingPublisher{}
	cfg := HandlerConfig{
		Checker: chk,
		Clients: []Client{
			{ID: testClientID, SecretSHA256: sha256.Sum256([]byte(testClientSecret))},
			{ID: "billing", SecretSHA256: sha256.Sum256([]byte("billing-secret")), Audiences: []string{"billing-api"}},
		},
		Routes: []Route{
			{PathPrefix: "/admin", Methods: []string{"POST", "DELETE"}, Scopes: []string{"admin"}},
			{PathPrefix: "/orders", Scopes: []string{"read"}},
		},
		Publisher: pub,
	}
	if mod != nil {
		mod(&cfg)
	}
	h := NewHandler(cfg)
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.ServeHTTP, ErrorHandler: ErrorHandler, MaxRequestBodySize: 16 << 10}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Shutdown(); ln.Close() })
	return &handlerEnv{h: h, chk: chk, deny: deny, ln: ln, pub: pub}
}

type resp struct {
	status int
	body   string
	hdr    map[string]string
}

func (e *handlerEnv) do(t testing.TB, method, path string, hdr map[string]string, body string) resp {
	t.Helper()
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://introspectd" + path)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.SetBodyString(body)
	// The request is written on its own connection and the answer read
	// whatever became of the write: a server that refuses a body too large
	// answers 413 and closes while the body is still arriving, and
	// fasthttp's client then reports the failed write, not the answer
	// (9% of runs under -race).
	c, err := e.ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		w := bufio.NewWriter(c)
		if req.Write(w) == nil {
			w.Flush() //nolint:errcheck // see above
		}
	}()
	err = res.Read(bufio.NewReader(c))
	c.Close() // ends a write still blocked, before req is released
	<-written
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	out := resp{status: res.StatusCode(), body: string(res.Body()), hdr: map[string]string{}}
	for k, v := range res.Header.All() {
		out.hdr[string(k)] = string(v)
	}
	return out
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func form(tok string) string { return url.Values{"token": {tok}}.Encode() }

var formCT = map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic(testClientID, testClientSecret)}

func withHdr(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestIntrospectHTTP(t *testing.T) {
	env := newHandlerEnv(t, nil)
	k := testKeys()
	now := time.Now()
	good := k.mint(t, "ES256", claims(now, nil))
	billingTok := k.mint(t, "ES256", claims(now, map[string]any{"aud": []string{"orders-api", "billing-api"}}))

	tests := []struct {
		name       string
		method     string
		hdr        map[string]string
		body       string
		wantStatus int
		wantBody   string // exact, when set
		wantHdr    map[string]string
		active     *bool
	}{
		{name: "active", method: "POST", hdr: formCT, body: form(good), wantStatus: 200, active: ptr(true),
			wantHdr: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json"}},
		{name: "bearer client secret", method: "POST", hdr: withHdr(formCT, "Authorization", "Bearer "+testClientSecret), body: form(good), wantStatus: 200, active: ptr(true)},
		{name: "content type with charset", method: "POST", hdr: withHdr(formCT, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), body: form(good), wantStatus: 200, active: ptr(true)},
		{name: "with token_type_hint", method: "POST", hdr: formCT, body: form(good) + "&token_type_hint=access_token", wantStatus: 200, active: ptr(true)},
		{name: "token after another parameter", method: "POST", hdr: formCT, body: "token_type_hint=access_token&token=" + good, wantStatus: 200, active: ptr(true)},
		{name: "percent-encoded token", method: "POST", hdr: formCT, body: "token=" + strings.ReplaceAll(good, ".", "%2E"), wantStatus: 200, active: ptr(true)},
		{name: "token key as a suffix", method: "POST", hdr: formCT, body: "xtoken=" + good, wantStatus: 400},
		{name: "inactive garbage", method: "POST", hdr: formCT, body: form("garbage"), wantStatus: 200, wantBody: `{"active":false}`},
		{name: "no token", method: "POST", hdr: formCT, body: "token_type_hint=access_token", wantStatus: 400, wantBody: `{"error":"invalid_request"}`},
		{name: "empty token", method: "POST", hdr: formCT, body: "token=", wantStatus: 400, wantBody: `{"error":"invalid_request"}`},
		{name: "json body", method: "POST", hdr: withHdr(formCT, "Content-Type", "application/json"), body: `{"token":"x"}`, wantStatus: 415},
		{name: "no content type", method: "POST", hdr: withHdr(formCT, "Content-Type", ""), body: form(good), wantStatus: 415},
		{name: "GET", method: "GET", hdr: formCT, wantStatus: 405, wantHdr: map[string]string{"Allow": "POST"}},
		{name: "PUT", method: "PUT", hdr: formCT, body: form(good), wantStatus: 405, wantHdr: map[string]string{"Allow": "POST"}},
		{name: "no credentials", method: "POST", hdr: withHdr(formCT, "Authorization", ""), body: form(good), wantStatus: 401,
			wantBody: `{"error":"invalid_client"}`, wantHdr: map[string]string{"Www-Authenticate": `Basic realm="introspect"`}},
		{name: "wrong secret", method: "POST", hdr: withHdr(formCT, "Authorization", basic(testClientID, "nope")), body: form(good), wantStatus: 401},
		{name: "unknown client", method: "POST", hdr: withHdr(formCT, "Authorization", basic("nobody", testClientSecret)), body: form(good), wantStatus: 401},
		{name: "wrong bearer", method: "POST", hdr: withHdr(formCT, "Authorization", "Bearer nope"), body: form(good), wantStatus: 401},
		{name: "basic not base64", method: "POST", hdr: withHdr(formCT, "Authorization", "Basic !!!"), body: form(good), wantStatus: 401},
		{name: "body too large", method: "POST", hdr: formCT, body: form(strings.Repeat("a", 17<<10)), wantStatus: 413},
		{name: "audience-restricted caller, other aud", method: "POST", hdr: withHdr(formCT, "Authorization", basic("billing", "billing-secret")), body: form(good), wantStatus: 200, wantBody: `{"active":false}`},
		{name: "audience-restricted caller, its aud", method: "POST", hdr: withHdr(formCT, "Authorization", basic("billing", "billing-secret")), body: form(billingTok), wantStatus: 200, active: ptr(true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do(t, tc.method, "/introspect", tc.hdr, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Errorf("body = %s, want %s", r.body, tc.wantBody)
			}
			for k, v := range tc.wantHdr {
				if r.hdr[k] != v {
					t.Errorf("header %s = %q, want %q", k, r.hdr[k], v)
				}
			}
			if tc.active != nil {
				var got struct {
					Active bool `json:"active"`
				}
				if err := json.Unmarshal([]byte(r.body), &got); err != nil || got.Active != *tc.active {
					t.Errorf("body %s: active want %v", r.body, *tc.active)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRevokedTokenIsInactiveOnHit(t *testing.T) {
	env := newHandlerEnv(t, nil)
	k := testKeys()
	tok := k.mint(t, "ES256", claims(time.Now(), map[string]any{"jti": "j-revoke"}))
	if r := env.do(t, "POST", "/introspect", formCT, form(tok)); !strings.HasPrefix(r.body, `{"active":true`) {
		t.Fatalf("before revocation: %s", r.body)
	}
	// Revoke through /revoke: it must publish a token event and a jti event.
	if r := env.do(t, "POST", "/revoke", formCT, form(tok)); r.status != 200 || r.body != "" {
		t.Fatalf("/revoke = %d %q", r.status, r.body)
	}
	if len(env.pub.events) != 2 {
		t.Fatalf("published %d events, want token and jti", len(env.pub.events))
	}
	for _, ev := range env.pub.events {
		env.deny.Apply(ev)
	}
	if r := env.do(t, "POST", "/introspect", formCT, form(tok)); r.body != `{"active":false}` {
		t.Fatalf("after revocation: %s", r.body)
	}
	// The ECDSA twin is revoked too.
	if r := env.do(t, "POST", "/introspect", formCT, form(flipS(t, tok))); r.body != `{"active":false}` {
		t.Fatalf("twin after revocation: %s", r.body)
	}
	// Revoking a garbage token is a quiet 200 that publishes nothing.
	if r := env.do(t, "POST", "/revoke", formCT, form("garbage")); r.status != 200 {
		t.Fatalf("/revoke garbage = %d", r.status)
	}
	if len(env.pub.events) != 2 {
		t.Fatalf("garbage revocation published events")
	}
	// A publish failure is a loud 503, never a silent 200.
	env.pub.fail.Store(true)
	other := k.mint(t, "ES256", claims(time.Now(), map[string]any{"jti": "j-other"}))
	if r := env.do(t, "POST", "/revoke", formCT, form(other)); r.status != 503 || r.hdr["Retry-After"] == "" {
		t.Fatalf("/revoke with NATS down = %d %v", r.status, r.hdr)
	}
}

func TestFailClosed(t *testing.T) {
	var stale atomic.Bool
	env := newHandlerEnv(t, func(c *HandlerConfig) { c.Unavailable = stale.Load })
	tok := testKeys().mint(t, "ES256", claims(time.Now(), nil))
	if r := env.do(t, "POST", "/introspect", formCT, form(tok)); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	stale.Store(true)
	r := env.do(t, "POST", "/introspect", formCT, form(tok))
	if r.status != 503 || r.body != `{"error":"temporarily_unavailable"}` || r.hdr["Retry-After"] == "" {
		t.Fatalf("stale fail-closed = %d %s %v", r.status, r.body, r.hdr)
	}
}

func TestAuthz(t *testing.T) {
	env := newHandlerEnv(t, func(c *HandlerConfig) { c.ClaimHeaders = nil })
	k := testKeys()
	now := time.Now()
	reader := k.mint(t, "ES256", claims(now, map[string]any{"scope": "read"}))
	admin := k.mint(t, "ES256", claims(now, map[string]any{"scope": nil, "scp": []string{"admin", "read"}}))
	evilSub := k.mint(t, "ES256", claims(now, map[string]any{"sub": "bob\r\nX-Injected: 1"}))
	bearerH := func(tok string, kv ...string) map[string]string {
		return withHdr(map[string]string{"Authorization": "Bearer " + tok}, kv...)
	}
	tests := []struct {
		name    string
		hdr     map[string]string
		status  int
		wantHdr map[string]string
	}{
		{"no token", map[string]string{"X-Original-URI": "/orders"}, 401, map[string]string{"Www-Authenticate": `Bearer realm="introspect"`}},
		{"bad token", bearerH("garbage", "X-Original-URI", "/orders"), 401, map[string]string{"Www-Authenticate": `Bearer realm="introspect", error="invalid_token"`}},
		{"no rule matches", bearerH(reader, "X-Original-URI", "/public", "X-Original-Method", "GET"), 200,
			map[string]string{"X-Auth-Subject": "alice", "X-Auth-Client-Id": "web", "X-Auth-Scope": "read"}},
		{"scope present", bearerH(reader, "X-Forwarded-Uri", "/orders/7?x=1", "X-Forwarded-Method", "GET"), 200, nil},
		{"scope missing", bearerH(reader, "X-Original-URI", "/admin/users", "X-Original-Method", "POST"), 403,
			map[string]string{"Www-Authenticate": `Bearer realm="introspect", error="insufficient_scope", scope="admin"`}},
		{"method not covered", bearerH(reader, "X-Original-URI", "/admin/users", "X-Original-Method", "GET"), 200, nil},
		{"segment boundary", bearerH(reader, "X-Original-URI", "/administrator", "X-Original-Method", "POST"), 200, nil},
		{"dot segments", bearerH(reader, "X-Original-URI", "/public/../admin", "X-Original-Method", "POST"), 403, nil},
		{"percent encoded", bearerH(reader, "X-Original-URI", "/%61dmin", "X-Original-Method", "POST"), 403, nil},
		{"double slash", bearerH(reader, "X-Original-URI", "//admin", "X-Original-Method", "DELETE"), 403, nil},
		{"path parameter", bearerH(reader, "X-Original-URI", "/admin;x/users", "X-Original-Method", "POST"), 403, nil},
		{"encoded path parameter", bearerH(reader, "X-Original-URI", "/admin%3Bx/users", "X-Original-Method", "POST"), 403, nil},
		{"backslash", bearerH(reader, "X-Original-URI", "/x\\..\\admin", "X-Original-Method", "POST"), 403, nil},
		{"absolute URI", bearerH(reader, "X-Original-URI", "http://api.example/admin/users", "X-Original-Method", "POST"), 403, nil},
		{"absolute URI, path parameter", bearerH(reader, "X-Original-URI", "http://api.example/admin;x/users", "X-Original-Method", "POST"), 403, nil},
		{"absolute URI, encoded", bearerH(reader, "X-Original-URI", "http://api.example/%61dmin%3Bx/users", "X-Original-Method", "POST"), 403, nil},
		{"absolute URI, backslash", bearerH(reader, "X-Original-URI", "http://api.example/x\\..\\admin", "X-Original-Method", "POST"), 403, nil},
		{"scp array grants", bearerH(admin, "X-Original-URI", "/admin", "X-Original-Method", "DELETE"), 200,
			map[string]string{"X-Auth-Scope": "admin read"}},
		{"header injection neutralised", bearerH(evilSub, "X-Original-URI", "/public"), 200,
			map[string]string{"X-Auth-Subject": "bob%0D%0AX-Injected: 1"}},
		{"bad path", bearerH(reader, "X-Original-URI", "/%zz"), 400, nil},
		{"bad token before bad path", bearerH("garbage", "X-Original-URI", "/%zz"), 401,
			map[string]string{"Www-Authenticate": `Bearer realm="introspect", error="invalid_token"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := env.do(t, "GET", "/authz", tc.hdr, "")
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.status, r.body)
			}
			for k, v := range tc.wantHdr {
				if r.hdr[k] != v {
					t.Errorf("%s = %q, want %q", k, r.hdr[k], v)
				}
			}
			if _, ok := r.hdr["X-Injected"]; ok {
				t.Error("header injected")
			}
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	var ready atomic.Bool
	env := newHandlerEnv(t, func(c *HandlerConfig) {
		c.Ready = func() (bool, string) { return ready.Load(), "replaying revocations" }
	})
	if r := env.do(t, "GET", "/healthz", nil, ""); r.status != 200 {
		t.Fatalf("/healthz = %d", r.status)
	}
	r := env.do(t, "GET", "/readyz", nil, "")
	if r.status != 503 || !strings.Contains(r.body, "replaying revocations") {
		t.Fatalf("/readyz not ready = %d %s", r.status, r.body)
	}
	ready.Store(true)
	if r := env.do(t, "GET", "/readyz", nil, ""); r.status != 200 {
		t.Fatalf("/readyz ready = %d", r.status)
	}
	if r := env.do(t, "GET", "/nope", nil, ""); r.status != 404 {
		t.Fatalf("/nope = %d", r.status)
	}
}

// hitRequest prepares ctx as a POST /introspect for tok, as the wire
// parser would leave it.
func hitRequest(ctx *fasthttp.RequestCtx, path, auth, body []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethodBytes([]byte("POST"))
	ctx.Request.SetRequestURIBytes(path)
	ctx.Request.Header.SetContentTypeBytes(ctForm)
	ctx.Request.Header.SetBytesKV([]byte("Authorization"), auth)
	ctx.Request.SetBodyRaw(body)
}

func authzRequest(ctx *fasthttp.RequestCtx, auth []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethodBytes([]byte("GET"))
	ctx.Request.SetRequestURIBytes([]byte("/authz"))
	ctx.Request.Header.SetBytesKV([]byte("Authorization"), auth)
	ctx.Request.Header.SetBytesKV([]byte("X-Original-URI"), []byte("/orders/42"))
	ctx.Request.Header.SetBytesKV([]byte("X-Original-Method"), []byte("GET"))
}

// benchHit serves one cached token repeatedly through the handler.
func benchHit(b *testing.B, h fasthttp.RequestHandler, tok string) {
	var ctx fasthttp.RequestCtx
	auth := []byte(basic(testClientID, testClientSecret))
	body := []byte(form(tok))
	path := []byte("/introspect")
	hitRequest(&ctx, path, auth, body)
	h(&ctx)
	if !bytes.HasPrefix(ctx.Response.Body(), []byte(`{"active":true`)) {
		b.Fatalf("warm-up answer: %s", ctx.Response.Body())
	}
	b.ReportAllocs()
	for b.Loop() {
		hitRequest(&ctx, path, auth, body)
		h(&ctx)
	}
}

// BenchmarkIntrospectHit is the hot path: a cached token through the
// fasthttp handler. BenchmarkFixedBody next to it is the floor: the same
// request machinery answering a constant.
func BenchmarkIntrospectHit(b *testing.B) {
	env := newHandlerEnv(b, nil)
	tok := testKeys().mint(b, "ES256", claims(time.Now(), nil))
	benchHit(b, env.h.ServeHTTP, tok)
}

func BenchmarkFixedBody(b *testing.B) {
	fixed := []byte(`{"active":true,"sub":"alice"}`)
	h := func(ctx *fasthttp.RequestCtx) {
		_ = ctx.PostArgs().Peek("token")
		ctx.SetContentTypeBytes(ctJSON)
		ctx.SetBody(fixed)
	}
	tok := testKeys().mint(b, "ES256", claims(time.Now(), nil))
	var ctx fasthttp.RequestCtx
	auth := []byte(basic(testClientID, testClientSecret))
	body := []byte(form(tok))
	b.ReportAllocs()
	for b.Loop() {
		hitRequest(&ctx, []byte("/introspect"), auth, body)
		h(&ctx)
	}
}

func BenchmarkAuthzHit(b *testing.B) {
	env := newHandlerEnv(b, nil)
	tok := testKeys().mint(b, "ES256", claims(time.Now(), nil))
	var ctx fasthttp.RequestCtx
	auth := []byte("Bearer " + tok)
	authzRequest(&ctx, auth)
	env.h.ServeHTTP(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("warm-up status %d", ctx.Response.StatusCode())
	}
	b.ReportAllocs()
	for b.Loop() {
		authzRequest(&ctx, auth)
		env.h.ServeHTTP(&ctx)
	}
}

// BenchmarkVerifyMiss is the miss path per algorithm: a token never seen
// before, verified in full. Tokens are minted before the timer starts.
func BenchmarkVerifyMiss(b *testing.B) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			k := testKeys()
			v := newTestChecker(b, nil, nil).v
			now := time.Now()
			const n = 512
			toks := make([]string, n)
			for i := range toks {
				toks[i] = k.mint(b, alg, claims(now, map[string]any{"jti": strconv.Itoa(i)}))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e, err := v.Verify(context.Background(), toks[i%n])
				if err != nil || !e.Active() {
					b.Fatal("not active")
				}
				i++
			}
		})
	}
}

// BenchmarkIntrospectHitSpread is the hot path as a busy node sees it:
// hits spread over many cached tokens of about 800 bytes, in an order no
// prefetcher can guess, so that what a hit costs in memory misses (the
// cache's slot, the entry, the answer) shows, as it does under load and
// not in BenchmarkIntrospectHit, whose one token stays in the CPU's caches.
func BenchmarkIntrospectHitSpread(b *testing.B) {
	const most = 50000
	k := testKeys()
	now := time.Now()
	pad := strings.Repeat("p", 380) // brings a token to about 800 bytes
	toks := make([][]byte, most)
	for i := range toks {
		toks[i] = []byte(form(k.mint(b, "EdDSA", claims(now, map[string]any{"jti": strconv.Itoa(i), "pad": pad}))))
	}
	deny := revocation.NewDenyList(revocation.DenyListConfig{Leeway: 30 * time.Second, MaxTokenLifetime: 24 * time.Hour})
	chk, err := NewChecker(newTestChecker(b, nil, nil).v, CheckerConfig{MaxBytes: 1 << 30, DenyList: deny})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(chk.Close)
	h := NewHandler(HandlerConfig{Checker: chk, Clients: []Client{{ID: testClientID, SecretSHA256: sha256.Sum256([]byte(testClientSecret))}}})
	auth := []byte(basic(testClientID, testClientSecret))
	path := []byte("/introspect")
	var ctx fasthttp.RequestCtx
	for _, n := range []int{1, 10000, most} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			for _, t := range toks[:n] {
				hitRequest(&ctx, path, auth, t)
				h.ServeHTTP(&ctx)
				chk.pos.Wait()
			}
			for _, t := range toks[:n] { // ristretto admits on its second sight
				hitRequest(&ctx, path, auth, t)
				h.ServeHTTP(&ctx)
				if !bytes.HasPrefix(ctx.Response.Body(), []byte(`{"active":true`)) {
					b.Fatalf("warm-up answer: %s", ctx.Response.Body())
				}
			}
			order := rand.New(rand.NewPCG(1, 2)).Perm(n)
			hits := chk.pos.Stats().Hits
			// Each request is copied into one buffer first, as a server
			// reads it into its connection's buffer: the token's bytes are
			// then in the CPU's caches, and the misses left are the hit's.
			var buf []byte
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf = append(buf[:0], toks[order[i]]...)
				hitRequest(&ctx, path, auth, buf)
				h.ServeHTTP(&ctx)
				if i++; i == n {
					i = 0
				}
			}
			if got := chk.pos.Stats().Hits - hits; got < uint64(b.N) {
				b.Fatalf("%d hits in %d requests", got, b.N)
			}
		})
	}
}

// TestCanonicalNames: every header name the handler reads with PeekCanonical
// is found whatever its case on the wire, as fasthttp's parser (with name
// normalisation on, as the server runs it) hands it over. A name written
// in another form (X-Original-URI for X-Original-Uri) is never found.
func TestCanonicalNames(t *testing.T) {
	for _, name := range [][]byte{hdrAuthorization, hdrForwardedMethod, hdrOriginalMethod, hdrForwardedURI, hdrOriginalURI} {
		for _, wire := range []string{string(name), strings.ToLower(string(name)), strings.ToUpper(string(name))} {
			raw := "GET /authz HTTP/1.1\r\nHost: x\r\n" + wire + ": v\r\n\r\n"
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatalf("%s: %v", wire, err)
			}
			if got := req.Header.PeekCanonical(name); string(got) != "v" {
				t.Errorf("sent as %q, PeekCanonical(%q) = %q, want \"v\"", wire, name, got)
			}
		}
	}
}

// TestTokenTail: the read hook finds the last 16 bytes of the token in the
// bodies clients send, and nothing in chunks that end a header.
func TestTokenTail(t *testing.T) {
	tok := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
	head := "POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
	want := tok[len(tok)-16:]
	for _, tc := range []struct {
		name, chunk, want string
	}{
		{"whole request", head + "token=" + tok, want},
		{"body alone", "token=" + tok, want},
		{"access token hint", "token=" + tok + "&token_type_hint=access_token", want},
		{"refresh token hint", "token=" + tok + "&token_type_hint=refresh_token", want},
		{"header alone", head, ""},
		{"GET", "GET /authz HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\n\r\n", ""},
		{"short", "token=abc", ""},
		{"empty", "", ""},
		{"hint alone", "&token_type_hint=access_token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tokenTail([]byte(tc.chunk))); got != tc.want {
				t.Fatalf("tokenTail = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPrefetchPicksTheTokensSlot: the slot the read hook loads is the one
// the lookup of the token reads.
func TestPrefetchPicksTheTokensSlot(t *testing.T) {
	c := newTestChecker(t, nil, nil)
	tok := []byte(testKeys().mint(t, "ES256", claims(time.Now(), nil)))
	body := append([]byte("token="), tok...)
	body = append(body, "&token_type_hint=access_token"...)
	if got, want := c.keys.Hint(tokenTail(body)), c.keys.Hint(tok); got != want {
		t.Fatalf("read hook's hint %#x, the lookup's %#x", got, want)
	}
}

// claimsHandler is a handler whose /authz passes the claims email, tenant
// and missing on as headers, named as an operator might write them.
func claimsHandler(t testing.TB) *Handler {
	t.Helper()
	ic := IssuerConfig{
		Issuer: testIss, JWKS: testKeys().jwks(t), Audiences: []string{"orders-api"},
		Algorithms: []string{"ES256"}, Typ: []string{"at+jwt"}, Leeway: 30 * time.Second,
	}
	v, err := NewVerifier([]IssuerConfig{ic}, VerifierOptions{Logger: discardLogger(), ClaimHeaders: []string{"email", "tenant", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	chk, err := NewChecker(v, CheckerConfig{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	return NewHandler(HandlerConfig{Checker: chk, ClaimHeaders: []string{"x-user-email", "X-TENANT", "X-Missing"}})
}

// Claim headers go out under their canonical names whatever case the
// configuration used, with the claim's value, and not at all for a claim
// the token lacks.
func TestAuthzClaimHeaders(t *testing.T) {
	h := claimsHandler(t)
	tok := testKeys().mint(t, "ES256", claims(time.Now(), map[string]any{"email": "a@example.com", "tenant": 42}))
	var ctx fasthttp.RequestCtx
	for i := range 2 { // the miss, then the hit
		authzRequest(&ctx, []byte("Bearer "+tok))
		h.ServeHTTP(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("answer %d: status %d", i, ctx.Response.StatusCode())
		}
		wire := string(ctx.Response.Header.Header())
		for _, want := range []string{"\r\nX-User-Email: a@example.com\r\n", "\r\nX-Tenant: 42\r\n", "\r\nX-Auth-Subject: alice\r\n"} {
			if !strings.Contains(wire, want) {
				t.Errorf("answer %d: no %q in\n%s", i, strings.TrimSpace(want), wire)
			}
		}
		if strings.Contains(strings.ToLower(wire), "x-missing") {
			t.Errorf("answer %d: a header for a claim the token lacks:\n%s", i, wire)
		}
	}
}

// BenchmarkAuthzHitClaims is BenchmarkAuthzHit with two claim headers
// configured.
func BenchmarkAuthzHitClaims(b *testing.B) {
	h := claimsHandler(b)
	tok := testKeys().mint(b, "ES256", claims(time.Now(), map[string]any{"email": "a@example.com", "tenant": 42}))
	var ctx fasthttp.RequestCtx
	auth := []byte("Bearer " + tok)
	authzRequest(&ctx, auth)
	h.ServeHTTP(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("warm-up status %d", ctx.Response.StatusCode())
	}
	b.ReportAllocs()
	for b.Loop() {
		authzRequest(&ctx, auth)
		h.ServeHTTP(&ctx)
	}
}
