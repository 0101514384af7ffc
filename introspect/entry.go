package introspect

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/introspectd/introspectd/cache"
	"github.com/introspectd/introspectd/internal/prefetch"
	"github.com/introspectd/introspectd/revocation"
)

// inactiveBody is the whole answer for every token that is not active: RFC
// 7662 §2.2 lets us say nothing more, and telling a caller why would help an
// attacker probe.
var inactiveBody = []byte(`{"active":false}`)

// Entry is the verdict on one token: what the cache holds. An active entry
// carries its pre-encoded answer and what must be re-checked on every hit
// (expiry, keys still trusted, deny-list), so a hit does no JSON work.
//
// An active entry is one allocation without pointers: this header, the
// answer right after it, then an entryTail and the strings it refers to
// (see newEntry). Two reasons:
//
//   - The GC never scans it. With the verdict, answer and identifiers in
//     about ten objects, most holding pointers, a GC cycle cost about
//     0.5 µs per cached token (BenchmarkCachedTokenBytes, gc-ns/token):
//     over a second of CPU with a million tokens, at least every two
//     minutes. Now it is about 0.1 µs, mostly ristretto's own
//     bookkeeping.
//   - A hit reads one run of adjacent memory, the header and then the
//     answer, whose address is known as soon as the entry's is, instead
//     of following a pointer to the answer. (Paired open-loop runs of the
//     two layouts showed no difference in a hit's CPU, though.)
//
// Shared inactive entries and cached negatives are the header alone.
// Entry must never hold a Go pointer (TestEntryLayout): the GC would not
// see it.
type Entry struct {
	cacheKey cache.Key     // what the cache holds the entry under
	notAfter int64         // unix seconds (exp + leeway) from which it is no longer active
	gen      atomic.Uint64 // the issuer's key generation the verdict holds under
	clean    atomic.Uint64 // the deny-list epoch at which the token was last found clean (see Checker.final)
	bodyLen  uint32        // the answer's length; it starts right after the header
	tail     uint32        // the entryTail's offset from the entry; 0 when there is none
	size     uint32        // bytes allocated for the entry
	issuer   uint16        // 1 + the issuer's index in Verifier.issuerList; 0 when none
	active   bool
	reason   Reason // why not active
}

// entryHeader is where an active entry's answer starts.
const entryHeader = unsafe.Sizeof(Entry{})

// entryTail is what only some answers need: revocation by hand, deny-list
// lookups after the list changed, /authz headers, key refreshes.
type entryTail struct {
	digest [32]byte // SHA-256 of the token string as presented
	twin   [32]byte // SHA-256 of its ECDSA twin (s -> n-s); all zero when none
	keyFP  [32]byte // fingerprint of the key that verified it (key.fp)
	iat    int64    // 0 when absent
	exp    int64

	// As in the token, for the deny-list.
	iss, jti, sub, clientID span
	// Header-safe (see headerValue), for /authz.
	hdrSub, hdrClientID, scope span
	aud                        list
	claims                     list // aligned with VerifierOptions.ClaimHeaders
}

// span locates a string in an entry's allocation: offset from the entry,
// length.
type span struct{ off, n uint32 }

// list locates n spans stored from off on.
type list struct{ off, n uint32 }

// entryFields are the pieces an active entry is built from.
type entryFields struct {
	token       *jwt // whose answer the entry holds
	issuer      uint16
	notAfter    int64
	gen         uint64
	tail        entryTail // spans and lists are filled in by newEntry
	iss, jti    string
	sub, client string
	hdrSub      string
	hdrClient   string
	scope       string
	aud, claims []string
}

