package introspect

// Wycheproof vectors (C2SP/wycheproof, read in place from
// ../../shared/testdata/wycheproof or $INTROSPECTD_TESTDATA/wycheproof).
//
// JOSE-level files (json_web_signature, json_web_key, json_web_encryption)
// hold whole tokens and keys, so they go through the service's own code:
// parseJWKS for the keys, Verify and Checker.Check for the tokens. Their
// payloads are "foo", "Test" and the like, never a JWT claim set, and Verify
// rejects those as malformed before it checks any signature; so each token
// also goes through verifySignatureOnly (vectors_test.go), which runs the
// part of Verify that decides the signature, and every valid vector's key
// and header are run through Verify whole with a claim set we sign
// ourselves (the groups carry their private keys).
//
// The per-algorithm files (ecdsa_*, ed25519, rsa_signature_*, rsa_pss_*,
// hmac_*) sign arbitrary byte strings, which a JWS signing input
// (base64url(header) "." base64url(payload)) can never be, so they cannot be
// replayed as tokens, and go-jose exports nothing that verifies a signature
// over bytes of our choosing (Verify and DetachedVerify build the signing
// input themselves; OpaqueVerifier is for callers to implement; cryptosigner
// only signs). So they go one layer down: the key through parseJWKS and
// key.fits, as a token's key would, then joseVerifyPayload, which makes the
// same standard library calls with the same preconditions as go-jose's
// verifyPayload for that alg. The DER-encoded ECDSA file, whose signatures no
// JWS may carry, is also replayed whole: each signature in a real token.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// wpFile is the part of a Wycheproof file these tests read.
type wpFile struct {
	NumberOfTests int       `json:"numberOfTests"`
	TestGroups    []wpGroup `json:"testGroups"`
}

type wpGroup struct {
	Type    string `json:"type"`
	Comment string `json:"comment"`
	// JOSE files: a JWK (json_web_signature) or a JWK Set (json_web_key).
	Private json.RawMessage `json:"private"`
	Public  json.RawMessage `json:"public"`
	// Per-algorithm files.
	PublicKeyJwk json.RawMessage `json:"publicKeyJwk"`
	KeyJwk       json.RawMessage `json:"keyJwk"`
	PublicKeyDer hexBytes        `json:"publicKeyDer"`
	KeyDer       hexBytes        `json:"keyDer"`
	KeySize      int             `json:"keySize"`
	TagSize      int             `json:"tagSize"`
	Tests        []wpTest        `json:"tests"`
}

type wpTest struct {
	TcID    int             `json:"tcId"`
	Comment string          `json:"comment"`
	Flags   []string        `json:"flags"`
	JWS     json.RawMessage `json:"jws"` // a compact string, or a JSON serialization object
	JWE     json.RawMessage `json:"jwe"`
	Msg     hexBytes        `json:"msg"`
	Sig     hexBytes        `json:"sig"`
	Key     hexBytes        `json:"key"`
	Tag     hexBytes        `json:"tag"`
	Result  string          `json:"result"` // valid, invalid or acceptable
}

func (tc wpTest) name() string {
	c := tc.Comment
	if c == "" && len(tc.Flags) > 0 {
		c = strings.Join(tc.Flags, "+")
	}
	return fmt.Sprintf("tc%d_%s", tc.TcID, c)
}

// token returns the JWS (or JWE) of a JOSE vector as the string a caller
// would send: the compact form, or the JSON serialization's text.
func (tc wpTest) token(t testing.TB) string {
	t.Helper()
	raw := tc.JWS
	if raw == nil {
		raw = tc.JWE
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(raw)
}

// hexBytes is a hex string in the JSON, never nil once decoded.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = append(make([]byte, 0, len(d)), d...)
	return nil
}

