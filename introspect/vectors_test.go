package introspect

// Shared helpers for the external test vectors (wycheproof_test.go,
// cookbook_test.go). The vectors are read in place from the shared testdata
// directory and never copied into the repository.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testdataEnv overrides where the shared vectors live.
const testdataEnv = "INTROSPECTD_TESTDATA"

// vecNow is the verifiers' clock, so that the claim sets we sign ourselves
// (claims(vecNow, …)) are valid and the runs are reproducible.
var vecNow = time.Unix(1_700_000_000, 0)

// asymAlgs is the widest allow-list an issuer can have without an HMAC
// secret; hmacAlgs are added only where a test configures one.
var (
	asymAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
)

// vectorsDir returns the shared testdata directory joined with sub. A
// missing directory fails the test: these vectors are part of what CI must
// check, so they are never silently skipped.
func vectorsDir(t testing.TB, sub string) string {
	t.Helper()
	root := os.Getenv(testdataEnv)
	if root == "" {
		root = filepath.Join("..", "..", "shared", "testdata")
	}
	dir := filepath.Join(root, sub)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("test vectors not found at %s (set %s to the directory holding wycheproof/ and jose-cookbook/): %v",
			dir, testdataEnv, err)
	}
	return dir
}

// readVectors decodes one JSON vector file into v.
func readVectors(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// privateJWKMembers are the JWK members that carry private key material of
// RSA, EC and OKP keys (RFC 7518 §6, RFC 8037 §2).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// publicJWK returns jwk without its private members. Symmetric keys keep k:
// for them there is no public half, and the loader must refuse them anyway.
func publicJWK(t testing.TB, jwk json.RawMessage) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatalf("jwk: %v", err)
	}
	for _, k := range privateJWKMembers {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksOf wraps JWKs into a JWK Set document.
func jwksOf(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string][]json.RawMessage{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwkFromDER turns an X.509 SubjectPublicKeyInfo into a JWK, for vector
// groups that carry no JWK of their own.
func jwkFromDER(t testing.TB, der []byte) json.RawMessage {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("public key DER: %v", err)
	}
	b, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		t.Fatalf("public key to JWK: %v", err)
	}
	return b
}

// newVectorVerifier builds and starts a verifier with one issuer, testIss,
// the way the service does from configuration: keys from jwks (nil for
// none) and, when secret is set, HS* with that secret. An error means the
// configuration is refused, so no token can verify under it.
func newVectorVerifier(t testing.TB, jwks, secret []byte) (*Verifier, error) {
	t.Helper()
	ic := IssuerConfig{Issuer: testIss, JWKS: jwks, Leeway: 30 * time.Second}
	if jwks != nil {
		ic.Algorithms = append(ic.Algorithms, asymAlgs...)
	}
	if secret != nil {
		ic.HMACSecret = secret
		ic.Algorithms = append(ic.Algorithms, hmacAlgs...)
	}
	v, err := NewVerifier([]IssuerConfig{ic}, VerifierOptions{Now: func() time.Time { return vecNow }, Logger: discard()})
	if err != nil {
		return nil, err
	}
	if err := v.Start(context.Background()); err != nil {
		return nil, err
	}
	return v, nil
}

