package introspect

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/introspectd/introspectd/revocation"
)

const testIss = "https://issuer.test/"

var ellipticP256N = elliptic.P256().Params().N

// testKeys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() *keyring {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ek521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &keyring{rsa: rk, ec: ek, ec384: ek384, ec521: ek521, ed: edk, attacker: attacker}
})

type keyring struct {
	rsa              *rsa.PrivateKey
	ec, ec384, ec521 *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
	attacker         *ecdsa.PrivateKey
}

// jwks returns the public JWKS of the ring: kids rsa1, ec1, ec384, ec521, ed1.
func (k *keyring) jwks(t testing.TB) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "rsa1", Use: "sig"},
		{Key: &k.ec.PublicKey, KeyID: "ec1", Use: "sig"},
		{Key: &k.ec384.PublicKey, KeyID: "ec384"},
		{Key: &k.ec521.PublicKey, KeyID: "ec521"},
		{Key: k.ed.Public(), KeyID: "ed1"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw builds a compact JWS from raw header and claims JSON, signing
// with key under alg by hand, so tests can craft what no library would.
func signRaw(t testing.TB, alg string, key any, header, claims string) string {
	t.Helper()
	in := b64([]byte(header)) + "." + b64([]byte(claims))
	return in + "." + b64(rawSign(t, alg, key, []byte(in)))
}

func hashFor(alg string) (crypto.Hash, func() hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384
	case "512":
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

func rawSign(t testing.TB, alg string, key any, in []byte) []byte {
	t.Helper()
	if alg == "EdDSA" {
		return ed25519.Sign(key.(ed25519.PrivateKey), in)
	}
	hid, hf := hashFor(alg)
	h := hf()
	h.Write(in)
	sum := h.Sum(nil)
	switch {
	case strings.HasPrefix(alg, "HS"):
		m := hmac.New(hf, key.([]byte))
		m.Write(in)
		return m.Sum(nil)
	case strings.HasPrefix(alg, "RS"):
		s, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), hid, sum)
		if err != nil {
			t.Fatal(err)
		}
		return s
	case strings.HasPrefix(alg, "PS"):
		s, err := rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), hid, sum, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return s
	case strings.HasPrefix(alg, "ES"):
		k := key.(*ecdsa.PrivateKey)
		r, s, err := ecdsa.Sign(rand.Reader, k, sum)
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
	t.Fatalf("rawSign: alg %s", alg)
	return nil
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// claims returns valid claims for testIss, valid for an hour from now.
func claims(now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIss, "sub": "alice", "aud": "orders-api", "client_id": "web",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "jti-1", "scope": "read write",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// mint signs claims with the ring's key for alg.
func (k *keyring) mint(t testing.TB, alg string, c map[string]any) string {
	t.Helper()
	key, kid := k.keyFor(alg)
	return signRaw(t, alg, key, mustJSON(t, map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}), mustJSON(t, c))
}

func (k *keyring) keyFor(alg string) (any, string) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.rsa, "rsa1"
	case "ES256":
		return k.ec, "ec1"
	case "ES384":
		return k.ec384, "ec384"
	case "ES512":
		return k.ec521, "ec521"
	case "EdDSA":
		return k.ed, "ed1"
	}
	return nil, ""
}

// newTestChecker builds a checker over one issuer with the ring's JWKS.
func newTestChecker(t testing.TB, mod func(*IssuerConfig), deny *revocation.DenyList) *Checker {
	t.Helper()
	ic := IssuerConfig{
		Issuer: testIss, JWKS: testKeys().jwks(t), Audiences: []string{"orders-api"},
		Algorithms: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"},
		Typ:        []string{"at+jwt"}, Leeway: 30 * time.Second,
	}
	if mod != nil {
		mod(&ic)
	}
	v, err := NewVerifier([]IssuerConfig{ic}, VerifierOptions{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(v, CheckerConfig{MaxBytes: 8 << 20, DenyList: deny})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// flipS returns the ECDSA twin of an ES256 token: s replaced by n−s.
func flipS(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("flipS: bad signature")
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	s.FillBytes(sig[32:])
	return tok[:i+1] + b64(sig)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