func loadWycheproof(t testing.TB, file string) wpFile {
	t.Helper()
	var f wpFile
	readVectors(t, filepath.Join(vectorsDir(t, "wycheproof"), file), &f)
	if f.NumberOfTests == 0 || len(f.TestGroups) == 0 {
		t.Fatalf("%s: no tests", file)
	}
	return f
}

// tally counts the vectors of one file that ran, by expected result.
type tally struct {
	ran                        int
	valid, invalid, acceptable int
	accepted, refused          int
}

func (c *tally) add(result string, accepted bool) {
	c.ran++
	switch result {
	case "valid":
		c.valid++
	case "invalid":
		c.invalid++
	default:
		c.acceptable++
	}
	if accepted {
		c.accepted++
	} else {
		c.refused++
	}
}

// check fails unless every vector of the file ran.
func (c *tally) check(t testing.TB, file string, want int) {
	t.Helper()
	t.Logf("%s: %d vectors ran (%d valid, %d invalid, %d acceptable); %d accepted, %d refused",
		file, c.ran, c.valid, c.invalid, c.acceptable, c.accepted, c.refused)
	if c.ran == 0 || c.ran != want {
		t.Errorf("%s: %d vectors ran, want numberOfTests = %d", file, c.ran, want)
	}
}

// jwsRefusedValid lists the json_web_signature vectors that Wycheproof
// marks valid and the service refuses on purpose. Nothing marked invalid is
// ever let through.
var jwsRefusedValid = map[int]string{
	347: `the JWK says "alg":"ES521", which is no JWS algorithm (RFC 7518 §3.1 has ES512); the loader refuses the key`,
	351: `the JWK says "alg":"ES521", which is no JWS algorithm (RFC 7518 §3.1 has ES512); the loader refuses the key`,
	346: `the JWK says "alg":"PS256" and the token PS384 (RFC 7520 §4.2 uses PS384 with a key that names no alg); a key is bound to its alg, as vectors 331-340 (WrongPrimitive) require`,
	350: `the JWK says "alg":"PS256" and the token PS384 (RFC 7520 §4.2 uses PS384 with a key that names no alg); a key is bound to its alg, as vectors 331-340 (WrongPrimitive) require`,
	372: "a '?' inside the base64url header: not base64url (RFC 7515 §2); upstream accepts it for lenient decoders",
	373: "a '?' inside the base64url payload: not base64url (RFC 7515 §2); upstream accepts it for lenient decoders",
}

// jwsSameAsValid lists json_web_signature vectors marked invalid whose
// token is byte for byte that of a valid vector (the padding their comment
// names is not in the file), so no verifier can refuse one and accept the
// other. They are held to the valid vector's result; the test fails if the
// tokens ever differ.
var jwsSameAsValid = map[int]int{
	367: 357, // invalidBase64Padding
	370: 357, // invalidBase64PaddingInPayload
}

// wantJWS is whether the signature of json_web_signature vector tc must
// verify.
func wantJWS(t testing.TB, f wpFile, tc wpTest) bool {
	t.Helper()
	if why, ok := jwsRefusedValid[tc.TcID]; ok {
		t.Logf("refused on purpose: %s", why)
		return false
	}
	if twin, ok := jwsSameAsValid[tc.TcID]; ok {
		for _, g := range f.TestGroups {
			for _, o := range g.Tests {
				if o.TcID == twin {
					if o.token(t) != tc.token(t) || o.Result != "valid" {
						t.Fatalf("tc%d is no longer the same token as valid tc%d: drop it from jwsSameAsValid", tc.TcID, twin)
					}
					t.Logf("upstream marks it %s, but its token is that of valid tc%d", tc.Result, twin)
					return true
				}
			}
		}
		t.Fatalf("tc%d not found", twin)
	}
	return tc.Result == "valid"
}

// keyConfig is one way an operator could hand a vector's key to the
// service; a vector is accepted when any of them verifies it.
type keyConfig struct {
	name   string
	jwks   []byte // the key as a JWKS
	secret []byte // the key as IssuerConfig.HMACSecret
}

