package introspect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksServer is a real HTTP server publishing a JWKS that tests rotate.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex // guards keys, down, maxAge, gate
	keys     map[string]*ecdsa.PrivateKey
	down     bool
	maxAge   int
	gate     chan struct{} // when set, requests wait for it to close before answering
	requests atomic.Int32
	delay    time.Duration
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]*ecdsa.PrivateKey{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	down, maxAge, gate := s.down, s.maxAge, s.gate
	var set jose.JSONWebKeySet // the keys as the request arrives
	for kid, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(map[string]string{"issuer": s.URL + "/", "jwks_uri": s.URL + "/jwks"})
		return
	case "/jwks":
	default:
		http.NotFound(w, r)
		return
	}
	if maxAge > 0 {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(maxAge))
	}
	json.NewEncoder(w).Encode(set)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (s *jwksServer) add(kid string) *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.mu.Lock()
	s.keys[kid] = k
	s.mu.Unlock()
	return k
}

func (s *jwksServer) remove(kid string) {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
}

func (s *jwksServer) setDown(d bool) {
	s.mu.Lock()
	s.down = d
	s.mu.Unlock()
}

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func remoteChecker(t *testing.T, s *jwksServer, clock *fakeClock, mod func(*IssuerConfig)) *Checker {
	t.Helper()
	ic := IssuerConfig{Issuer: testIss, JWKSURI: s.URL + "/jwks", Algorithms: []string{"ES256"}, RefetchCooldown: 10 * time.Second}
	if mod != nil {
		mod(&ic)
	}
	v, err := NewVerifier([]IssuerConfig{ic}, VerifierOptions{Now: clock.now, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := v.WaitLoaded(wctx); err != nil {
		t.Fatalf("keys not loaded: %v", err)
	}
	c, err := NewChecker(v, CheckerConfig{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func mintWith(t *testing.T, k *ecdsa.PrivateKey, kid string, now time.Time, extra map[string]any) string {
	c := claims(now, extra)
	delete(c, "aud")
	return signRaw(t, "ES256", k, `{"alg":"ES256","kid":"`+kid+`"}`, mustJSON(t, c))
}

func TestJWKSRotation(t *testing.T) {
	s := newJWKSServer(t)
	k1 := s.add("k1")
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c := remoteChecker(t, s, clock, nil)
	ctx := context.Background()

	t1 := mintWith(t, k1, "k1", clock.now(), nil)
	if e, err := c.Check(ctx, []byte(t1)); err != nil || !e.Active() {
		t.Fatalf("k1 token: active=%v err=%v", e.Active(), err)
	}

	// The issuer rotates: a token with the new kid triggers one refetch.
	k2 := s.add("k2")
	before := s.requests.Load()
	t2 := mintWith(t, k2, "k2", clock.now(), nil)
	if e, err := c.Check(ctx, []byte(t2)); err != nil || !e.Active() {
		t.Fatalf("k2 token after rotation: active=%v reason=%v err=%v", e.Active(), e.Reason(), err)
	}
	if got := s.requests.Load() - before; got != 1 {
		t.Fatalf("rotation cost %d fetches, want 1", got)
	}
	// The k1 token, cached, survives the key-set change (k1 still published).
	if e, _ := c.Check(ctx, []byte(t1)); !e.Active() {
		t.Fatal("k1 token inactive after a rotation that kept k1")
	}

	// A flood of invented kids costs at most one fetch per cooldown.
	before = s.requests.Load()
	for i := range 200 {
		tok := mintWith(t, k2, "random-"+itoa(i), clock.now(), map[string]any{"jti": itoa(i)})
		e, err := c.Check(ctx, []byte(tok))
		if err != nil || e.Active() || e.Reason() != ReasonUnknownKey {
			t.Fatalf("random kid %d: active=%v reason=%v err=%v", i, e.Active(), e.Reason(), err)
		}
	}
	if got := s.requests.Load() - before; got > 1 {
		t.Fatalf("kid flood caused %d fetches within one cooldown, want ≤ 1", got)
	}
	// A real rotation during the flood is picked up once the cooldown ends.
	k3 := s.add("k3")
	t3 := mintWith(t, k3, "k3", clock.now(), nil)
	if e, _ := c.Check(ctx, []byte(t3)); e.Active() {
		t.Fatal("k3 accepted before any fetch could have seen it")
	}
	clock.advance(11 * time.Second)
	if e, err := c.Check(ctx, []byte(t3)); err != nil || !e.Active() {
		t.Fatalf("k3 token after cooldown: active=%v reason=%v err=%v", e.Active(), e.Reason(), err)
	}

	// The issuer withdraws k1: its cached token must not stay active.
	s.remove("k1")
	clock.advance(11 * time.Second)
	unknown := mintWith(t, k2, "other", clock.now(), nil)
	c.Check(ctx, []byte(unknown)) // forces the refetch that sees k1 gone
	if e, _ := c.Check(ctx, []byte(t1)); e.Active() {
		t.Fatal("token of a withdrawn key still active")
	}
}

// TestUnknownKidRefetchesAfresh: a token with a new kid must be judged by a
// fetch that started after it arrived, not by one already in flight, whose
// answer may predate the key (issuer publishes k2, then issues k2 tokens).
func TestUnknownKidRefetchesAfresh(t *testing.T) {
	s := newJWKSServer(t)
	s.add("k1")
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c := remoteChecker(t, s, clock, nil)
	ks := c.v.issuers[testIss].keys

	// The start-up fetch may still be finishing (WaitLoaded returns once
	// keys are in): let it, so that the refresh below is a fetch of its own.
	if _, err := ks.fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	before := s.requests.Load()
	go func() { _, _ = ks.fetch(context.Background()) }() // a refresh, held by the issuer
	for deadline := time.Now().Add(5 * time.Second); s.requests.Load() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(gate)
			t.Fatal("the refresh never reached the issuer")
		}
	}
	k2 := s.add("k2")
	t2 := mintWith(t, k2, "k2", clock.now(), nil)
	type verdict struct {
		e   *Entry
		err error
	}
	done := make(chan verdict)
	go func() {
		e, err := c.Check(context.Background(), []byte(t2))
		done <- verdict{e, err}
	}()
	// Let the check reach the refetch and meet the held refresh; if it
	// has not by then, it fetches k2 itself and the test proves nothing,
	// but it cannot fail wrongly.
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	s.gate = nil
	s.mu.Unlock()
	close(gate)
	v := <-done
	if v.err != nil || !v.e.Active() {
		t.Fatalf("token of a key published during a refresh: active=%v reason=%v err=%v", v.e != nil && v.e.Active(), v.e.Reason(), v.err)
	}
}

func TestJWKSUnreachable(t *testing.T) {
	s := newJWKSServer(t)
	k1 := s.add("k1")
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c := remoteChecker(t, s, clock, nil)
	ctx := context.Background()
	t1 := mintWith(t, k1, "k1", clock.now(), nil)

	s.setDown(true)
	// Known kid: last good keys keep working.
	if e, err := c.Check(ctx, []byte(t1)); err != nil || !e.Active() {
		t.Fatalf("known kid with issuer down: active=%v err=%v", e.Active(), err)
	}
	// Unknown kid while the issuer is down: no verdict, never inactive.
	k2 := s.add("k2")
	t2 := mintWith(t, k2, "k2", clock.now(), nil)
	if _, err := c.Check(ctx, []byte(t2)); !errors.Is(err, ErrUndecidable) {
		t.Fatalf("unknown kid with issuer down: err=%v, want ErrUndecidable", err)
	}
	// Back up: after the cooldown the new key is fetched.
	s.setDown(false)
	clock.advance(11 * time.Second)
	if e, err := c.Check(ctx, []byte(t2)); err != nil || !e.Active() {
		t.Fatalf("after recovery: active=%v err=%v", e.Active(), err)
	}
}

func TestJWKSNeverLoadedIsNotReady(t *testing.T) {
	s := newJWKSServer(t)
	s.setDown(true)
	v, err := NewVerifier([]IssuerConfig{{Issuer: testIss, JWKSURI: s.URL + "/jwks", Algorithms: []string{"ES256"}}}, VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, why := v.Ready(); ok || !strings.Contains(why, testIss) {
		t.Fatalf("Ready = %v %q, want not ready naming the issuer", ok, why)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Verify(ctx, mintWith(t, k, "k1", time.Now(), nil)); !errors.Is(err, ErrUndecidable) {
		t.Fatalf("Verify with no keys ever loaded: %v, want ErrUndecidable", err)
	}
}

func TestJWKSConcurrentFetchesShareOne(t *testing.T) {
	s := newJWKSServer(t)
	s.add("k1")
	s.delay = 100 * time.Millisecond
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c := remoteChecker(t, s, clock, func(ic *IssuerConfig) { ic.RefetchCooldown = time.Nanosecond })
	ks := c.v.issuers[testIss].keys
	before := s.requests.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); ks.fetch(context.Background()) }()
	}
	wg.Wait()
	if got := s.requests.Load() - before; got > 2 {
		t.Fatalf("20 concurrent fetches made %d requests", got)
	}
}

func TestDiscovery(t *testing.T) {
	s := newJWKSServer(t)
	k1 := s.add("k1")
	iss := s.URL + "/"
	v, err := NewVerifier([]IssuerConfig{{Issuer: iss, Discovery: true, Algorithms: []string{"ES256"}}}, VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	c := claims(time.Now(), map[string]any{"iss": iss, "aud": nil})
	tok := signRaw(t, "ES256", k1, `{"alg":"ES256","kid":"k1"}`, mustJSON(t, c))
	if e, err := v.Verify(ctx, tok); err != nil || !e.Active() {
		t.Fatalf("discovered keys: active=%v reason=%v err=%v", e.Active(), e.Reason(), err)
	}
}

func TestRefreshAfter(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", 15 * time.Minute},
		{"max-age=300", 5 * time.Minute},
		{"public, max-age=3600, must-revalidate", time.Hour},
		{"max-age=1", minRefresh},
		{"max-age=99999999", maxRefresh},
		{"max-age=abc", 15 * time.Minute},
		{"no-cache", 15 * time.Minute},
	} {
		if got := refreshAfter(tc.cc, 15*time.Minute); got != tc.want {
			t.Errorf("refreshAfter(%q) = %v, want %v", tc.cc, got, tc.want)
		}
	}
}

func TestJWKSLoadRefusals(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(keys ...jose.JSONWebKey) []byte {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		return b
	}
	for _, tc := range []struct {
		name string
		jwks []byte
		keys int
	}{
		{"RSA 1024 refused", mk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"}), 0},
		{"symmetric refused", mk(jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: "hs"}), 0},
		{"enc key refused", mk(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "e", Use: "enc"}), 0},
		{"alg mismatching key refused", mk(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "e", Algorithm: "RS256"}), 0},
		{"bad keys skipped, good kept", mk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"}, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "ok"}), 1},
		{"not JSON", []byte("nope"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := parseJWKS(tc.jwks, discardLogger())
			if tc.keys == 0 {
				if err == nil {
					t.Fatalf("accepted %d keys", ks.len())
				}
				return
			}
			if err != nil || ks.len() != tc.keys {
				t.Fatalf("keys = %d, err %v; want %d", ks.len(), err, tc.keys)
			}
		})
	}
}

// TestRotationConcurrentTokensWaitForRefetch: many distinct tokens with a
// new kid arrive together while one refetch is slow: all of them wait for
// that refetch and verify, and it stays one request.
func TestRotationConcurrentTokensWaitForRefetch(t *testing.T) {
	s := newJWKSServer(t)
	s.add("k1")
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	c := remoteChecker(t, s, clock, nil)
	k2 := s.add("k2")
	s.delay = 200 * time.Millisecond
	before := s.requests.Load()
	var wg sync.WaitGroup
	var inactive atomic.Int32
	for i := range 10 {
		tok := mintWith(t, k2, "k2", clock.now(), map[string]any{"jti": itoa(i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e, err := c.Check(context.Background(), []byte(tok)); err != nil || !e.Active() {
				inactive.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := inactive.Load(); n > 0 {
		t.Fatalf("%d of 10 new-kid tokens not active during a rotation", n)
	}
	if got := s.requests.Load() - before; got != 1 {
		t.Fatalf("%d fetches, want 1", got)
	}
}

func TestInlineKeysReportLoadTime(t *testing.T) {
	c := newTestChecker(t, nil, nil)
	st := c.Verifier().Stats()
	if len(st.Issuers) != 1 || st.Issuers[0].LastSuccess.IsZero() || st.Issuers[0].Keys != 5 {
		t.Fatalf("issuer stats %+v, want 5 keys and a load time", st.Issuers)
	}
}
