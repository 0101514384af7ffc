package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var b64 = base64.RawURLEncoding

// Claims configures the tokens a [Minter] makes.
type Claims struct {
	Audience string        // aud; default "bench-api"
	Scope    string        // scope; default "read write"
	ClientID string        // client_id; default "bench-client"
	Lifetime time.Duration // exp - iat; default 1h
	Size     int           // pad the token to about this many bytes; 0: no padding
}

// Minter signs bench JWTs. It is safe for concurrent use.
type Minter struct {
	keys   *Keys
	claims Claims
	now    func() time.Time
	seq    atomic.Uint64
	run    string // random per Minter, so that jti and sub are unique across runs
}

// NewMinter returns a Minter signing with keys.
func NewMinter(keys *Keys, c Claims) *Minter {
	if c.Audience == "" {
		c.Audience = "bench-api"
	}
	if c.Scope == "" {
		c.Scope = "read write"
	}
	if c.ClientID == "" {
		c.ClientID = "bench-client"
	}
	if c.Lifetime == 0 {
		c.Lifetime = time.Hour
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return &Minter{keys: keys, claims: c, now: time.Now, run: b64.EncodeToString(r[:])}
}

type claimSet struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	Pad      string `json:"pad,omitempty"`
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// sigLen is the byte length of each algorithm's signature (RSA-2048, P-256, Ed25519).
var sigLen = map[string]int{"RS256": 256, "PS256": 256, "ES256": 64, "EdDSA": 64}

func (m *Minter) claimsFor(alg string, kid string, exp time.Time) (hdr []byte, cs claimSet) {
	n := m.seq.Add(1)
	now := m.now()
	hdr, _ = json.Marshal(header{Alg: alg, Typ: "at+jwt", Kid: kid})
	cs = claimSet{
		Iss: m.keys.Issuer, Sub: "user-" + strconv.FormatUint(n%100000, 10), Aud: m.claims.Audience,
		Exp: exp.Unix(), Iat: now.Unix(), Jti: m.run + "-" + strconv.FormatUint(n, 10),
		Scope: m.claims.Scope, ClientID: m.claims.ClientID,
	}
	return hdr, cs
}

// signingInput returns base64url(header) "." base64url(claims), padding the
// claims so that the whole token is about m.claims.Size bytes.
func (m *Minter) signingInput(alg string, hdr []byte, cs claimSet) []byte {
	payload, _ := json.Marshal(cs)
	if m.claims.Size > 0 {
		fixed := b64.EncodedLen(len(hdr)) + b64.EncodedLen(sigLen[alg]) + 2
		if want := (m.claims.Size-fixed)*3/4 - len(payload) - len(`,"pad":""`); want > 0 {
			cs.Pad = strings.Repeat("x", want)
			payload, _ = json.Marshal(cs)
		}
	}
	out := make([]byte, 0, b64.EncodedLen(len(hdr))+1+b64.EncodedLen(len(payload))+1+b64.EncodedLen(sigLen[alg]))
	out = b64.AppendEncode(out, hdr)
	out = append(out, '.')
	out = b64.AppendEncode(out, payload)
	return out
}

// Mint returns a fresh token signed with alg: unique jti, exp one lifetime ahead.
func (m *Minter) Mint(alg string) (string, error) {
	return m.MintExp(alg, m.now().Add(m.claims.Lifetime))
}

// MintExp is [Minter.Mint] with the given expiry.
func (m *Minter) MintExp(alg string, exp time.Time) (string, error) {
	s, kid, err := m.keys.Signer(alg)
	if err != nil {
		return "", err
	}
	hdr, cs := m.claimsFor(alg, kid, exp)
	in := m.signingInput(alg, hdr, cs)
	sig, err := Sign(alg, s, in)
	if err != nil {
		return "", err
	}
	in = append(in, '.')
	return string(b64.AppendEncode(in, sig)), nil
}

// MintN mints n tokens with alg on all CPUs.
func (m *Minter) MintN(alg string, n int) ([]string, error) {
	out := make([]string, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		err     error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t, e := m.Mint(alg)
				if e != nil {
					errOnce.Do(func() { err = e })
					return
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	return out, err
}

// Sign signs a JWS signing input with key as alg prescribes (RFC 7518 §3,
// RFC 8037): PKCS#1 v1.5 or PSS with a hash-length salt over SHA-256, P-256
// ECDSA as r||s, or Ed25519.
func Sign(alg string, key crypto.Signer, in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	switch alg {
	case "RS256":
		return rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, h[:])
	case "PS256":
		return rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	case "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), in), nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// GarbageKinds are the kinds of garbage token, in the order [Garbage.Token] cycles through them. Every one
// must be answered {"active":false}.
var GarbageKinds = []string{
	"forged",      // well-formed, trusted kid, unique claims, random signature
	"wrong-key",   // signed by a key the server does not trust, same kid
	"alg-none",    // alg "none", empty signature
	"unknown-kid", // kid not in the JWKS
	"expired",     // properly signed, exp an hour ago
	"malformed",   // not a JWS: one or two segments, bad base64, padding, junk
}

// Garbage makes tokens that must all be inactive. Forged, alg-none,
// unknown-kid and malformed tokens are unique per call (so a server cannot
// merely cache them); wrong-key and expired tokens come from a small
// pre-signed pool. It is safe for concurrent use.
type Garbage struct {
	alg      string
	hdr      string // base64url headers
	noneHdr  string
	ukidHdr  string
	payload  string // JSON claims up to the jti value
	sigLen   int
	wrongKey []string
	expired  []string
	seq      atomic.Uint64
}

// NewGarbage prepares a Garbage generator shaped like alg's tokens, pre-signing
// pool wrong-key and pool expired tokens with m.
func NewGarbage(m *Minter, alg string, pool int) (*Garbage, error) {
	_, kid, err := m.keys.Signer(alg)
	if err != nil {
		return nil, err
	}
	g := &Garbage{alg: alg, sigLen: sigLen[alg]}
	enc := func(v any) string { b, _ := json.Marshal(v); return b64.EncodeToString(b) }
	g.hdr = enc(header{Alg: alg, Typ: "at+jwt", Kid: kid})
	g.noneHdr = enc(header{Alg: "none", Typ: "at+jwt", Kid: kid})
	g.ukidHdr = enc(header{Alg: alg, Typ: "at+jwt", Kid: "no-such-kid"})
	now := time.Now()
	g.payload = fmt.Sprintf(`{"iss":%q,"sub":"forger","aud":%q,"exp":%d,"iat":%d,"scope":%q,"client_id":%q,"jti":"`,
		m.keys.Issuer, m.claims.Audience, now.Add(m.claims.Lifetime).Unix(), now.Unix(), m.claims.Scope, m.claims.ClientID)

	other, err := GenerateKeys(m.keys.Issuer, alg)
	if err != nil {
		return nil, err
	}
	other.kid = m.keys.kid // same kids: only the signature gives it away
	wm := NewMinter(other, m.claims)
	if g.wrongKey, err = wm.MintN(alg, pool); err != nil {
		return nil, err
	}
	g.expired = make([]string, pool)
	for i := range g.expired {
		if g.expired[i], err = m.MintExp(alg, now.Add(-time.Hour)); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Token appends the next garbage token to dst and returns it with its kind.
func (g *Garbage) Token(dst []byte) ([]byte, string) {
	n := g.seq.Add(1)
	kind := GarbageKinds[n%uint64(len(GarbageKinds))]
	var x [8]byte
	binary.LittleEndian.PutUint64(x[:], n*0x9E3779B97F4A7C15)
	switch kind {
	case "forged", "alg-none", "unknown-kid":
		h := g.hdr
		switch kind {
		case "alg-none":
			h = g.noneHdr
		case "unknown-kid":
			h = g.ukidHdr
		}
		dst = append(dst, h...)
		dst = append(dst, '.')
		claims := strconv.AppendUint([]byte(g.payload), n, 10)
		claims = append(claims, `"}`...)
		dst = b64.AppendEncode(dst, claims)
		dst = append(dst, '.')
		if kind != "alg-none" {
			sig := make([]byte, g.sigLen)
			for i := 0; i < len(sig); i += 8 {
				binary.LittleEndian.PutUint64(x[:], (n+uint64(i))*0x9E3779B97F4A7C15)
				copy(sig[i:], x[:])
			}
			dst = b64.AppendEncode(dst, sig)
		}
	case "wrong-key":
		dst = append(dst, g.wrongKey[n/uint64(len(GarbageKinds))%uint64(len(g.wrongKey))]...)
	case "expired":
		dst = append(dst, g.expired[n/uint64(len(GarbageKinds))%uint64(len(g.expired))]...)
	default: // malformed
		switch (n / uint64(len(GarbageKinds))) % 5 {
		case 0: // one segment
			dst = b64.AppendEncode(dst, x[:])
		case 1: // two segments
			dst = append(dst, g.hdr...)
			dst = append(dst, '.')
			dst = b64.AppendEncode(dst, x[:])
		case 2: // characters outside base64url
			dst = append(dst, g.hdr...)
			dst = append(dst, ".!!"...)
			dst = b64.AppendEncode(dst, x[:])
			dst = append(dst, ".$$"...)
		case 3: // padded base64
			dst = append(dst, g.hdr...)
			dst = append(dst, '.')
			dst = base64.URLEncoding.AppendEncode(dst, x[:7])
			dst = append(dst, ".AA=="...)
		default: // not JSON inside
			dst = b64.AppendEncode(dst, []byte("not json"))
			dst = append(dst, '.')
			dst = b64.AppendEncode(dst, x[:])
			dst = append(dst, ".AAAA"...)
		}
	}
	return dst, kind
}
