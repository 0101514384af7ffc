package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the JWS algorithms the bench signs with, in report order.
var Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// DefaultIssuer is the iss of bench tokens when no key directory says otherwise.
const DefaultIssuer = "https://bench.local/"

// File names inside a key directory written by [WriteKeyDir].
const (
	PrivateKeysFile = "keys.json"        // private JWKS: the bench's signing keys
	JWKSFile        = "jwks.json"        // public JWKS: what the servers trust
	ConfigFile      = "introspectd.yaml" // an introspectd config trusting jwks.json
)

// Keys holds one signing key per algorithm and the issuer they sign for.
// It is safe for concurrent use once built.
type Keys struct {
	Issuer string
	signer map[string]crypto.Signer
	kid    map[string]string
}

// GenerateKeys makes a fresh key for each of algs (default: all of
// [Algorithms]): RSA-2048 for RS256 and PS256, P-256 for ES256, Ed25519 for
// EdDSA.
func GenerateKeys(issuer string, algs ...string) (*Keys, error) {
	if len(algs) == 0 {
		algs = Algorithms
	}
	k := &Keys{Issuer: issuer, signer: map[string]crypto.Signer{}, kid: map[string]string{}}
	for _, alg := range algs {
		s, err := generateSigner(alg)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		k.signer[alg] = s
		k.kid[alg] = "bench-" + strings.ToLower(alg)
	}
	return k, nil
}

func generateSigner(alg string) (crypto.Signer, error) {
	switch alg {
	case "RS256", "PS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// Signer returns the private key for alg and its kid.
func (k *Keys) Signer(alg string) (crypto.Signer, string, error) {
	s, ok := k.signer[alg]
	if !ok {
		return nil, "", fmt.Errorf("no key for algorithm %q (have %s)", alg, strings.Join(Algorithms, ", "))
	}
	return s, k.kid[alg], nil
}

// PublicJWKS returns the public keys as a JSON Web Key Set.
func (k *Keys) PublicJWKS() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, alg := range Algorithms {
		if s, ok := k.signer[alg]; ok {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.Public(), KeyID: k.kid[alg], Algorithm: alg, Use: "sig"})
		}
	}
	return set
}

type privateKeyFile struct {
	Issuer string             `json:"issuer"`
	Keys   jose.JSONWebKeySet `json:"keys"`
}

// ServerConfig describes the introspectd config that [WriteKeyDir] writes.
type ServerConfig struct {
	Listen       string // default 127.0.0.1:8080
	ClientID     string // default "bench"
	ClientSecret string // default "bench-secret"
	CacheBytes   int64  // default 512 MiB
}

// WriteKeyDir writes the private keys, the public JWKS and an introspectd
// config trusting them into dir (created if needed). The private key file is
// mode 0600.
func WriteKeyDir(dir string, k *Keys, sc ServerConfig) error {
	if sc.Listen == "" {
		sc.Listen = "127.0.0.1:8080"
	}
	if sc.ClientID == "" {
		sc.ClientID = "bench"
	}
	if sc.ClientSecret == "" {
		sc.ClientSecret = "bench-secret"
	}
	if sc.CacheBytes == 0 {
		sc.CacheBytes = 512 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	priv := privateKeyFile{Issuer: k.Issuer}
	for _, alg := range Algorithms {
		if s, ok := k.signer[alg]; ok {
			priv.Keys.Keys = append(priv.Keys.Keys, jose.JSONWebKey{Key: s, KeyID: k.kid[alg], Algorithm: alg, Use: "sig"})
		}
	}
	pb, err := json.MarshalIndent(priv, "", "  ")
	if err != nil {
		return fmt.Errorf("encode private keys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, PrivateKeysFile), pb, 0o600); err != nil {
		return err
	}
	jb, err := json.MarshalIndent(k.PublicJWKS(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, JWKSFile), jb, 0o644); err != nil {
		return err
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML strings
	cfg := fmt.Sprintf(`# Written by introspect-bench init; trusts the keys in %s.
listen: %s
issuers:
  - issuer: %s
    jwks_file: %s
    algorithms: ["RS256", "PS256", "ES256", "EdDSA"]
    leeway: "30s"
clients:
  - id: %s
    secret: %s
cache:
  max_bytes: %d
`, JWKSFile, q(sc.Listen), q(k.Issuer), q(filepath.Join(abs, JWKSFile)), q(sc.ClientID), q(sc.ClientSecret), sc.CacheBytes)
	return os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644)
}

// LoadKeys reads the private keys that [WriteKeyDir] wrote into dir.
func LoadKeys(dir string) (*Keys, error) {
	b, err := os.ReadFile(filepath.Join(dir, PrivateKeysFile))
	if err != nil {
		return nil, err
	}
	var f privateKeyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, PrivateKeysFile), err)
	}
	k := &Keys{Issuer: f.Issuer, signer: map[string]crypto.Signer{}, kid: map[string]string{}}
	for _, jk := range f.Keys.Keys {
		s, ok := jk.Key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: key %q is not a private key", PrivateKeysFile, jk.KeyID)
		}
		k.signer[jk.Algorithm] = s
		k.kid[jk.Algorithm] = jk.KeyID
	}
	if k.Issuer == "" {
		return nil, errors.New(PrivateKeysFile + ": no issuer")
	}
	return k, nil
}

// LoadJWKS reads a public JWKS file and returns its keys by kid.
func LoadJWKS(path string) (map[string]jose.JSONWebKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("%s: key %q has private material", path, k.KeyID)
		}
		m[k.KeyID] = k
	}
	return m, nil
}