// newEntry lays out an active entry in one allocation: header, answer,
// tail, the tail's span tables, then its strings (a header-safe string
// equal to the raw one is stored once).
func newEntry(f *entryFields) *Entry {
	answerLen, quotedScope := answerSize(f.token)
	tailOff := align8(int(entryHeader) + answerLen)
	at := tailOff + int(unsafe.Sizeof(entryTail{}))
	tablesOff := at
	at += int(unsafe.Sizeof(span{})) * (len(f.aud) + len(f.claims))
	size := at + len(f.iss) + len(f.jti) + len(f.sub) + len(f.client) + len(f.scope)
	if f.hdrSub != f.sub {
		size += len(f.hdrSub)
	}
	if f.hdrClient != f.client {
		size += len(f.hdrClient)
	}
	for _, s := range f.aud {
		size += len(s)
	}
	for _, s := range f.claims {
		size += len(s)
	}
	// A []byte is allocated without pointer bits, and any allocation of
	// 16 bytes or more is 8-byte aligned, as the header's atomics need.
	buf := make([]byte, size)
	e := (*Entry)(unsafe.Pointer(unsafe.SliceData(buf)))
	if uintptr(unsafe.Pointer(e))%8 != 0 {
		panic("introspect: entry allocation not 8-byte aligned")
	}
	body := appendAnswer(buf[entryHeader:entryHeader:tailOff], f.token, quotedScope)
	if len(body) > 0 && unsafe.SliceData(body) != &buf[entryHeader] {
		panic("introspect: answer longer than its bound")
	}
	// A span past the end would read memory that is not the entry's.
	put := func(s string) span {
		sp := span{uint32(at), uint32(len(s))}
		if copy(buf[at:], s) != len(s) {
			panic("introspect: entry strings outgrow their allocation")
		}
		at += len(s)
		return sp
	}
	putList := func(ss []string) list {
		l := list{uint32(tablesOff), uint32(len(ss))}
		for _, s := range ss {
			*(*span)(unsafe.Pointer(&buf[tablesOff])) = put(s)
			tablesOff += int(unsafe.Sizeof(span{}))
		}
		return l
	}
	t := (*entryTail)(unsafe.Pointer(&buf[tailOff]))
	*t = f.tail
	t.iss, t.jti = put(f.iss), put(f.jti)
	t.sub, t.clientID = put(f.sub), put(f.client)
	t.hdrSub, t.hdrClientID = t.sub, t.clientID
	if f.hdrSub != f.sub {
		t.hdrSub = put(f.hdrSub)
	}
	if f.hdrClient != f.client {
		t.hdrClientID = put(f.hdrClient)
	}
	t.scope = put(f.scope)
	t.aud, t.claims = putList(f.aud), putList(f.claims)
	if at != size {
		panic("introspect: entry layout does not add up")
	}

	e.active = true
	e.issuer = f.issuer
	e.notAfter = f.notAfter
	e.gen.Store(f.gen)
	e.bodyLen = uint32(len(body))
	e.tail = uint32(tailOff)
	e.size = uint32(size)
	return e
}

func align8(n int) int { return (n + 7) &^ 7 }

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
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(e), entryHeader)), e.bodyLen)
}

// prefetchBody starts loading the whole answer, which the server copies
// into the response only after the handler returns: the lines then arrive
// together while the rest of the request is handled, instead of one miss
// after another in the copy. Two sets of six paired open-loop runs at
// 40,000 req/s with 10,000 tokens: every run lower, by 0.02 to 0.32 µs of
// server CPU per request (means 0.16 and 0.23).
func (e *Entry) prefetchBody() {
	b := e.Body()
	for off := 0; off < len(b); off += 64 {
		prefetch.Line(unsafe.Pointer(&b[off]))
	}
}

// more returns the entry's tail, nil for an entry without one.
func (e *Entry) more() *entryTail {
	if e.tail == 0 {
		return nil
	}
	return (*entryTail)(unsafe.Add(unsafe.Pointer(e), e.tail))
}

// str returns the string sp locates in e. Only entries built by newEntry
// have strings.
func (e *Entry) str(sp span) string {
	if sp.n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(e), sp.off)), sp.n)
}

