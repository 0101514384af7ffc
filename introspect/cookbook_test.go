package introspect

// JOSE cookbook (RFC 7520, with the RFC 8037 Ed25519 and RFC 7797 b64
// examples), read in place from ../../shared/testdata/jose-cookbook or
// $INTROSPECTD_TESTDATA/jose-cookbook.
//
// The JWS examples sign a Shakespeare quote, not a claim set, so Verify
// refuses them as malformed before it checks a signature; the signature
// itself is checked by verifySignatureOnly (vectors_test.go). The nested
// example (RFC 7520 §6) does sign a JWT, and goes through Verify whole.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cbOutput is the "output" member of a cookbook example.
type cbOutput struct {
	Compact  string          `json:"compact"`
	JSON     json.RawMessage `json:"json"`
	JSONFlat json.RawMessage `json:"json_flat"`
}

// cbExample is one cookbook JWS, JWE or JWK file.
type cbExample struct {
	Title string `json:"title"`
	Input struct {
		Payload string          `json:"payload"`
		Key     json.RawMessage `json:"key"` // one JWK, or an array of them (4.8)
	} `json:"input"`
	Output cbOutput `json:"output"`
}

func loadCookbook(t testing.TB, file string, v any) {
	t.Helper()
	readVectors(t, filepath.Join(vectorsDir(t, "jose-cookbook"), filepath.FromSlash(file)), v)
}