// loaded is a keyConfig the service accepted, or the fallback issuer when it
// refused it (then nothing may verify under it).
type loaded struct {
	keyConfig
	v       *Verifier
	c       *Checker
	refused error
}

func loadConfigs(t *testing.T, cfgs []keyConfig, fallback *Verifier, fallbackC *Checker) []loaded {
	t.Helper()
	var out []loaded
	for _, kc := range cfgs {
		l := loaded{keyConfig: kc}
		l.v, l.refused = newVectorVerifier(t, kc.jwks, kc.secret)
		if l.refused != nil {
			t.Logf("%s: key refused: %v", kc.name, l.refused)
			l.v, l.c = fallback, fallbackC
		} else {
			l.c = newVectorChecker(t, l.v)
		}
		out = append(out, l)
	}
	return out
}

// octSecret returns the key bytes of a symmetric JWK, or nil for other keys
// and for keys not meant for HMAC (an AES key is never configured as one).
func octSecret(t testing.TB, jwk json.RawMessage) []byte {
	t.Helper()
	var k struct {
		Kty, Alg, Use, K string
	}
	if err := json.Unmarshal(jwk, &k); err != nil {
		t.Fatalf("jwk: %v", err)
	}
	if k.Kty != "oct" || k.Alg != "" && !strings.HasPrefix(k.Alg, "HS") || k.Use != "" && k.Use != "sig" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(k.K)
	if err != nil {
		t.Fatalf("jwk k: %v", err)
	}
	return append(make([]byte, 0, len(b)), b...)
}

