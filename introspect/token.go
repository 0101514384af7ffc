package introspect

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxTokenBytes bounds the tokens we parse at all. Real access tokens are a
// few KiB at most; anything larger is refused before any decoding.
const MaxTokenBytes = 8192

// errMalformed marks tokens that are not a well-formed compact JWS.
var errMalformed = errors.New("malformed token")

// jwt is a compact JWS whose header and claims were decoded but whose
// signature is not checked yet.
type jwt struct {
	raw        string
	signingIn  string // header.payload, the signed bytes
	sig        []byte
	alg        string
	kid        string
	typ        string
	hasTyp     bool
	claims     map[string]jsontext.Value
	iss        string
	sub        string
	jti        string
	clientID   string
	exp        int64
	nbf, iat   int64
	hasNbf     bool
	hasIat     bool
	aud        []string
	scope      string // space separated, from scope or scp
	scopeArray bool   // scope claim itself was an array and must be rewritten
}

// parseJWT decodes a compact JWS strictly: exactly three segments of
// canonical base64url, a JSON object header and a JSON object payload with
// no duplicate member names, and correctly typed registered claims. It does
// not check the signature.
//
// Canonical base64url matters for revocation by token hash: a lenient decoder
// would accept many spellings of one token, each with its own hash.
func parseJWT(tok string) (*jwt, error) {
	if len(tok) == 0 || len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: length %d", errMalformed, len(tok))
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return nil, fmt.Errorf("%w: want 3 segments", errMalformed)
	}
	hdr, err := decodeSegment(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	payload, err := decodeSegment(p)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", errMalformed, err)
	}
	sig, err := decodeSegment(s)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errMalformed, err)
	}
	t := &jwt{raw: tok, signingIn: tok[:len(h)+1+len(p)], sig: sig}
	if err := t.parseHeader(hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	if err := t.parseClaims(payload); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errMalformed, err)
	}
	return t, nil
}

var base64URLAlphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// decodeSegment decodes one base64url segment and refuses every
// non-canonical spelling: padding, line breaks or other characters outside
// the URL-safe alphabet, and non-zero trailing bits.
func decodeSegment(seg string) ([]byte, error) {
	if seg == "" {
		return nil, errors.New("empty segment")
	}
	for i := 0; i < len(seg); i++ {
		if !base64URLAlphabet[seg[i]] {
			return nil, fmt.Errorf("byte %d is not base64url", i)
		}
	}
	// Strict rejects non-zero trailing bits; the loop above already ruled out
	// the '\r' and '\n' that even Strict skips.
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	return b, nil
}

// decodeObject decodes a JSON object into its members in one pass,
// rejecting duplicate member names at any depth (RFC 7515 §5.2 and RFC
// 7519 §4 ask parsers to refuse them or keep the last; keeping either would
// let two parsers read one token differently), invalid UTF-8 and trailing
// data. It uses the jsontext tokenizer of the JSON v2 work: go-jose's JSON
// fork also refuses duplicates, but BenchmarkVerifyMiss showed it costing a
// third of a miss on top of the signature check.
func decodeObject(b []byte) (map[string]jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]jsontext.Value, 16)
	for {
		switch dec.PeekKind() {
		case '}':
			if _, err := dec.ReadToken(); err != nil {
				return nil, err
			}
			if _, err := dec.ReadToken(); err != io.EOF {
				return nil, errors.New("data after the object")
			}
			return m, nil
		case '"':
		default:
			_, err := dec.ReadToken()
			return nil, fmt.Errorf("object: %v", err)
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String() // before ReadValue voids the token
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("member %q: %v", name, err)
		}
		m[name] = v.Clone()
	}
}

func (t *jwt) parseHeader(b []byte) error {
	h, err := decodeObject(b)
	if err != nil {
		return err
	}
	if err := stringMember(h, "alg", &t.alg); err != nil {
		return err
	}
	if t.alg == "" {
		return errors.New("no alg")
	}
	if err := stringMember(h, "kid", &t.kid); err != nil {
		return err
	}
	if _, ok := h["typ"]; ok {
		t.hasTyp = true
		if err := stringMember(h, "typ", &t.typ); err != nil {
			return err
		}
	}
	// We implement no JWS extension, so any crit is one we do not
	// understand (RFC 7515 §4.1.11). b64=false (RFC 7797) changes what the
	// signature covers and has no place in an access token.
	if _, ok := h["crit"]; ok {
		return errors.New("crit header present")
	}
	if _, ok := h["b64"]; ok {
		return errors.New("b64 header present")
	}
	return nil
}

func (t *jwt) parseClaims(b []byte) error {
	c, err := decodeObject(b)
	if err != nil {
		return err
	}
	t.claims = c
	for _, f := range []struct {
		name string
		dst  *string
	}{{"iss", &t.iss}, {"sub", &t.sub}, {"jti", &t.jti}, {"client_id", &t.clientID}} {
		if err := stringMember(c, f.name, f.dst); err != nil {
			return err
		}
	}
	if t.iss == "" {
		return errors.New("no iss")
	}
	var hasExp bool
	if hasExp, err = numericDate(c, "exp", &t.exp); err != nil {
		return err
	}
	if !hasExp {
		return errors.New("no exp") // RFC 9068 §2.2
	}
	if t.hasNbf, err = numericDate(c, "nbf", &t.nbf); err != nil {
		return err
	}
	if t.hasIat, err = numericDate(c, "iat", &t.iat); err != nil {
		return err
	}
	if t.aud, err = stringOrArray(c, "aud"); err != nil {
		return err
	}
	scope, err := stringOrArray(c, "scope")
	if err != nil {
		return err
	}
	if raw, ok := c["scope"]; ok {
		t.scopeArray = len(raw) > 0 && raw[0] == '['
		t.scope = strings.Join(scope, " ")
	} else {
		scp, err := stringOrArray(c, "scp")
		if err != nil {
			return err
		}
		t.scope = strings.Join(scp, " ")
	}
	return nil
}

func stringMember(m map[string]jsontext.Value, name string, dst *string) error {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%s is not a string", name)
	}
	if err := jsonv2.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// numericDate reads an RFC 7519 NumericDate: a JSON number of seconds,
// possibly fractional (truncated). Strings are refused.
func numericDate(m map[string]jsontext.Value, name string, dst *int64) (bool, error) {
	raw, ok := m[name]
	if !ok {
		return false, nil
	}
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return true, fmt.Errorf("%s is not a number", name)
	}
	var f float64
	if err := jsonv2.Unmarshal(raw, &f); err != nil {
		return true, fmt.Errorf("%s: %v", name, err)
	}
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return true, fmt.Errorf("%s out of range", name)
	}
	*dst = int64(f)
	return true, nil
}

// stringOrArray reads a member that is a string or an array of strings
// (aud, RFC 7519 §4.1.3; scope arrays that some issuers emit; scp). A string
// value for scope is split on spaces.
func stringOrArray(m map[string]jsontext.Value, name string) ([]string, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := jsonv2.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if name == "aud" {
			return []string{s}, nil
		}
		return strings.Fields(s), nil
	case len(raw) > 0 && raw[0] == '[':
		var a []string
		if err := jsonv2.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%s is not an array of strings", name)
		}
		return a, nil
	default:
		return nil, fmt.Errorf("%s is not a string or an array of strings", name)
	}
}