// item returns the i-th string of l.
func (e *Entry) item(l list, i int) string { return e.str(e.span(l, i)) }

// span returns the span of the i-th string of l.
func (e *Entry) span(l list, i int) span {
	return *(*span)(unsafe.Add(unsafe.Pointer(e), uintptr(l.off)+uintptr(i)*unsafe.Sizeof(span{})))
}

// hasAudience reports whether the token's aud names any of want.
func (e *Entry) hasAudience(want []string) bool {
	t := e.more()
	if t == nil {
		return false
	}
	for i := range int(t.aud.n) {
		if slices.Contains(want, e.item(t.aud, i)) {
			return true
		}
	}
	return false
}

// claimValue returns the header-safe value of the i-th claim header, as a
// slice of e (see bytes), empty when the token has no such claim.
func (e *Entry) claimValue(i int) []byte {
	t := e.more()
	if t == nil || i >= int(t.claims.n) {
		return nil
	}
	return e.bytes(e.span(t.claims, i))
}

// headerValues returns the header-safe subject, client and scope for
// /authz, as slices of e for fasthttp's SetCanonical (which copies them):
// callers must not write to them.
func (e *Entry) headerValues() (sub, clientID, scope []byte) {
	t := e.more()
	if t == nil {
		return nil, nil, nil
	}
	return e.bytes(t.hdrSub), e.bytes(t.hdrClientID), e.bytes(t.scope)
}

// bytes is str as a slice of e. Its capacity is its length (unsafe.Slice),
// so an append copies rather than writes over what follows.
func (e *Entry) bytes(sp span) []byte {
	if sp.n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(e), sp.off)), sp.n)
}

// scope returns the token's scopes, space separated and header-safe.
func (e *Entry) scope() string {
	if t := e.more(); t != nil {
		return e.str(t.scope)
	}
	return ""
}

// token fills in what the deny-list knows the token by. Its strings point
// into e.
func (e *Entry) token(t *revocation.Token) {
	m := e.more()
	if m == nil {
		return
	}
	t.Digest, t.TwinDigest = m.digest, m.twin
	t.Iss, t.Jti = e.str(m.iss), e.str(m.jti)
	t.Sub, t.ClientID = e.str(m.sub), e.str(m.clientID)
	t.Iat, t.Exp = m.iat, m.exp
}

// cost is the bytes an entry holds, for the cache's byte budget (as
// requested: the allocator rounds it up to a size class).
func (e *Entry) cost() int64 { return int64(max(e.size, uint32(entryHeader))) }

// readOnly returns s's bytes without copying them, for callers that only
// read them (hashes and signature checks): a miss would otherwise copy its
// 800-byte token twice.
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// answerSize returns an upper bound of the length of t's answer, and the
// quoted scope to put in it when the answer rewrites scope (nil when not).
// The bound holds because the answer is the payload's members, each with
// one separator, between braces, plus what it adds.
func answerSize(t *jwt) (int, []byte) {
	n := len(`{"active":true}`) + len(t.payload)
	if t.scopeArray || !t.hasScope && t.scope != "" {
		q, _ := jsontext.AppendQuote(nil, t.scope) // valid UTF-8: it came from the parser
		return n + len(`,"scope":`) + len(q), q
	}
	return n, nil
}

// appendAnswer appends the RFC 7662 answer built once per verified token:
// active, then the token's claims unchanged and in the token's order (their
// bytes are copied as they are: the parser has validated them), with scope
// as a space-separated string (taken from scp when the token has no scope)
// when quotedScope is not nil.
func appendAnswer(b []byte, t *jwt, quotedScope []byte) []byte {
	b = append(b, `{"active":true`...)
	for _, m := range t.members {
		if !m.drop {
			b = append(b, ',')
			b = append(b, t.payload[m.start:m.end]...)
		}
	}
	if quotedScope != nil {
		b = append(b, `,"scope":`...)
		b = append(b, quotedScope...)
	}
	return append(b, '}')
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