// TestWycheproofJWS runs json_web_signature_test.json: every token through
// the signature layer, Verify and the Checker, under every way its key can
// be configured (a JWKS; for symmetric keys also the HMAC secret). A valid
// vector must verify under one of them (but never be answered active, its
// payload being no claim set); an invalid one under none.
func TestWycheproofJWS(t *testing.T) {
	t.Parallel()
	const file = "json_web_signature_test.json"
	f := loadWycheproof(t, file)
	fallback := fallbackVerifier(t)
	fallbackC := newVectorChecker(t, fallback)
	var n tally
	for gi, g := range f.TestGroups {
		t.Run(fmt.Sprintf("group%d_%s", gi, g.Comment), func(t *testing.T) {
			jwk := g.Public
			if jwk == nil {
				jwk = publicJWK(t, g.Private)
			}
			cfgs := []keyConfig{{name: "jwks", jwks: jwksOf(t, jwk)}}
			if s := octSecret(t, jwk); s != nil {
				// HMAC keys never come from a JWKS, and HS* needs a secret.
				if _, err := parseJWKS(jwksOf(t, jwk), discard()); err == nil {
					t.Errorf("parseJWKS accepted a symmetric key")
				}
				if _, err := NewVerifier([]IssuerConfig{{Issuer: testIss, JWKS: testKeys().jwks(t), Algorithms: hmacAlgs}}, VerifierOptions{Logger: discard()}); err == nil {
					t.Errorf("NewVerifier allowed HS* without an HMAC secret")
				}
				cfgs = append(cfgs, keyConfig{name: "hmac_secret", secret: s})
			}
			ls := loadConfigs(t, cfgs, fallback, fallbackC)

			for _, tc := range g.Tests {
				t.Run(tc.name(), func(t *testing.T) {
					tok := tc.token(t)
					accepted := false
					for _, l := range ls {
						got := runVector(t, l.v, l.c, tok)
						if got.active || got.cached {
							t.Fatalf("%s: answered active (Verify %v, Check %v)", l.name, got.active, got.cached)
						}
						if got.sig == ReasonNone {
							if l.refused != nil {
								t.Fatalf("%s: verified by the fallback issuer", l.name)
							}
							accepted = true
							wantSignatureOnly(t, got, true)
						}
					}
					want := wantJWS(t, f, tc)
					n.add(tc.Result, accepted)
					if accepted != want {
						t.Errorf("%s vector: signature accepted = %v, want %v", tc.Result, accepted, want)
					}
				})
			}

			// The group's key and each valid vector's protected header,
			// signing a real claim set: Verify must answer it active.
			// Groups without a valid vector have a key the service must
			// not use (use "enc", key_ops without "verify"): inactive.
			if g.Private == nil {
				return
			}
			priv := privateKeyOf(t, g.Private)
			good := func(tc wpTest) bool { return tc.Result == "valid" && jwsRefusedValid[tc.TcID] == "" }
			hasValid := false
			for _, tc := range g.Tests {
				hasValid = hasValid || good(tc)
			}
			seen := map[string]bool{}
			for _, tc := range g.Tests {
				if good(tc) != hasValid {
					continue
				}
				h, _, _ := strings.Cut(tc.token(t), ".")
				hdr, err := decodeSegment(h)
				if err != nil || seen[h] {
					continue
				}
				seen[h] = true
				var ph struct{ Alg string }
				if json.Unmarshal(hdr, &ph) != nil || !knownAlg(ph.Alg) {
					continue
				}
				t.Run(fmt.Sprintf("claims_like_tc%d", tc.TcID), func(t *testing.T) {
					tok := signClaimsLike(t, priv, hdr, ph.Alg)
					active := false
					for _, l := range ls {
						if l.refused != nil {
							continue
						}
						got := runVector(t, l.v, l.c, tok)
						if got.active != (got.sig == ReasonNone) || got.cached != got.active {
							t.Errorf("%s: Verify active %v (%v), Check active %v, signature layer %v: layers disagree",
								l.name, got.active, got.reason, got.cached, got.sig)
						}
						active = active || got.active
						bad := runVector(t, l.v, nil, tamper(tok, 2))
						if bad.active || bad.reason != bad.sig || got.active && bad.reason != ReasonBadSignature {
							t.Errorf("%s: tampered signature: Verify active %v reason %v, signature layer %v; want refused alike (%v if the original verified)",
								l.name, bad.active, bad.reason, bad.sig, ReasonBadSignature)
						}
					}
					if active != hasValid {
						t.Errorf("claim set signed with the group's key and header: active = %v, want %v", active, hasValid)
					}
				})
			}
		})
	}
	n.check(t, file, f.NumberOfTests)
}

// jwkRefusedValid lists the json_web_key vectors that Wycheproof marks
// valid and the service refuses on purpose.
var jwkRefusedValid = map[int]string{
	2: "a JWK Set of HMAC keys: HMAC keys never come from a JWKS, and an issuer has one configured secret",
}

// TestWycheproofJWK runs json_web_key_test.json: each group's key set
// through parseJWKS and the signature layer, and single HMAC keys also as a
// configured secret.
func TestWycheproofJWK(t *testing.T) {
	t.Parallel()
	const file = "json_web_key_test.json"
	f := loadWycheproof(t, file)
	fallback := fallbackVerifier(t)
	fallbackC := newVectorChecker(t, fallback)
	var n tally
	for gi, g := range f.TestGroups {
		t.Run(fmt.Sprintf("group%d_%s", gi, g.Comment), func(t *testing.T) {
			set := g.Public
			if set == nil {
				set = g.Private
			}
			var doc struct {
				Keys []json.RawMessage `json:"keys"`
			}
			if err := json.Unmarshal(set, &doc); err != nil {
				t.Fatal(err)
			}
			var pub []json.RawMessage
			for _, k := range doc.Keys {
				pub = append(pub, publicJWK(t, k))
			}
			cfgs := []keyConfig{{name: "jwks", jwks: jwksOf(t, pub...)}}
			if len(doc.Keys) == 1 {
				if s := octSecret(t, doc.Keys[0]); s != nil {
					cfgs = append(cfgs, keyConfig{name: "hmac_secret", secret: s})
				}
			}
			ls := loadConfigs(t, cfgs, fallback, fallbackC)
			for _, tc := range g.Tests {
				t.Run(tc.name(), func(t *testing.T) {
					accepted := false
					for _, l := range ls {
						got := runVector(t, l.v, l.c, tc.token(t))
						if got.active || got.cached {
							t.Fatalf("%s: answered active", l.name)
						}
						if got.sig == ReasonNone {
							if l.refused != nil {
								t.Fatalf("%s: verified by the fallback issuer", l.name)
							}
							accepted = true
							wantSignatureOnly(t, got, true)
						}
					}
					want := tc.Result == "valid"
					if why, ok := jwkRefusedValid[tc.TcID]; ok {
						t.Logf("refused on purpose: %s", why)
						want = false
					}
					n.add(tc.Result, accepted)
					if accepted != want {
						t.Errorf("%s vector (%v): signature accepted = %v, want %v", tc.Result, tc.Flags, accepted, want)
					}
				})
			}
		})
	}
	n.check(t, file, f.NumberOfTests)
}

