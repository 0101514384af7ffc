package introspect

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ErrUndecidable reports that a token cannot be checked right now, because
// its issuer's keys cannot be fetched and the key it names is not known.
// Callers MUST NOT answer such a token as inactive: it may well be valid.
var ErrUndecidable = errors.New("introspect: token cannot be checked now")

// Defaults for IssuerConfig.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultRefreshInterval = 15 * time.Minute
	DefaultRefetchCooldown = 10 * time.Second
	DefaultFetchTimeout    = 5 * time.Second
)

// IssuerConfig describes one trusted issuer. Exactly one key source is set:
// JWKSFile, JWKSURI, Discovery, JWKS, or only HMACSecret.
type IssuerConfig struct {
	Issuer     string // exact match against the token's iss
	JWKSFile   string
	JWKSURI    string
	Discovery  bool   // resolve jwks_uri from <Issuer>/.well-known/…
	JWKS       []byte // a JWK Set given inline (dev mode)
	HMACSecret []byte // enables HS* for this issuer only; never from a JWKS

	Audiences  []string // when set, aud must contain one of them
	Algorithms []string // allow-list
	Typ        []string // when set, the JOSE typ header must be one of them

	Leeway          time.Duration
	RefreshInterval time.Duration // JWKS refresh without Cache-Control max-age
	RefetchCooldown time.Duration // minimum gap between unknown-kid refetches
	FetchTimeout    time.Duration
	HTTPClient      *http.Client // nil: a client with FetchTimeout
}

// Reason says why a token is not active. It feeds metrics and logs only:
// callers of the service learn nothing but {"active":false}.
type Reason uint8

// Reasons, a small fixed set so that they can label metrics.
const (
	ReasonNone Reason = iota
	ReasonExpired
	ReasonNotYetValid
	ReasonBadSignature
	ReasonUnknownIssuer
	ReasonUnknownKey
	ReasonAudience
	ReasonAlgorithm
	ReasonTyp
	ReasonMalformed
	ReasonRevoked
	NumReasons
)

