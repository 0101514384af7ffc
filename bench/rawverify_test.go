package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
)

// rawVerifier returns a function that verifies one 800-byte bench token of
// alg with the standard library only: SHA-256 of the signing input (none for
// Ed25519, which hashes internally) and the signature check, the signature
// already base64-decoded. It is the floor under any JWT library's verify.
func rawVerifier(tb testing.TB, alg string) func() bool {
	tb.Helper()
	keys := testKeys(tb)
	tok, err := NewMinter(keys, Claims{Size: 800}).Mint(alg)
	if err != nil {
		tb.Fatal(err)
	}
	i := strings.LastIndexByte(tok, '.')
	in := []byte(tok[:i])
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	s, _, _ := keys.Signer(alg)
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		if alg == "PS256" {
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
			return func() bool {
				h := sha256.Sum256(in)
				return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, opts) == nil
			}
		}
		return func() bool {
			h := sha256.Sum256(in)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		return func() bool {
			h := sha256.Sum256(in)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(pub, h[:], r, s)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, in, sig) }
	}
	tb.Fatalf("no verifier for %s", alg)
	return nil
}

// BenchmarkRawVerify is the cost of verifying one token's signature per
// algorithm in the standard library; the report compares the service's miss
// path with it.
func BenchmarkRawVerify(b *testing.B) {
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			verify := rawVerifier(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if !verify() {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}

func TestRawVerifierAccepts(t *testing.T) {
	for _, alg := range Algorithms {
		if !rawVerifier(t, alg)() {
			t.Errorf("%s: got invalid, want valid", alg)
		}
	}
}