// TestWycheproofJWE runs json_web_encryption_test.json: a JWS verifier must
// refuse every JWE, valid or not, without touching its keys.
func TestWycheproofJWE(t *testing.T) {
	t.Parallel()
	const file = "json_web_encryption_test.json"
	f := loadWycheproof(t, file)
	v := fallbackVerifier(t)
	c := newVectorChecker(t, v)
	var n tally
	for gi, g := range f.TestGroups {
		for _, tc := range g.Tests {
			t.Run(fmt.Sprintf("group%d/%s", gi, tc.name()), func(t *testing.T) {
				got := runVector(t, v, c, tc.token(t))
				n.add(tc.Result, got.active || got.sig == ReasonNone)
				if got.active || got.cached || got.reason != ReasonMalformed || got.sig != ReasonMalformed {
					t.Errorf("JWE: Verify active %v reason %v, Check active %v, signature layer %v; want %v",
						got.active, got.reason, got.cached, got.sig, ReasonMalformed)
				}
			})
		}
	}
	n.check(t, file, f.NumberOfTests)
}

// sigFiles are the per-algorithm files and the JWS alg each one tests.
var sigFiles = []struct{ file, alg string }{
	{"ecdsa_secp256r1_sha256_p1363_test.json", "ES256"},
	{"ecdsa_secp384r1_sha384_p1363_test.json", "ES384"},
	{"ecdsa_secp521r1_sha512_p1363_test.json", "ES512"},
	{"ed25519_test.json", "EdDSA"},
	{"rsa_signature_2048_sha256_test.json", "RS256"},
	{"rsa_signature_2048_sha384_test.json", "RS384"},
	{"rsa_signature_2048_sha512_test.json", "RS512"},
	{"rsa_signature_3072_sha256_test.json", "RS256"},
	{"rsa_signature_4096_sha256_test.json", "RS256"},
	{"rsa_pss_2048_sha256_mgf1_32_test.json", "PS256"},
	{"rsa_pss_2048_sha384_mgf1_48_test.json", "PS384"},
	{"rsa_pss_4096_sha512_mgf1_64_test.json", "PS512"},
}

// groupJWK returns the group's public key as a JWK: its own when it has
// one, else made from its DER.
func groupJWK(t testing.TB, g wpGroup) json.RawMessage {
	t.Helper()
	switch {
	case g.PublicKeyJwk != nil:
		return g.PublicKeyJwk
	case g.KeyJwk != nil:
		return g.KeyJwk
	case g.PublicKeyDer != nil:
		return jwkFromDER(t, g.PublicKeyDer)
	case g.KeyDer != nil:
		return jwkFromDER(t, g.KeyDer)
	}
	t.Fatalf("group has no public key")
	return nil
}

