package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

const keysDoc = `
Makes a signing key pair. The private key is written as a JWK (file mode
0600) for 'tokenctl mint -key'; the public key is written as a JWKS (mode
0644) for an issuer's jwks_file in the introspectd configuration. Existing
files are never overwritten unless -force is given.
`

const keysExamples = `  tokenctl keys -alg ES256 -out-private issuer.jwk -out-jwks jwks.json
  tokenctl keys -alg RS256 -bits 3072 -kid 2026-01 -out-private rsa.jwk -out-jwks jwks.json
`

// keyAlgs are the algorithms keys can make, in the spelling of RFC 7518.
var keyAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

func runKeys(e *env, args []string) error {
	f := newFlags("keys", "-alg RS256|ES256|EdDSA -out-private FILE -out-jwks FILE [flags]", keysDoc, keysExamples)
	alg := f.String("alg", "", "signature `algorithm`, required: RS256 (RSA), ES256 (ECDSA P-256) or EdDSA (Ed25519)")
	kid := f.String("kid", "", "key `ID` (kid) written into both files, e.g. -kid 2026-01 (default: the RFC 7638 SHA-256 thumbprint, base64url)")
	bits := f.Int("bits", 2048, "RSA modulus size for -alg RS256: 2048, 3072 or 4096, e.g. -bits 3072")
	outPriv := f.String("out-private", "", "`FILE` to write the private JWK to, mode 0600, required, e.g. -out-private issuer.jwk")
	outJWKS := f.String("out-jwks", "", "`FILE` to write the public JWKS to, mode 0644, required, e.g. -out-jwks jwks.json")
	force := f.Bool("force", false, "overwrite -out-private and -out-jwks if they exist")
	if err := f.parse(e, args); err != nil {
		return err
	}
	set := f.set()

	var sigAlg jose.SignatureAlgorithm
	for _, a := range keyAlgs {
		if strings.EqualFold(*alg, string(a)) {
			sigAlg = a
		}
	}
	switch {
	case *alg == "":
		return usagef("-alg is required: RS256, ES256 or EdDSA")
	case sigAlg == "":
		return usagef("-alg: %q is not one of RS256, ES256, EdDSA", *alg)
	case set["bits"] && sigAlg != jose.RS256:
		return usagef("-bits applies to -alg RS256 only")
	case *bits != 2048 && *bits != 3072 && *bits != 4096:
		return usagef("-bits: %d is not one of 2048, 3072, 4096", *bits)
	case *outPriv == "":
		return usagef("-out-private is required")
	case *outJWKS == "":
		return usagef("-out-jwks is required")
	case filepath.Clean(*outPriv) == filepath.Clean(*outJWKS):
		return usagef("-out-private and -out-jwks name the same file")
	}
	if !*force {
		for _, p := range []struct{ flag, path string }{{"out-private", *outPriv}, {"out-jwks", *outJWKS}} {
			if _, err := os.Lstat(p.path); err == nil {
				return fmt.Errorf("-%s: %s exists; use -force to overwrite it", p.flag, p.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("-%s: %w", p.flag, err)
			}
		}
	}

	priv, err := generateKey(sigAlg, *bits)
	if err != nil {
		return fmt.Errorf("generate %s key: %w", sigAlg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(sigAlg), Use: "sig", KeyID: *kid}
	if jwk.KeyID == "" {
		pub := jwk.Public()
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return fmt.Errorf("thumbprint: %w", err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	privJSON, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return fmt.Errorf("encode private JWK: %w", err)
	}
	jwksJSON, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}

	if err := writeFile(*outPriv, append(privJSON, '\n'), 0o600, *force); err != nil {
		return fmt.Errorf("-out-private: %w", err)
	}
	if err := writeFile(*outJWKS, append(jwksJSON, '\n'), 0o644, *force); err != nil {
		if !*force {
			// Do not leave half a key pair behind.
			_ = os.Remove(*outPriv)
		}
		return fmt.Errorf("-out-jwks: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s private key (kid %s) to %s\nwrote public JWKS to %s\n", sigAlg, jwk.KeyID, *outPriv, *outJWKS)
	return nil
}

func generateKey(alg jose.SignatureAlgorithm, bits int) (crypto.Signer, error) {
	switch alg {
	case jose.RS256:
		return rsa.GenerateKey(rand.Reader, bits)
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported algorithm %s", alg)
}

// writeFile writes data to path with exactly perm, whatever the umask.
// Without force it fails when path exists (O_EXCL, so a file created since
// the check is not clobbered either); with force it replaces path
// atomically, so a reader never sees a half-written key.
func writeFile(path string, data []byte, perm os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if err := writeClose(f, data, perm); err != nil {
			_ = os.Remove(path)
			return err
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeClose(f, data, perm); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func writeClose(f *os.File, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
