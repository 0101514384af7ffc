package revocation

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxTokenLifetime is used when [DenyListConfig.MaxTokenLifetime] or
// [Config.MaxTokenLifetime] is zero.
const DefaultMaxTokenLifetime = 24 * time.Hour

// Token identifies one verified token for deny-list checks. Build it once per
// verification, with [NewToken] or a composite literal of the exported
// fields, and keep it with the cached verification result: [DenyList.Revoked]
// remembers on the Token that it was found clean, so later checks cost one
// atomic load until the deny-list changes.
//
// A Token MUST NOT be copied after first use (go vet reports copies) and its
// exported fields MUST NOT change after first use. It is safe for concurrent
// use by [DenyList.Revoked].
type Token struct {
	Digest [32]byte // SHA-256 of the token string as presented

	// clean is the epoch of the deny-list at which this token was last found
	// clean; 0 means never. Epochs are unique across all deny-lists of the
	// process, so a memo never carries over from one list to another. It
	// sits next to Digest so that a cache hit, which reads both, touches
	// one cache line fewer.
	clean atomic.Uint64

	TwinDigest [32]byte // SHA-256 of the token's ECDSA twin (s -> n-s); all zero when none
	Iss        string
	Jti        string // empty when the token has none
	Sub        string // empty when the token has none
	ClientID   string // empty when the token has none
	Iat        int64  // unix seconds; 0 when absent (then it counts as issued before any not_before)
	Exp        int64  // unix seconds; 0 when absent; informational, the check does not use it
}

// NewToken returns a [Token] with the given fields.
func NewToken(digest, twin [32]byte, iss, jti, sub, clientID string, iat, exp int64) *Token {
	return &Token{
		Digest: digest, TwinDigest: twin,
		Iss: iss, Jti: jti, Sub: sub, ClientID: clientID,
		Iat: iat, Exp: exp,
	}
}