// TestWycheproofSignatures runs the per-algorithm files one layer below
// the token: see the file comment. Valid vectors must verify; invalid and
// "acceptable" ones (RSA DigestInfo without NULL) must not.
func TestWycheproofSignatures(t *testing.T) {
	t.Parallel()
	for _, sf := range sigFiles {
		t.Run(strings.TrimSuffix(sf.file, "_test.json"), func(t *testing.T) {
			t.Parallel()
			f := loadWycheproof(t, sf.file)
			var n tally
			for gi, g := range f.TestGroups {
				set, err := parseJWKS(jwksOf(t, groupJWK(t, g)), discard())
				var cands []*key
				if err == nil {
					cands = set.candidates("", sf.alg)
				}
				for _, tc := range g.Tests {
					t.Run(fmt.Sprintf("group%d/%s", gi, tc.name()), func(t *testing.T) {
						accepted := false
						for _, k := range cands {
							accepted = accepted || joseVerifyPayload(k.pub, sf.alg, tc.Msg, tc.Sig) == nil
						}
						n.add(tc.Result, accepted)
						if want := tc.Result == "valid"; accepted != want {
							t.Errorf("%s vector %v: accepted = %v, want %v (key usable: %v)", tc.Result, tc.Flags, accepted, want, len(cands) > 0)
						}
					})
				}
			}
			n.check(t, sf.file, f.NumberOfTests)
		})
	}
}

// TestWycheproofHMAC runs the HMAC files with each vector's key configured
// as the issuer's HMAC secret. JWS allows only full-length tags and keys at
// least as long as the hash (RFC 7518 §3.2), so valid vectors outside that
// must be refused as well.
func TestWycheproofHMAC(t *testing.T) {
	t.Parallel()
	for _, hf := range []struct{ file, alg string }{
		{"hmac_sha256_test.json", "HS256"},
		{"hmac_sha384_test.json", "HS384"},
		{"hmac_sha512_test.json", "HS512"},
	} {
		t.Run(strings.TrimSuffix(hf.file, "_test.json"), func(t *testing.T) {
			t.Parallel()
			f := loadWycheproof(t, hf.file)
			hid, _ := hashFor(hf.alg)
			bits := 8 * hid.Size()
			var n tally
			for _, g := range f.TestGroups {
				for _, tc := range g.Tests {
					t.Run(fmt.Sprintf("key%d_tag%d/%s", g.KeySize, g.TagSize, tc.name()), func(t *testing.T) {
						accepted := false
						if v, err := newVectorVerifier(t, nil, tc.Key); err == nil {
							is := v.issuers[testIss]
							accepted = joseVerifyPayload(is.hmac.pub, hf.alg, tc.Msg, tc.Tag) == nil
						}
						n.add(tc.Result, accepted)
						want := tc.Result == "valid" && g.TagSize == bits && g.KeySize >= bits
						if accepted != want {
							t.Errorf("%s vector, key %d bits, tag %d bits: accepted = %v, want %v", tc.Result, g.KeySize, g.TagSize, accepted, want)
						}
					})
				}
			}
			n.check(t, hf.file, f.NumberOfTests)
		})
	}
}