// fallbackVerifier is an issuer that knows none of a vector's keys: the
// ring's asymmetric keys, no HMAC secret. Tokens whose own key the service
// refuses are run against it to show that they still verify nowhere.
func fallbackVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := newVectorVerifier(t, testKeys().jwks(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newVectorChecker puts the cache in front of v, as the service does.
func newVectorChecker(t testing.TB, v *Verifier) *Checker {
	t.Helper()
	c, err := NewChecker(v, CheckerConfig{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// verifySignatureOnly runs the steps of [Verifier.Verify] that decide
// whether a token's signature is good, in the same order and with the same
// functions, and leaves out only the claims: parseJWT's structure and header
// checks (three segments of canonical base64url, header as parseHeader
// wants it), the issuer's algorithm allow-list, key selection by kid and
// alg, then go-jose's ParseSignedCompact and Verify. The issuer is the
// verifier's only one, since the token names none.
//
// Almost no external vector carries a JWT claim set, and Verify refuses a
// payload that is not one (ReasonMalformed) before it looks at the
// signature at all; so Verify alone cannot tell a good signature from a bad
// one on these vectors. An empty payload segment is let through here for the
// same reason: "no payload" is a claims matter (Verify rejects it), not a
// signature one. TestVectorSignatureLayerMatchesVerify keeps this function
// honest against Verify on tokens that do carry claims.
func verifySignatureOnly(ctx context.Context, v *Verifier, tok string) (Reason, error) {
	if len(tok) == 0 || len(tok) > MaxTokenBytes {
		return ReasonMalformed, nil
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return ReasonMalformed, nil
	}
	hdr, err := decodeSegment(h)
	if err != nil {
		return ReasonMalformed, nil
	}
	if p != "" {
		if _, err := decodeSegment(p); err != nil {
			return ReasonMalformed, nil
		}
	}
	if _, err := decodeSegment(s); err != nil {
		return ReasonMalformed, nil
	}
	t := &jwt{raw: tok}
	if t.header, err = parseHeader(hdr); err != nil {
		return ReasonMalformed, nil
	}
	if len(v.issuers) != 1 {
		return 0, fmt.Errorf("verifySignatureOnly: want 1 issuer, have %d", len(v.issuers))
	}
	var is *issuer
	for _, x := range v.issuers {
		is = x
	}
	if !is.algs[t.alg] {
		return ReasonAlgorithm, nil
	}
	t.signingIn = h + "." + p
	if t.sig, err = decodeSegment(s); err != nil {
		return ReasonMalformed, nil
	}
	_, _, r, err := v.checkSignature(ctx, t, is)
	return r, err
}

// verdicts is what one token got from each layer.
type verdicts struct {
	sig      Reason // verifySignatureOnly; ReasonNone: the signature verified
	active   bool   // Verify
	reason   Reason // Verify's reason when inactive
	cached   bool   // Checker.Check said active
	parseErr error  // parseJWT's error, which says which part Verify refused
}

// runVector puts tok through the signature layer, Verify and the Checker.
func runVector(t testing.TB, v *Verifier, c *Checker, tok string) verdicts {
	t.Helper()
	ctx := context.Background()
	var out verdicts
	var err error
	if out.sig, err = verifySignatureOnly(ctx, v, tok); err != nil {
		t.Fatalf("signature layer: %v", err)
	}
	e, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	out.active, out.reason = e.Active(), e.Reason()
	if c != nil {
		ce, err := c.Check(ctx, []byte(tok))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		out.cached = ce.Active()
	}
	_, out.parseErr = parseJWT(tok)
	return out
}

// wantSignatureOnly asserts the outcome for a vector whose payload is not a
// JWT claim set: the signature layer accepts it exactly when wantSig, and
// the service never answers it active. When the signature is good, Verify's
// refusal must come from the claims, never from the signature.
func wantSignatureOnly(t testing.TB, got verdicts, wantSig bool) {
	t.Helper()
	if got.active || got.cached {
		t.Fatalf("token answered active (Verify %v, Check %v); its payload is no claim set", got.active, got.cached)
	}
	if wantSig && got.sig != ReasonNone {
		t.Errorf("signature layer: got %v, want the signature to verify", got.sig)
	}
	if !wantSig && got.sig == ReasonNone {
		t.Errorf("signature layer: the signature verified, want it refused")
	}
	if got.sig == ReasonNone {
		if got.reason == ReasonBadSignature {
			t.Errorf("Verify: got %v for a good signature", got.reason)
		}
		if got.reason != ReasonMalformed || got.parseErr == nil || !strings.Contains(got.parseErr.Error(), "claims") &&
			!strings.Contains(got.parseErr.Error(), "payload: empty") {
			t.Errorf("Verify: got %v (%v), want %v from the claims", got.reason, got.parseErr, ReasonMalformed)
		}
	}
}

// signClaimsLike signs a fresh claim set for testIss with priv under the
// exact protected header a vector used, so that the vector's header and key
// go through Verify whole.
func signClaimsLike(t testing.TB, priv any, header []byte, alg string) string {
	t.Helper()
	return signRaw(t, alg, priv, string(header), mustJSON(t, claims(vecNow, nil)))
}

// privateKeyOf decodes a private JWK into the key signRaw takes.
func privateKeyOf(t testing.TB, jwk json.RawMessage) any {
	t.Helper()
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(jwk); err != nil {
		t.Fatalf("private jwk: %v", err)
	}
	switch k := jk.Key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte:
		return k
	}
	t.Fatalf("private jwk: %T is not a private key", jk.Key)
	return nil
}

// tamper changes one base64url character in the middle of segment seg (0
// header, 1 payload, 2 signature), keeping the spelling canonical, so that
// the token decodes and only the signed bytes or the signature differ.
func tamper(tok string, seg int) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[seg])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[seg] = string(p)
	return strings.Join(parts, ".")
}

// joseVerifyPayload is the service's signature check (verifySignature),
// which the per-algorithm vectors exercise directly: their messages are
// arbitrary bytes that no JWS signing input can equal.
func joseVerifyPayload(pub any, alg string, msg, sig []byte) error {
	return verifySignature(pub, alg, msg, sig)
}
