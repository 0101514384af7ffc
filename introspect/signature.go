package introspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
)

var errSignature = errors.New("signature does not verify")

// verifySignature checks a JWS signature over the signing input with the
// standard library, per RFC 7518 §3 and RFC 8037.
//
// go-jose still parses every JWK and decodes every header and claim set
// (its JSON refuses duplicate member names); only this last step calls the
// standard library directly. BenchmarkVerifyMiss showed go-jose's
// ParseSignedCompact + Verify re-decoding the whole token on top of our
// parse, which put a miss at 1.5–2× the raw verify; and its PSS check
// accepts any salt length, where RFC 7518 §3.5 fixes it to the hash size.
// The Wycheproof per-algorithm vectors run against this function.
func verifySignature(pub any, alg string, signingInput, sig []byte) error {
	if alg == "EdDSA" {
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, signingInput, sig) {
			return errSignature
		}
		return nil
	}
	var h crypto.Hash
	switch alg[len(alg)-3:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	default:
		return errSignature
	}
	if strings.HasPrefix(alg, "HS") {
		k, ok := pub.([]byte)
		// RFC 7518 §3.2: a key shorter than the hash output MUST NOT be used.
		if !ok || len(k) < h.Size() {
			return errSignature
		}
		m := hmac.New(h.New, k)
		m.Write(signingInput)
		if !hmac.Equal(m.Sum(nil), sig) {
			return errSignature
		}
		return nil
	}
	d := h.New()
	d.Write(signingInput)
	digest := d.Sum(nil)
	switch alg[:2] {
	case "RS", "PS":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errSignature
		}
		var err error
		if alg[0] == 'R' {
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		} else {
			err = rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		}
		if err != nil {
			return errSignature
		}
		return nil
	case "ES":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return errSignature
		}
		var size int
		var curve elliptic.Curve
		switch alg {
		case "ES256":
			size, curve = 32, elliptic.P256()
		case "ES384":
			size, curve = 48, elliptic.P384()
		case "ES512":
			size, curve = 66, elliptic.P521()
		default:
			return errSignature
		}
		// JWS signatures are r||s of fixed size (RFC 7518 §3.4), never DER.
		if k.Curve != curve || len(sig) != 2*size {
			return errSignature
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errSignature
		}
		return nil
	}
	return errSignature
}
