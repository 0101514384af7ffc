package introspect

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	jjson "github.com/go-jose/go-jose/v4/json"
)

// MinRSABits is the smallest RSA modulus accepted from a JWKS.
const MinRSABits = 2048

// Algorithms lists every JWS algorithm the service can verify. "none" is
// not among them and never will be.
var Algorithms = [...]string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

func knownAlg(alg string) bool {
	for _, a := range Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// key is one verification key.
type key struct {
	kid string
	alg string // the JWK's own alg, "" when it has none
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC)
	// fp identifies the key across refreshes, which build new keys: a
	// cached entry keeps it (entries hold no pointers) to learn whether
	// the key that verified it is still published. Zero for HMAC keys,
	// whose issuers have no refreshes.
	fp [32]byte
}

// fingerprint is a SHA-256 over kid, alg and the public key's DER
// encoding: equal exactly when the three are.
func fingerprint(k *key) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	for _, s := range []string{k.kid, k.alg} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(der)
	var fp [32]byte
	h.Sum(fp[:0])
	return fp, nil
}

// fits reports whether the key may verify a signature made with alg: the
// key type and curve must match the algorithm, and a JWK that names its own
// alg is bound to it.
func (k *key) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch p := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return p.Curve == elliptic.P256()
		case "ES384":
			return p.Curve == elliptic.P384()
		case "ES512":
			return p.Curve == elliptic.P521()
		}
		return false
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		return strings.HasPrefix(alg, "HS")
	}
	return false
}

// keySet is an immutable set of keys; a refresh replaces it whole.
type keySet struct {
	byKid map[string]*key
	all   []*key
}

func (s *keySet) len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// candidates returns the keys that may verify a token with this kid and alg.
// A token without kid is tried against every key that fits, as most
// verifiers do; with a kid only that key is.
func (s *keySet) candidates(kid, alg string) []*key {
	if s == nil {
		return nil
	}
	if kid != "" {
		if k := s.byKid[kid]; k != nil && k.fits(alg) {
			return []*key{k}
		}
		return nil
	}
	var out []*key
	for _, k := range s.all {
		if k.fits(alg) {
			out = append(out, k)
		}
	}
	return out
}

// has reports whether s holds a key with fingerprint fp, so that a token
// verified with that key before a refresh stays verified after it.
func (s *keySet) has(fp *[32]byte) bool {
	if s == nil {
		return false
	}
	for _, c := range s.all {
		if c.fp == *fp {
			return true
		}
	}
	return false
}

// parseJWKS parses a JWK Set (RFC 7517 §5). Keys that cannot serve for
// signature verification are skipped and logged, so one odd key (an
// encryption key, an unknown kty) does not take the issuer down; RSA keys
// under MinRSABits are refused the same way. It fails when no usable key is
// left.
func parseJWKS(data []byte, log *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []jjson.RawMessage `json:"keys"`
	}
	if err := jjson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	set := &keySet{byKid: make(map[string]*key)}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			log.Warn("jwks key skipped", "index", i, "err", err)
			continue
		}
		if k.kid != "" {
			if _, dup := set.byKid[k.kid]; dup {
				log.Warn("jwks key skipped", "index", i, "kid", k.kid, "err", "duplicate kid")
				continue
			}
			set.byKid[k.kid] = k
		}
		set.all = append(set.all, k)
	}
	if len(set.all) == 0 {
		return nil, fmt.Errorf("jwks: no usable signature keys among %d", len(doc.Keys))
	}
	return set, nil
}

func parseJWK(raw []byte) (*key, error) {
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	if jk.Use != "" && jk.Use != "sig" {
		return nil, fmt.Errorf("kid %q: use %q is not sig", jk.KeyID, jk.Use)
	}
	var ops struct {
		KeyOps *[]string `json:"key_ops"`
	}
	if err := jjson.Unmarshal(raw, &ops); err != nil {
		return nil, err
	}
	if ops.KeyOps != nil && !slices.Contains(*ops.KeyOps, "verify") {
		// RFC 7517 §4.3: a key whose operations exclude verify must not
		// verify. go-jose does not read key_ops, so we do.
		return nil, fmt.Errorf("kid %q: key_ops %v does not allow verify", jk.KeyID, *ops.KeyOps)
	}
	if jk.Algorithm != "" && !knownAlg(jk.Algorithm) {
		return nil, fmt.Errorf("kid %q: alg %q not supported", jk.KeyID, jk.Algorithm)
	}
	k := &key{kid: jk.KeyID, alg: jk.Algorithm}
	switch p := jk.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		k.pub = p
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		// A published private key is a leaked one: anyone can mint
		// tokens with it. Refusing it makes the leak loud.
		return nil, fmt.Errorf("kid %q: the JWKS publishes private key material; refused", jk.KeyID)
	default:
		// Symmetric keys never come from a JWKS: HMAC secrets are
		// configured explicitly, or a published JWKS could turn into a
		// forging key (algorithm confusion).
		return nil, fmt.Errorf("kid %q: key type %T not usable", jk.KeyID, jk.Key)
	}
	if rk, ok := k.pub.(*rsa.PublicKey); ok {
		if rk.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("kid %q: RSA key of %d bits is under %d", jk.KeyID, rk.N.BitLen(), MinRSABits)
		}
		if rocaVulnerable(rk.N) {
			return nil, fmt.Errorf("kid %q: RSA key has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered", jk.KeyID)
		}
	}
	if k.alg != "" && !k.fits(k.alg) {
		return nil, fmt.Errorf("kid %q: alg %q does not fit the key", jk.KeyID, k.alg)
	}
	fp, err := fingerprint(k)
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", jk.KeyID, err)
	}
	k.fp = fp
	return k, nil
}

// rocaPrimes are the small primes whose product divides the modulus M of
// every key made by the vulnerable Infineon generator (ROCA,
// CVE-2017-15361): such keys have N = k·M + (65537^a mod M).
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
	73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaVulnerable reports whether N carries the ROCA fingerprint: N mod p
// lies in the subgroup generated by 65537 for every p in rocaPrimes. A
// random modulus passes all 38 tests with a probability far below 2^-100.
func rocaVulnerable(n *big.Int) bool {
	var r big.Int
	for _, p := range rocaPrimes {
		rem := r.Mod(n, big.NewInt(p)).Int64()
		in := false
		for g, i := int64(1), int64(0); i < p; i++ {
			if g == rem {
				in = true
				break
			}
			g = g * 65537 % p
		}
		if !in {
			return false
		}
	}
	return true
}