var reasonNames = [NumReasons]string{"", "expired", "not_yet_valid", "bad_signature", "unknown_issuer",
	"unknown_key", "audience", "algorithm", "typ", "malformed", "revoked"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

var hmacKeyBytes = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

type issuer struct {
	index  uint16 // 1 + its position in Verifier.issuerList
	cfg    IssuerConfig
	algs   map[string]bool
	keys   *keySource
	hmac   *key
	leeway int64 // seconds
}

// Verifier checks JWTs against the trusted issuers. Safe for concurrent use.
type Verifier struct {
	issuers      map[string]*issuer
	issuerList   []*issuer // entries name their issuer by index: they hold no pointers
	claimHeaders []string
	now          func() time.Time
	realClock    bool // now is time.Now
	log          *slog.Logger

	headers headerMemo // headers of tokens that verified

	verified [len(Algorithms)]atomic.Uint64
	failures [NumReasons]atomic.Uint64
}

// VerifierOptions are the settings shared by all issuers.
type VerifierOptions struct {
	// ClaimHeaders names claims whose values /authz passes on as headers;
	// the verifier extracts them once per token.
	ClaimHeaders []string
	Now          func() time.Time
	Logger       *slog.Logger
}

// NewVerifier validates the issuer configurations. Call Start to load keys.
func NewVerifier(cfgs []IssuerConfig, opts VerifierOptions) (*Verifier, error) {
	v := &Verifier{issuers: make(map[string]*issuer), claimHeaders: opts.ClaimHeaders, now: opts.Now, log: opts.Logger}
	if v.now == nil {
		v.now = time.Now
		v.realClock = true
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	for i, c := range cfgs {
		is, err := newIssuer(c, v)
		if err != nil {
			return nil, fmt.Errorf("issuers[%d]: %w", i, err)
		}
		if _, dup := v.issuers[c.Issuer]; dup {
			return nil, fmt.Errorf("issuers[%d]: issuer %q listed twice", i, c.Issuer)
		}
		if len(v.issuerList) == math.MaxUint16 {
			return nil, fmt.Errorf("issuers[%d]: more than %d issuers", i, math.MaxUint16)
		}
		v.issuerList = append(v.issuerList, is)
		is.index = uint16(len(v.issuerList))
		v.issuers[c.Issuer] = is
	}
	return v, nil
}

func newIssuer(c IssuerConfig, v *Verifier) (*issuer, error) {
	if c.Issuer == "" {
		return nil, errors.New("issuer is empty")
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.RefetchCooldown == 0 {
		c.RefetchCooldown = DefaultRefetchCooldown
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.FetchTimeout}
	}
	if len(c.Algorithms) == 0 {
		return nil, errors.New("algorithms is empty")
	}
	is := &issuer{cfg: c, algs: make(map[string]bool), leeway: int64(c.Leeway / time.Second)}
	for _, a := range c.Algorithms {
		if !knownAlg(a) {
			return nil, fmt.Errorf("algorithm %q is not supported", a)
		}
		if strings.HasPrefix(a, "HS") && len(c.HMACSecret) == 0 {
			return nil, fmt.Errorf("algorithm %s needs an explicit HMAC secret", a)
		}
		is.algs[a] = true
	}
	if len(c.HMACSecret) > 0 {
		is.hmac = &key{pub: c.HMACSecret}
		// RFC 7518 §3.2: the key must be at least as long as the hash.
		// Shorter than HS256's is an error; shorter than HS384's or
		// HS512's only makes those refuse every token, which we say.
		if len(c.HMACSecret) < hmacKeyBytes["HS256"] {
			return nil, fmt.Errorf("HMAC secret of %d bytes is under 32", len(c.HMACSecret))
		}
		for a := range is.algs {
			if need := hmacKeyBytes[a]; len(c.HMACSecret) < need {
				v.log.Warn("HMAC secret shorter than the algorithm needs: its tokens will all fail",
					"issuer", c.Issuer, "alg", a, "need_bytes", need)
			}
		}
	}
	sources := 0
	for _, set := range []bool{c.JWKSFile != "", c.JWKSURI != "", c.Discovery, c.JWKS != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return nil, errors.New("more than one of jwks_file, jwks_uri, discovery")
	}
	if sources == 0 && is.hmac == nil {
		return nil, errors.New("no keys: set jwks_file, jwks_uri or discovery")
	}
	if sources == 1 {
		ks := &keySource{
			issuer: c.Issuer, file: c.JWKSFile, uri: c.JWKSURI, discovery: c.Discovery,
			client: c.HTTPClient, refreshInterval: c.RefreshInterval, cooldown: c.RefetchCooldown,
			now: v.now, log: v.log.With("issuer", c.Issuer), stats: &issuerStats{},
		}
		if c.JWKS != nil {
			set, err := parseJWKS(c.JWKS, ks.log)
			if err != nil {
				return nil, err
			}
			ks.static = set
		}
		is.keys = ks
	}
	return is, nil
}

// Start loads file keys (failing on unusable ones) and starts the refresh of
// remote JWKS, which runs until ctx ends.
func (v *Verifier) Start(ctx context.Context) error {
	for _, is := range v.issuers {
		if is.keys == nil {
			continue
		}
		if err := is.keys.start(ctx); err != nil {
			return fmt.Errorf("issuer %q: %w", is.cfg.Issuer, err)
		}
	}
	return nil
}

// Ready reports whether every issuer's keys were loaded at least once.
func (v *Verifier) Ready() (bool, string) {
	for _, is := range v.issuers {
		if is.keys != nil && !is.keys.loaded() {
			return false, fmt.Sprintf("keys of issuer %q not loaded yet", is.cfg.Issuer)
		}
	}
	return true, ""
}

// WaitLoaded blocks until every issuer's keys were loaded once or ctx ends.
func (v *Verifier) WaitLoaded(ctx context.Context) error {
	for _, is := range v.issuers {
		if is.keys == nil {
			continue
		}
		select {
		case <-is.keys.loadedCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// inactive records a failure and returns the entry that says so.
func (v *Verifier) inactive(r Reason) *Entry {
	v.failures[r].Add(1)
	return inactiveEntries[r]
}

// Verify checks tok completely: structure, issuer, algorithm, typ, times,
// audience and signature. It returns an Entry (active or not) or
// ErrUndecidable; it never consults the cache or the deny-list.
func (v *Verifier) Verify(ctx context.Context, tok string) (*Entry, error) {
	return v.verify(ctx, tok, nil)
}

// verify is Verify for a caller that has already hashed the token: digest
// is its SHA-256, or nil.
func (v *Verifier) verify(ctx context.Context, tok string, digest *[32]byte) (*Entry, error) {
	t, err := parseJWTMemo(tok, &v.headers)
	if err != nil {
		return v.inactive(ReasonMalformed), nil
	}
	is := v.issuers[t.iss]
	if is == nil {
		return v.inactive(ReasonUnknownIssuer), nil
	}
	if !is.algs[t.alg] {
		return v.inactive(ReasonAlgorithm), nil
	}
	if len(is.cfg.Typ) > 0 && !typAllowed(t, is.cfg.Typ) {
		return v.inactive(ReasonTyp), nil
	}
	now := v.now().Unix()
	if now > t.exp+is.leeway {
		return v.inactive(ReasonExpired), nil
	}
	if t.hasNbf && t.nbf > now+is.leeway || t.hasIat && t.iat > now+is.leeway {
		e := v.inactive(ReasonNotYetValid)
		return e, nil
	}
	if len(is.cfg.Audiences) > 0 && !intersects(t.aud, is.cfg.Audiences) {
		return v.inactive(ReasonAudience), nil
	}

	used, gen, r, err := v.checkSignature(ctx, t, is)
	switch {
	case err != nil:
		return nil, err
	case r == ReasonBadSignature:
		return v.negative(ReasonBadSignature, is, gen), nil
	case r != ReasonNone:
		return v.inactive(r), nil
	}
	v.verified[slices.Index(Algorithms[:], t.alg)].Add(1)
	v.headers.add(t.hdrSeg, t.header)
	var d [32]byte
	if digest != nil {
		d = *digest
	} else {
		d = sha256.Sum256(readOnly(tok))
	}
	return v.activeEntry(t, is, used, gen, d), nil
}

// checkSignature finds the issuer's keys that may have signed t and checks
// the signature with verifySignature. It returns the key that
// verified, the key generation it was found under, or the reason the token
// fails; the error is only ErrUndecidable.
func (v *Verifier) checkSignature(ctx context.Context, t *jwt, is *issuer) (*key, uint64, Reason, error) {
	var cands []*key
	var gen uint64
	if strings.HasPrefix(t.alg, "HS") {
		cands = []*key{is.hmac}
	} else {
		var st keyStatus
		cands, gen, st = is.keys.lookup(ctx, t.kid, t.alg)
		switch st {
		case keyUndecidable:
			return nil, gen, ReasonNone, ErrUndecidable
		case keyUnknown:
			return nil, gen, ReasonUnknownKey, nil
		}
	}
	in := readOnly(t.signingIn) // the checks only hash it
	for _, k := range cands {
		if verifySignature(k.pub, t.alg, in, t.sig) == nil {
			return k, gen, ReasonNone, nil
		}
	}
	return nil, gen, ReasonBadSignature, nil
}

// negative builds an inactive entry that may be cached for a while, tied to
// the key generation it was decided under.
func (v *Verifier) negative(r Reason, is *issuer, gen uint64) *Entry {
	v.failures[r].Add(1)
	e := &Entry{reason: r, issuer: is.index}
	e.gen.Store(gen)
	return e
}

func typAllowed(t *jwt, allowed []string) bool {
	if !t.hasTyp {
		return false
	}
	got := normTyp(t.typ)
	for _, a := range allowed {
		if normTyp(a) == got {
			return true
		}
	}
	return false
}

// normTyp compares media types the way RFC 7515 §4.1.9 asks: case
// insensitively, with the "application/" prefix optional.
func normTyp(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "application/")
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// twinDigest returns the SHA-256 of the token's ECDSA twin — the same JWT
// with signature (r, n−s), which verifies as well — so that revoking either
// spelling by hash revokes both. Zero for other algorithms.
func twinDigest(t *jwt) [32]byte {
	var curve elliptic.Curve
	switch t.alg {
	case "ES256":
		curve = elliptic.P256()
	case "ES384":
		curve = elliptic.P384()
	case "ES512":
		curve = elliptic.P521()
	default:
		return [32]byte{}
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(t.sig) != 2*size {
		return [32]byte{}
	}
	s := new(big.Int).SetBytes(t.sig[size:])
	twinS := new(big.Int).Sub(curve.Params().N, s)
	sig := make([]byte, 2*size)
	copy(sig, t.sig[:size])
	twinS.FillBytes(sig[size:])
	h := sha256.New()
	h.Write([]byte(t.signingIn))
	h.Write([]byte{'.'})
	h.Write([]byte(base64.RawURLEncoding.EncodeToString(sig)))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func (v *Verifier) activeEntry(t *jwt, is *issuer, k *key, gen uint64, digest [32]byte) *Entry {
	f := entryFields{
		token:    t,
		issuer:   is.index,
		notAfter: t.exp + is.leeway,
		gen:      gen,
		tail:     entryTail{digest: digest, twin: twinDigest(t), keyFP: k.fp, exp: t.exp},
		iss:      t.iss, jti: t.jti, sub: t.sub, client: t.clientID,
		hdrSub: headerValue(t.sub), hdrClient: headerValue(t.clientID), scope: headerValue(t.scope),
		aud: t.aud,
	}
	if t.hasIat {
		f.tail.iat = t.iat
	}
	if len(v.claimHeaders) > 0 {
		f.claims = make([]string, len(v.claimHeaders))
		for i, name := range v.claimHeaders {
			f.claims[i] = claimHeaderValue(t.claim(name))
		}
	}
	return newEntry(&f)
}

// issuerAt returns the issuer an entry names, nil for none.
func (v *Verifier) issuerAt(index uint16) *issuer {
	if index == 0 {
		return nil
	}
	return v.issuerList[index-1]
}

// Stats are the verifier's counters, read by metrics at scrape time.
type Stats struct {
	VerifiedByAlg map[string]uint64
	Failures      [NumReasons]uint64
	Issuers       []IssuerStats
}

// IssuerStats describes one issuer's keys.
type IssuerStats struct {
	Issuer              string
	Keys                int
	Fetches, Failures   uint64
	UnknownKidRefetches uint64
	LastSuccess         time.Time // zero when never
	Healthy             bool
}

// Stats returns a snapshot of the counters.
func (v *Verifier) Stats() Stats {
	st := Stats{VerifiedByAlg: make(map[string]uint64, len(Algorithms))}
	for i, a := range Algorithms {
		st.VerifiedByAlg[a] = v.verified[i].Load()
	}
	for i := range st.Failures {
		st.Failures[i] = v.failures[i].Load()
	}
	for _, is := range v.issuers {
		s := IssuerStats{Issuer: is.cfg.Issuer, Healthy: true}
		if ks := is.keys; ks != nil {
			s.Keys = ks.set.Load().len()
			s.Fetches = ks.stats.Fetches.Load()
			s.Failures = ks.stats.Failures.Load()
			s.UnknownKidRefetches = ks.stats.UnknownKidRefetches.Load()
			if ts := ks.stats.LastSuccess.Load(); ts > 0 {
				s.LastSuccess = time.Unix(ts, 0)
			}
			s.Healthy = ks.ok.Load()
		}
		if is.hmac != nil {
			s.Keys++
		}
		st.Issuers = append(st.Issuers, s)
	}
	slices.SortFunc(st.Issuers, func(a, b IssuerStats) int { return strings.Compare(a.Issuer, b.Issuer) })
	return st
}