// DenyListConfig configures a [DenyList]. The zero value is usable.
type DenyListConfig struct {
	// Leeway is the largest clock leeway of all issuers. jti and token
	// entries are kept until exp+Leeway, sub and client entries until
	// not_before+MaxTokenLifetime+Leeway.
	Leeway time.Duration

	// MaxTokenLifetime is the longest lifetime of any accepted token. It
	// bounds how long sub and client entries are kept, and is the lifetime
	// of jti and token entries whose event has no exp (counted from the time
	// they are applied). Zero means [DefaultMaxTokenLifetime].
	MaxTokenLifetime time.Duration

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// numShards splits the maps so that writers and the slow path of readers
// rarely meet on one lock.
const numShards = 64

// DenyList is the set of revocations in force. It is safe for concurrent use.
//
// Entries are never evicted before the token they revoke could no longer be
// active; [DenyList.Prune] drops them afterwards.
type DenyList struct {
	leeway int64 // seconds, rounded up
	mtl    int64 // seconds, rounded up
	now    func() time.Time
	seed   maphash.Seed

	// epoch changes (to a process-wide unique value) after every change that
	// can revoke more tokens; see [DenyList.Revoked].
	epoch atomic.Uint64

	counts [len(kinds)]atomic.Int64

	issMu sync.Mutex        // guards issuers
	iss   map[string]string // interned issuer strings, so entries share them

	shards [numShards]shard
}

// pairKey is an (issuer, identifier) pair; iss "" means any issuer.
type pairKey struct {
	iss, id string
}

// notBefore is a sub or client entry.
type notBefore struct {
	nb     int64 // tokens issued before are revoked
	forget int64 // unix seconds after which the entry is dropped
}

type shard struct {
	mu      sync.RWMutex          // guards the maps below
	tokens  map[[32]byte]int64    // token digest -> forget time
	jtis    map[pairKey]int64     // (iss, jti) -> forget time
	subs    map[pairKey]notBefore // (iss, sub)
	clients map[pairKey]notBefore // (iss, client_id)

	_ [64]byte // keep hot locks of neighbouring shards off one cache line
}

// lastEpoch hands out deny-list epochs; every value is used once.
var lastEpoch atomic.Uint64

// maxInterned bounds the issuer intern table; issuers beyond it are stored
// as they come.
const maxInterned = 1024

// NewDenyList returns an empty deny-list.
func NewDenyList(cfg DenyListConfig) *DenyList {
	mtl := cfg.MaxTokenLifetime
	if mtl <= 0 {
		mtl = DefaultMaxTokenLifetime
	}
	d := &DenyList{
		leeway: ceilSeconds(cfg.Leeway),
		mtl:    ceilSeconds(mtl),
		now:    cfg.Now,
		seed:   maphash.MakeSeed(),
		iss:    make(map[string]string),
	}
	if d.now == nil {
		d.now = time.Now
	}
	for i := range d.shards {
		s := &d.shards[i]
		s.tokens = make(map[[32]byte]int64)
		s.jtis = make(map[pairKey]int64)
		s.subs = make(map[pairKey]notBefore)
		s.clients = make(map[pairKey]notBefore)
	}
	d.epoch.Store(lastEpoch.Add(1))
	return d
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func (d *DenyList) digestShard(h *[32]byte) *shard {
	// The digest is a SHA-256 output already; its first byte spreads well.
	return &d.shards[h[0]%numShards]
}

func (d *DenyList) stringShard(s string) *shard {
	return &d.shards[maphash.String(d.seed, s)%numShards]
}

// Revoked reports whether t is on the deny-list.
//
// It is O(1), does not allocate and takes no lock when nothing was added to
// the list since t was last found clean: then it is one atomic load and a
// compare. Otherwise it looks t up under the read locks of at most four
// shards.
//
// An entry counts until [DenyList.Prune] drops it, which happens only after
// the token could no longer be active anyway.
func (d *DenyList) Revoked(t *Token) bool {
	e := d.epoch.Load()
	if t.clean.Load() == e {
		return false
	}
	// The epoch was read before the lookup: an entry added during the
	// lookup changes the epoch after it is visible, so a clean result is
	// only remembered for the state it was computed from.
	if d.lookup(t) {
		return true
	}
	t.clean.Store(e)
	return false
}

// Epoch returns a number that changes whenever an entry is added to the
// list, unique across all deny-lists of the process. A caller that keeps
// its own memo instead of a Token's reads Epoch, then asks [DenyList.Listed]:
// a token not listed is clean at that epoch, and stays clean while Epoch
// returns it.
func (d *DenyList) Epoch() uint64 { return d.epoch.Load() }

// Listed reports whether t is on the deny-list, without the memo
// [DenyList.Revoked] keeps on t.
func (d *DenyList) Listed(t *Token) bool { return d.lookup(t) }

var zeroDigest [32]byte

func (d *DenyList) lookup(t *Token) bool {
	if t.Digest != zeroDigest && d.hasDigest(&t.Digest) {
		return true
	}
	if t.TwinDigest != zeroDigest && d.hasDigest(&t.TwinDigest) {
		return true
	}
	if t.Jti != "" {
		s := d.stringShard(t.Jti)
		s.mu.RLock()
		_, a := s.jtis[pairKey{t.Iss, t.Jti}]
		_, b := s.jtis[pairKey{"", t.Jti}]
		s.mu.RUnlock()
		if a || b {
			return true
		}
	}
	if t.Sub != "" && d.issuedBefore(t.Sub, t.Iss, t.Iat, false) {
		return true
	}
	if t.ClientID != "" && d.issuedBefore(t.ClientID, t.Iss, t.Iat, true) {
		return true
	}
	return false
}

func (d *DenyList) hasDigest(h *[32]byte) bool {
	s := d.digestShard(h)
	s.mu.RLock()
	_, ok := s.tokens[*h]
	s.mu.RUnlock()
	return ok
}

// issuedBefore reports whether a sub (or client) entry for id, from iss or
// from any issuer, has a not_before after iat. A token without iat (0) counts
// as issued before every not_before, which is always positive.
func (d *DenyList) issuedBefore(id, iss string, iat int64, client bool) bool {
	s := d.stringShard(id)
	s.mu.RLock()
	m := s.subs
	if client {
		m = s.clients
	}
	a, okA := m[pairKey{iss, id}]
	b, okB := m[pairKey{"", id}]
	s.mu.RUnlock()
	return (okA && iat < a.nb) || (okB && iat < b.nb)
}

// forgetAfter returns the unix second after which an entry of e may be
// dropped, given the current unix second.
func (d *DenyList) forgetAfter(e *Event, now int64) int64 {
	switch e.Kind {
	case KindSub, KindClient:
		return e.NotBefore + d.mtl + d.leeway
	default:
		if e.Exp > 0 {
			return e.Exp + d.leeway
		}
		return now + d.mtl + d.leeway
	}
}

func (d *DenyList) intern(iss string) string {
	if iss == "" {
		return ""
	}
	d.issMu.Lock()
	defer d.issMu.Unlock()
	if v, ok := d.iss[iss]; ok {
		return v
	}
	if len(d.iss) < maxInterned {
		d.iss[iss] = iss
	}
	return iss
}

// Apply adds the revocation e to the list. It is idempotent: applying an
// event twice, or an event that an earlier one covers, changes nothing. An
// event that is malformed ([Event.Validate]) or already past the time its
// entry would be forgotten is ignored. For sub and client the largest
// not_before wins; for jti and token the latest forget time wins.
//
// It reports whether the list changed, that is whether the event revokes a
// token that the list did not revoke before or keeps an entry longer.
func (d *DenyList) Apply(e Event) (applied bool) {
	if e.Validate() != nil {
		return false
	}
	now := d.now().Unix()
	forget := d.forgetAfter(&e, now)
	if now > forget {
		return false
	}
	var (
		added bool // a new entry
		grew  bool // more tokens are revoked than before: readers must look again
	)
	switch e.Kind {
	case KindToken:
		s := d.digestShard(&e.TokenSHA256)
		s.mu.Lock()
		old, ok := s.tokens[e.TokenSHA256]
		if !ok || forget > old {
			s.tokens[e.TokenSHA256] = forget
			applied = true
		}
		s.mu.Unlock()
		added, grew = !ok, !ok
	case KindJTI:
		k := pairKey{d.intern(e.Iss), e.Jti}
		s := d.stringShard(e.Jti)
		s.mu.Lock()
		old, ok := s.jtis[k]
		if !ok || forget > old {
			s.jtis[k] = forget
			applied = true
		}
		s.mu.Unlock()
		added, grew = !ok, !ok
	case KindSub, KindClient:
		id := e.Sub
		if e.Kind == KindClient {
			id = e.ClientID
		}
		k := pairKey{d.intern(e.Iss), id}
		s := d.stringShard(id)
		s.mu.Lock()
		m := s.subs
		if e.Kind == KindClient {
			m = s.clients
		}
		// A later not_before revokes a superset of what an earlier one
		// revokes and is kept longer, so the largest wins on both counts.
		old, ok := m[k]
		if !ok || e.NotBefore > old.nb {
			m[k] = notBefore{nb: e.NotBefore, forget: forget}
			applied = true
		}
		s.mu.Unlock()
		added, grew = !ok, applied
	}
	if added {
		d.counts[e.Kind.index()].Add(1)
	}
	if grew {
		// After the entry is visible: see Revoked.
		d.epoch.Store(lastEpoch.Add(1))
	}
	return applied
}

// Prune drops the entries whose forget time is before now and returns how
// many it dropped. Dropping never makes a token revoked, so it does not
// invalidate what [DenyList.Revoked] remembered.
func (d *DenyList) Prune(now time.Time) int {
	t := now.Unix()
	var dropped [len(kinds)]int
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for k, f := range s.tokens {
			if t > f {
				delete(s.tokens, k)
				dropped[KindToken.index()]++
			}
		}
		for k, f := range s.jtis {
			if t > f {
				delete(s.jtis, k)
				dropped[KindJTI.index()]++
			}
		}
		for k, v := range s.subs {
			if t > v.forget {
				delete(s.subs, k)
				dropped[KindSub.index()]++
			}
		}
		for k, v := range s.clients {
			if t > v.forget {
				delete(s.clients, k)
				dropped[KindClient.index()]++
			}
		}
		s.mu.Unlock()
	}
	total := 0
	for i, n := range dropped {
		d.counts[i].Add(-int64(n))
		total += n
	}
	return total
}

// Len returns the number of entries by kind, for metrics. All four kinds
// are present in the map, with 0 when the list holds none of them.
func (d *DenyList) Len() map[Kind]int {
	m := make(map[Kind]int, len(kinds))
	for i, k := range kinds {
		m[k] = int(d.counts[i].Load())
	}
	return m
}
