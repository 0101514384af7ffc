package introspect

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/introspectd/introspectd/cache"
	"github.com/introspectd/introspectd/revocation"
)

// inactiveBody is the whole answer for every token that is not active: RFC
// 7662 §2.2 lets us say nothing more, and telling a caller why would help an
// attacker probe.
var inactiveBody = []byte(`{"active":false}`)

// Entry is the verdict on one token: what the cache holds. An active entry
// carries its pre-encoded answer and what must be re-checked on every hit
// (expiry, keys still trusted, deny-list), so a hit does no JSON work.
type Entry struct {
	// The fields every hit reads fill the first cache line, and the
	// deny-list memo is at the start of the second: a hit's cost under
	// load is mostly memory latency, two lines per hit.
	active   bool
	reason   Reason        // why not active
	notAfter int64         // unix seconds (exp + leeway) from which it is no longer active
	gen      atomic.Uint64 // the issuer's key generation the verdict holds under
	iss      *issuer
	body     string    // the JSON answer when active; a string because a hit never needs its capacity
	cacheKey cache.Key // what the cache holds the entry under

	// Token identifies the token for the revocation deny-list. It is part
	// of the entry (not a pointer to elsewhere) for the same reason.
	Token revocation.Token

	sub         string // header-safe values for /authz
	clientID    string
	scope       string // space separated
	aud         []string
	claimValues []string // aligned with VerifierOptions.ClaimHeaders

	key *key
}

// inactiveEntries are shared entries for verdicts that are not cached.
var inactiveEntries = func() (es [NumReasons]*Entry) {
	for i := range es {
		es[i] = &Entry{reason: Reason(i)}
	}
	return es
}()

// CacheKey is the token's cache.Key, under which the cache holds e.
func (e *Entry) CacheKey() *cache.Key { return &e.cacheKey }

// Active reports whether the token was active when verified.
func (e *Entry) Active() bool { return e.active }

// Reason says why the token is not active.
func (e *Entry) Reason() Reason { return e.reason }

// Body returns the JSON answer for the token. Callers must not modify it.
func (e *Entry) Body() []byte {
	if !e.active {
		return inactiveBody
	}
	return readOnly(e.body)
}

// readOnly returns s's bytes without copying them, for callers that only
// read them (the answer's writer, hashes and signature checks): a miss
// would otherwise copy its 800-byte token twice.
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// cost estimates the bytes an entry holds, for the cache's byte budget.
func (e *Entry) cost() int64 {
	n := 200 + len(e.body) + len(e.sub) + len(e.clientID) + len(e.scope)
	for _, s := range e.aud {
		n += 16 + len(s)
	}
	for _, s := range e.claimValues {
		n += 16 + len(s)
	}
	t := &e.Token
	n += 128 + len(t.Iss) + len(t.Jti) + len(t.Sub) + len(t.ClientID)
	return int64(n)
}

// encodeAnswer builds the RFC 7662 answer once per verified token:
// active, then the token's claims unchanged and in the token's order (their
// bytes are copied as they are: the parser has validated them), with scope
// as a space-separated string (taken from scp when the token has no scope).
func encodeAnswer(t *jwt) string {
	n := len(`{"active":true}`) + len(t.payload)
	rewriteScope := t.scopeArray || !t.hasScope && t.scope != ""
	if rewriteScope {
		n += len(`,"scope":""`) + 2*len(t.scope)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"active":true`...)
	for _, m := range t.members {
		if !m.drop {
			b = append(b, ',')
			b = append(b, t.payload[m.start:m.end]...)
		}
	}
	if rewriteScope {
		b = append(b, `,"scope":`...)
		b, _ = jsontext.AppendQuote(b, t.scope) // valid UTF-8: it came from the parser
	}
	b = append(b, '}')
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// claim returns the raw value of the claim named name (names compared
// unescaped), nil when the token has none. Only /authz claim headers need
// it, once per verified token, so it walks the payload again rather than
// keep every member's name.
func (t *jwt) claim(name string) []byte {
	var found []byte
	_ = walkObject(t.payload, func(n, v []byte, _ member) error { // parsed once already: no error
		if found == nil && string(n) == name {
			found = v
		}
		return nil
	})
	return found
}

// headerValue makes a claim safe to send as an HTTP header value: control
// characters, which could split a header, are percent-encoded, as is '%'
// itself so that the encoding can be undone.
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '%' {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// claimHeaderValue renders a claim for a header: strings as they are,
// arrays of strings joined by spaces, other JSON compactly, all made
// header-safe.
func claimHeaderValue(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if jsonv2.Unmarshal(raw, &s) == nil {
			return headerValue(s)
		}
	case '[':
		var a []string
		if jsonv2.Unmarshal(raw, &a) == nil {
			return headerValue(strings.Join(a, " "))
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return ""
	}
	return headerValue(b.String())
}