// keys returns the example's JWKs.
func (e cbExample) keys(t testing.TB) []json.RawMessage {
	t.Helper()
	if len(e.Input.Key) > 0 && e.Input.Key[0] == '[' {
		var ks []json.RawMessage
		if err := json.Unmarshal(e.Input.Key, &ks); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	return []json.RawMessage{e.Input.Key}
}

// serializations returns the JWS JSON serializations of the example as the
// text a caller would send. The service takes compact tokens only.
func (o cbOutput) serializations() map[string]string {
	m := map[string]string{}
	if o.JSON != nil {
		m["json"] = string(o.JSON)
	}
	if o.JSONFlat != nil {
		m["json_flat"] = string(o.JSONFlat)
	}
	return m
}

// cookbookVerifier configures the example's keys the way an operator
// would: asymmetric keys (public half) as the JWKS, a symmetric key as the
// HMAC secret. HMAC keys put in a JWKS must be refused.
func cookbookVerifier(t *testing.T, e cbExample) (*Verifier, *Checker, []any) {
	t.Helper()
	var pubs []json.RawMessage
	var secret []byte
	var privs []any
	for _, k := range e.keys(t) {
		privs = append(privs, privateKeyOf(t, k))
		if s := octSecret(t, k); s != nil {
			if _, err := parseJWKS(jwksOf(t, k), discard()); err == nil {
				t.Errorf("parseJWKS accepted the symmetric key of %q", e.Title)
			}
			secret = s
			continue
		}
		pubs = append(pubs, publicJWK(t, k))
	}
	var jwks []byte
	if len(pubs) > 0 {
		jwks = jwksOf(t, pubs...)
	}
	v, err := newVectorVerifier(t, jwks, secret)
	if err != nil {
		t.Fatalf("keys of %q refused: %v", e.Title, err)
	}
	return v, newVectorChecker(t, v), privs
}

// TestCookbookJWS runs the RFC 7520 §4 and RFC 8037 JWS examples that the
// service supports (compact, one signature, attached payload): the
// signature verifies, the token is still not active (no claim set), and
// one changed character in payload or signature never verifies. HMAC
// examples verify only with the key configured as the HMAC secret.
func TestCookbookJWS(t *testing.T) {
	t.Parallel()
	fallback := fallbackVerifier(t)
	for _, file := range []string{
		"jws/4_1.rsa_v15_signature.json",
		"jws/4_2.rsa-pss_signature.json",
		"jws/4_3.ecdsa_signature.json",
		"jws/4_4.hmac-sha2_integrity_protection.json",
		"curve25519/jws.json",
	} {
		t.Run(strings.ReplaceAll(strings.TrimSuffix(file, ".json"), "/", "_"), func(t *testing.T) {
			var e cbExample
			loadCookbook(t, file, &e)
			if e.Output.Compact == "" {
				t.Fatalf("%s: no compact serialization", file)
			}
			v, c, privs := cookbookVerifier(t, e)
			tok := e.Output.Compact

			t.Run("as published", func(t *testing.T) {
				wantSignatureOnly(t, runVector(t, v, c, tok), true)
			})
			t.Run("unknown to the issuer", func(t *testing.T) {
				// An issuer without this key (and without any HMAC secret).
				got := runVector(t, fallback, nil, tok)
				if got.active || got.sig == ReasonNone {
					t.Errorf("verified without its key: Verify active %v, signature layer %v", got.active, got.sig)
				}
			})
			for seg, name := range map[int]string{1: "payload", 2: "signature"} {
				t.Run("tampered "+name, func(t *testing.T) {
					bad := tamper(tok, seg)
					if bad == tok {
						t.Fatal("tamper changed nothing")
					}
					got := runVector(t, v, c, bad)
					if got.active || got.cached || got.sig != ReasonBadSignature {
						t.Errorf("Verify active %v, Check active %v, signature layer %v; want %v",
							got.active, got.cached, got.sig, ReasonBadSignature)
					}
				})
			}
			for name, ser := range e.Output.serializations() {
				t.Run(name+" serialization", func(t *testing.T) {
					got := runVector(t, v, c, ser)
					if got.active || got.reason != ReasonMalformed || got.sig != ReasonMalformed {
						t.Errorf("Verify active %v reason %v, signature layer %v; want %v",
							got.active, got.reason, got.sig, ReasonMalformed)
					}
				})
			}
			t.Run("claim set under the same key and header", func(t *testing.T) {
				h, _, _ := strings.Cut(tok, ".")
				hdr, err := decodeSegment(h)
				if err != nil {
					t.Fatal(err)
				}
				var ph struct{ Alg string }
				if err := json.Unmarshal(hdr, &ph); err != nil {
					t.Fatal(err)
				}
				jwt := signClaimsLike(t, privs[0], hdr, ph.Alg)
				if got := runVector(t, v, c, jwt); !got.active || !got.cached || got.sig != ReasonNone {
					t.Errorf("Verify active %v (%v), Check active %v, signature layer %v; want active",
						got.active, got.reason, got.cached, got.sig)
				}
				if got := runVector(t, fallback, nil, jwt); got.active {
					t.Errorf("active under an issuer without the key")
				}
				if got := runVector(t, v, nil, tamper(jwt, 2)); got.active || got.reason != ReasonBadSignature || got.sig != ReasonBadSignature {
					t.Errorf("tampered signature: Verify active %v reason %v, signature layer %v; want %v",
						got.active, got.reason, got.sig, ReasonBadSignature)
				}
			})
		})
	}
}

// TestCookbookJWSUnsupported runs the examples that use what an access
// token never needs: detached content (RFC 7520 §4.5), JSON serialization
// only (§4.6, §4.7), multiple signatures (§4.8) and unencoded payloads
// (RFC 7797). Each must be refused, with all of its keys configured.
func TestCookbookJWSUnsupported(t *testing.T) {
	t.Parallel()
	for _, file := range []string{
		"jws/4_5.signature_with_detached_content.json",
		"jws/4_6.protecting_specific_header_fields.json",
		"jws/4_7.protecting_content_only.json",
		"jws/4_8.multiple_signatures.json",
		"rfc7797/hmac-sha2_b64_false.json",
		"rfc7797/4.2.hmac-sha2_b64_false.json",
	} {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			var e cbExample
			loadCookbook(t, file, &e)
			v, c, _ := cookbookVerifier(t, e)
			toks := e.Output.serializations()
			if e.Output.Compact != "" {
				toks["compact"] = e.Output.Compact
			}
			if len(toks) == 0 {
				t.Fatalf("%s: no output", file)
			}
			for name, tok := range toks {
				t.Run(name, func(t *testing.T) {
					got := runVector(t, v, c, tok)
					if got.active || got.cached || got.reason != ReasonMalformed || got.sig == ReasonNone {
						t.Errorf("Verify active %v reason %v, Check active %v, signature layer %v; want refused as %v",
							got.active, got.reason, got.cached, got.sig, ReasonMalformed)
					}
				})
			}
			if strings.HasPrefix(filepath.Base(file), "4_5") {
				// The detached signature is good: with its payload put
				// back it verifies, so the refusal above is the format's.
				h, rest, _ := strings.Cut(e.Output.Compact, ".")
				attached := h + "." + b64([]byte(e.Input.Payload)) + rest
				if got := runVector(t, v, c, attached); got.sig != ReasonNone || got.active {
					t.Errorf("payload re-attached: signature layer %v, Verify active %v; want the signature to verify, inactive", got.sig, got.active)
				}
			}
		})
	}
}

