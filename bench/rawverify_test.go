package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/introspectd/introspectd/introspect"
)

// missTokens is how many distinct bench tokens the miss benchmarks cycle
// through: enough that no single token's bytes stay hot in the CPU caches,
// few enough to mint quickly.
const missTokens = 64

// mintMiss mints the 800-byte bench tokens that both miss benchmarks check.
func mintMiss(tb testing.TB, alg string) []string {
	tb.Helper()
	toks, err := NewMinter(testKeys(tb), Claims{Size: 800}).MintN(alg, missTokens)
	if err != nil {
		tb.Fatal(err)
	}
	return toks
}

// rawVerifier returns a function that verifies bench token i of toks with
// the standard library only: SHA-256 of the signing input (none for
// Ed25519, which hashes internally) and the signature check, the signature
// already base64-decoded. It is the floor under any JWT library's verify.
func rawVerifier(tb testing.TB, alg string, toks []string) func(i int) bool {
	tb.Helper()
	ins, sigs := make([][]byte, len(toks)), make([][]byte, len(toks))
	for i, tok := range toks {
		j := strings.LastIndexByte(tok, '.')
		ins[i] = []byte(tok[:j])
		sig, err := b64.DecodeString(tok[j+1:])
		if err != nil {
			tb.Fatal(err)
		}
		sigs[i] = sig
	}
	s, _, _ := testKeys(tb).Signer(alg)
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		if alg == "PS256" {
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
			return func(i int) bool {
				h := sha256.Sum256(ins[i])
				return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sigs[i], opts) == nil
			}
		}
		return func(i int) bool {
			h := sha256.Sum256(ins[i])
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sigs[i]) == nil
		}
	case *ecdsa.PublicKey:
		return func(i int) bool {
			h := sha256.Sum256(ins[i])
			r, s := new(big.Int).SetBytes(sigs[i][:32]), new(big.Int).SetBytes(sigs[i][32:])
			return ecdsa.Verify(pub, h[:], r, s)
		}
	case ed25519.PublicKey:
		return func(i int) bool { return ed25519.Verify(pub, ins[i], sigs[i]) }
	}
	tb.Fatalf("no verifier for %s", alg)
	return nil
}

// serviceVerifier returns introspectd's verifier trusting the bench keys,
// configured as `introspect-bench init` configures the service.
func serviceVerifier(tb testing.TB) *introspect.Verifier {
	tb.Helper()
	keys := testKeys(tb)
	jwks, err := json.Marshal(keys.PublicJWKS())
	if err != nil {
		tb.Fatal(err)
	}
	v, err := introspect.NewVerifier([]introspect.IssuerConfig{{
		Issuer: keys.Issuer, JWKS: jwks, Algorithms: Algorithms, Audiences: []string{"bench-api"},
	}}, introspect.VerifierOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return v
}

// BenchmarkRawVerify is the cost of verifying one token's signature per
// algorithm in the standard library; the report compares the service's miss
// path with it.
func BenchmarkRawVerify(b *testing.B) {
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			verify := rawVerifier(b, alg, mintMiss(b, alg))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !verify(i % missTokens) {
					b.Fatal("signature does not verify")
				}
				i++
			}
		})
	}
}

// BenchmarkMissPath is the service's whole verification of a token it has
// not seen — parse, checks, signature, the cached answer and revocation
// identity built — on the same tokens as BenchmarkRawVerify, in the same
// run: the report divides one by the other (target: at most 1.2×).
func BenchmarkMissPath(b *testing.B) {
	v := serviceVerifier(b)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			toks := mintMiss(b, alg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e, err := v.Verify(context.Background(), toks[i%missTokens])
				if err != nil || !e.Active() {
					b.Fatalf("bench token not active: %v", err)
				}
				i++
			}
		})
	}
}

func TestRawVerifierAccepts(t *testing.T) {
	for _, alg := range Algorithms {
		toks := mintMiss(t, alg)
		verify := rawVerifier(t, alg, toks)
		for i := range toks {
			if !verify(i) {
				t.Errorf("%s token %d: got invalid, want valid", alg, i)
			}
		}
		// The raw verifier must be able to say no.
		forged := toks[0][:len(toks[0])-4] + "AAAA"
		if rawVerifier(t, alg, []string{forged})(0) {
			t.Errorf("%s: forged signature verified", alg)
		}
	}
}

// TestServiceVerifierAcceptsBenchTokens keeps BenchmarkMissPath honest: the
// service must find every bench token active (and a forged one not), or
// the benchmark would measure an early refusal.
func TestServiceVerifierAcceptsBenchTokens(t *testing.T) {
	v := serviceVerifier(t)
	for _, alg := range Algorithms {
		toks := mintMiss(t, alg)
		e, err := v.Verify(context.Background(), toks[1])
		if err != nil || !e.Active() {
			t.Errorf("%s: bench token not active (%v, reason %v)", alg, err, e.Reason())
		}
		forged := toks[2][:len(toks[2])-4] + "AAAA"
		if e, _ := v.Verify(context.Background(), forged); e.Active() {
			t.Errorf("%s: forged token active", alg)
		}
	}
}