// TestWycheproofECDSADERInJWS puts every signature of the DER-encoded
// ECDSA file, valid or not, into a token with a good claim set, under an
// issuer holding the file's key. JWS wants r‖s of fixed length (RFC 7518
// §3.4), so Verify must refuse each one, at the signature.
func TestWycheproofECDSADERInJWS(t *testing.T) {
	t.Parallel()
	const file = "ecdsa_secp256r1_sha256_test.json"
	f := loadWycheproof(t, file)
	head := b64([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." + b64([]byte(mustJSON(t, claims(vecNow, nil)))) + "."
	var n tally
	for gi, g := range f.TestGroups {
		jwk := groupJWK(t, g)
		v, err := newVectorVerifier(t, jwksOf(t, jwk), nil)
		if err != nil {
			t.Fatalf("group %d: key refused: %v", gi, err)
		}
		c := newVectorChecker(t, v)
		is := v.issuers[testIss]
		for _, tc := range g.Tests {
			t.Run(fmt.Sprintf("group%d/%s", gi, tc.name()), func(t *testing.T) {
				got := runVector(t, v, c, head+b64(tc.Sig))
				raw := false
				for _, k := range is.keys.set.Load().all {
					raw = raw || joseVerifyPayload(k.pub, "ES256", tc.Msg, tc.Sig) == nil
				}
				n.add(tc.Result, got.active || raw)
				want := ReasonBadSignature
				if len(tc.Sig) == 0 {
					want = ReasonMalformed // an empty segment
				}
				if got.active || got.cached || got.reason != want || raw {
					t.Errorf("DER signature in a JWS: Verify active %v reason %v, Check active %v, raw verify %v; want refused as %v",
						got.active, got.reason, got.cached, raw, want)
				}
			})
		}
	}
	n.check(t, file, f.NumberOfTests)
}

// TestWycheproofRSA1024Refused: rsa_pkcs1_1024_sig_gen_test.json holds
// correct signatures by 1024-bit keys. Such keys must never load, so none
// of its signatures can verify.
func TestWycheproofRSA1024Refused(t *testing.T) {
	t.Parallel()
	const file = "rsa_pkcs1_1024_sig_gen_test.json"
	f := loadWycheproof(t, file)
	var n tally
	for gi, g := range f.TestGroups {
		t.Run(fmt.Sprintf("group%d", gi), func(t *testing.T) {
			jwks := jwksOf(t, groupJWK(t, g))
			if _, err := parseJWKS(jwks, discard()); err == nil {
				t.Errorf("parseJWKS accepted a %d-bit RSA key", g.KeySize)
			}
			if _, err := newVectorVerifier(t, jwks, nil); err == nil {
				t.Errorf("NewVerifier accepted a %d-bit RSA key", g.KeySize)
			}
			for _, tc := range g.Tests {
				n.add(tc.Result, false)
			}
		})
	}
	n.check(t, file, f.NumberOfTests)
}

// TestVectorSignatureLayerMatchesVerify keeps verifySignatureOnly honest:
// on tokens with a good claim set, where Verify does reach the signature,
// both must agree on the verdict and the reason.
func TestVectorSignatureLayerMatchesVerify(t *testing.T) {
	t.Parallel()
	k := testKeys()
	v := fallbackVerifier(t)
	body := mustJSON(t, claims(vecNow, nil))
	toks := map[string]string{
		"HS256 not allowed": signRaw(t, "HS256", []byte(strings.Repeat("k", 32)), `{"alg":"HS256"}`, body),
		"alg none":          b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(body)) + ".AA",
		"unknown kid":       signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"nope"}`, body),
		"other curve's kid": signRaw(t, "ES384", k.ec384, `{"alg":"ES384","kid":"ec1"}`, body),
		"no kid":            signRaw(t, "ES256", k.ec, `{"alg":"ES256"}`, body),
		"attacker key":      signRaw(t, "ES256", k.attacker, `{"alg":"ES256","kid":"ec1"}`, body),
		"crit":              signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"ec1","crit":["x"],"x":1}`, body),
		"JWE shaped":        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..AAAA.AAAA.AAAA",
		"padded signature":  signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"ec1"}`, body) + "=",
	}
	for _, alg := range asymAlgs {
		tok := k.mint(t, alg, claims(vecNow, nil))
		toks[alg] = tok
		toks[alg+" tampered signature"] = tamper(tok, 2)
	}
	for name, tok := range toks {
		t.Run(name, func(t *testing.T) {
			got := runVector(t, v, nil, tok)
			verify := got.reason
			if got.active {
				verify = ReasonNone
			}
			if got.sig != verify {
				t.Errorf("signature layer %v, Verify %v: want the same", got.sig, verify)
			}
		})
	}
}