// TestCookbookNestedJWT runs RFC 7520 §6, whose inner JWS is a real JWT
// (PS256, iss "hobbiton.example", exp 1300819380): the one cookbook token
// that Verify checks whole, signature included. The outer JWE is refused.
func TestCookbookNestedJWT(t *testing.T) {
	t.Parallel()
	var ex struct {
		Sign    cbExample `json:"sign"`
		Encrypt struct {
			Output cbOutput `json:"output"`
		} `json:"encrypt"`
	}
	loadCookbook(t, "6.nesting_signatures_and_encryption.json", &ex)
	const iss = "hobbiton.example"
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal([]byte(ex.Sign.Input.Payload), &claims); err != nil || claims.Iss != iss {
		t.Fatalf("inner payload %q: %v", ex.Sign.Input.Payload, err)
	}
	verifierAt := func(now time.Time) *Verifier {
		v, err := NewVerifier([]IssuerConfig{{
			Issuer: iss, JWKS: jwksOf(t, publicJWK(t, ex.Sign.Input.Key)), Algorithms: asymAlgs, Leeway: 30 * time.Second,
		}}, VerifierOptions{Now: func() time.Time { return now }, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return v
	}
	exp := time.Unix(claims.Exp, 0)
	jws := ex.Sign.Output.Compact
	parts := strings.Split(jws, ".")
	otherClaims := parts[0] + "." + b64([]byte(strings.Replace(ex.Sign.Input.Payload, "true", "false", 1))) + "." + parts[2]
	tests := []struct {
		name   string
		now    time.Time
		tok    string
		active bool
		reason Reason
	}{
		{"before exp", exp.Add(-time.Hour), jws, true, ReasonNone},
		{"after exp and leeway", exp.Add(time.Minute), jws, false, ReasonExpired},
		{"tampered signature", exp.Add(-time.Hour), tamper(jws, 2), false, ReasonBadSignature},
		{"other claims, same signature", exp.Add(-time.Hour), otherClaims, false, ReasonBadSignature},
		{"JWE compact", exp.Add(-time.Hour), ex.Encrypt.Output.Compact, false, ReasonMalformed},
		{"JWE json", exp.Add(-time.Hour), string(ex.Encrypt.Output.JSON), false, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verifierAt(tc.now)
			e, err := v.Verify(context.Background(), tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if e.Active() != tc.active || !tc.active && e.Reason() != tc.reason {
				t.Errorf("active %v reason %v, want active %v reason %v", e.Active(), e.Reason(), tc.active, tc.reason)
			}
			c := newVectorChecker(t, v)
			if ce, err := c.Check(context.Background(), []byte(tc.tok)); err != nil || ce.Active() != tc.active {
				t.Errorf("Check: active %v, err %v; want active %v", ce.Active(), err, tc.active)
			}
		})
	}
}

// TestCookbookJWE: every RFC 7520 §5 and RFC 8037 JWE is refused without
// any key work.
func TestCookbookJWE(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(vectorsDir(t, "jose-cookbook"), "jwe", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no JWE examples: %v", err)
	}
	rel := []string{"curve25519/ecdh-es.json"}
	for _, f := range files {
		rel = append(rel, "jwe/"+filepath.Base(f))
	}
	v := fallbackVerifier(t)
	ran := 0
	for _, file := range rel {
		var e cbExample
		loadCookbook(t, file, &e)
		toks := e.Output.serializations()
		if e.Output.Compact != "" {
			toks["compact"] = e.Output.Compact
		}
		for name, tok := range toks {
			t.Run(strings.TrimSuffix(filepath.Base(file), ".json")+"/"+name, func(t *testing.T) {
				ran++
				got := runVector(t, v, nil, tok)
				if got.active || got.reason != ReasonMalformed || got.sig != ReasonMalformed {
					t.Errorf("Verify active %v reason %v, signature layer %v; want %v", got.active, got.reason, got.sig, ReasonMalformed)
				}
			})
		}
	}
	if ran == 0 {
		t.Fatal("no JWE ran")
	}
	t.Logf("%d JWE serializations from %d files refused", ran, len(rel))
}

// TestCookbookJWK loads the RFC 7520 §3 keys (and the RFC 8037 Ed25519
// key) through parseJWKS: asymmetric keys come out as public keys of the
// right type and size, bound to the algorithms that fit them; symmetric
// keys and keys with private material (a leaked key) are refused.
func TestCookbookJWK(t *testing.T) {
	t.Parallel()
	type want struct {
		typ  string // %T of key.pub; "" for refused
		fits []string
	}
	ec521 := want{"*ecdsa.PublicKey", []string{"ES512"}}
	rsa2048 := want{"*rsa.PublicKey", []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}
	tests := []struct {
		file string
		want want
	}{
		{"jwk/3_1.ec_public_key.json", ec521},
		{"jwk/3_2.ec_private_key.json", want{}}, // private material in a JWKS is refused
		{"jwk/3_3.rsa_public_key.json", rsa2048},
		{"jwk/3_4.rsa_private_key.json", want{}},
		{"jwk/3_5.symmetric_key_mac_computation.json", want{}},
		{"jwk/3_6.symmetric_key_encryption.json", want{}},
		{"curve25519/jws.json#input.key", want{}}, // the example's key is the private one
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(filepath.Base(tc.file), ".json"), func(t *testing.T) {
			var jwk json.RawMessage
			if file, ok := strings.CutSuffix(tc.file, "#input.key"); ok {
				var e cbExample
				loadCookbook(t, file, &e)
				jwk = e.Input.Key
			} else {
				loadCookbook(t, tc.file, &jwk)
			}
			set, err := parseJWKS(jwksOf(t, jwk), discard())
			if tc.want.typ == "" {
				if err == nil {
					t.Fatalf("parseJWKS accepted %s (%T)", tc.file, set.all[0].pub)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			if len(set.all) != 1 {
				t.Fatalf("got %d keys, want 1", len(set.all))
			}
			k := set.all[0]
			if got := fmt.Sprintf("%T", k.pub); got != tc.want.typ {
				t.Fatalf("key type %s, want %s", got, tc.want.typ)
			}
			var meta struct{ Kid string }
			_ = json.Unmarshal(jwk, &meta)
			if k.kid != meta.Kid || meta.Kid != "" && set.byKid[meta.Kid] != k {
				t.Errorf("kid %q, want %q", k.kid, meta.Kid)
			}
			switch p := k.pub.(type) {
			case *rsa.PublicKey:
				if p.N.BitLen() != 2048 {
					t.Errorf("RSA key of %d bits, want 2048", p.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if p.Curve != elliptic.P521() {
					t.Errorf("curve %s, want P-521", p.Curve.Params().Name)
				}
			case ed25519.PublicKey:
			}
			for _, alg := range Algorithms {
				if got, want := k.fits(alg), slices.Contains(tc.want.fits, alg); got != want {
					t.Errorf("fits(%s) = %v, want %v", alg, got, want)
				}
			}
		})
	}
}
