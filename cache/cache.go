// Package cache keeps answers for tokens that were already checked, keyed by
// a 128-bit keyed hash of the token string (see [Key]).
//
// It wraps a ristretto cache. Ristretto identifies keys only by 64-bit
// hashes and may silently drop writes, so this package
//
//   - holds values that carry the full Key they were stored under and serves
//     a hit only when it matches the Key asked for: a 64-bit collision is a
//     miss, never another token's answer;
//   - never holds anything that must not be lost (the revocation deny-list
//     lives elsewhere);
//   - lets concurrent misses for one Key share a single computation;
//   - optionally keeps a front table (see [Config.Front]) that answers most
//     hits without entering ristretto.
package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/introspectd/introspectd/internal/prefetch"
)

// Value is what a Cache holds: a pointer to a value that knows the Key it
// is stored under. Keeping the Key in the value rather than in a wrapper
// saves a hit one dependent memory load (a cache miss under load, with many
// tokens) and an allocation per entry.
type Value interface {
	CacheKey() *Key
}

// Ptr constrains a Cache's values to pointers to T that are Values, so the
// front table can hold them in atomic pointers.
type Ptr[T any] interface {
	*T
	Value
}

// itemOverhead approximates what one entry costs beyond the value's own
// bytes: ristretto's store item and policy bookkeeping. Counting it keeps
// MaxBytes close to real memory use.
const itemOverhead = 112

// Config configures a Cache. The zero value is not usable: MaxBytes is
// required.
type Config struct {
	// MaxBytes bounds the memory held by entries, counting each entry's
	// Cost plus a fixed per-entry overhead.
	MaxBytes int64
	// AvgEntryBytes sizes ristretto's admission counters and the front
	// table; 0 means 512.
	AvgEntryBytes int64
	// Front puts a direct-mapped table of recently hit values in front of
	// ristretto. A value in it is served until ristretto lets it go, which
	// for an expired value can be some seconds after its ttl (ristretto
	// sweeps expired items in 5-second buckets): use it only when the
	// caller checks expiry itself.
	Front bool
}

// sampleEvery is how often, as a power of two, a front-table hit is also
// told to ristretto (and a ristretto hit takes over a front slot another
// value holds), whose admission policy (TinyLFU) keeps a value only
// if it is asked for more often than what it would evict. A hot token is
// asked for thousands of times, and an eighth of that still wins those
// comparisons against tokens seen once, at an eighth of the cost.
//
// Front-table hits are told only while the cache holds at least half its
// budget (see [Cache.noteFill]): ristretto consults the counts only when a
// new value does not fit, and the second half takes long enough to fill
// (each value is a verified token) for hot tokens to have counted by then.
const sampleEvery = 8

// fillEvery is how often, on average, Set looks at how full the cache is
// (see [Cache.noteFill]).
const fillEvery = 16

// Cache maps token Keys to values of type V (pointers to T). It is safe
// for concurrent use. Get does not allocate.
type Cache[T any, V Ptr[T]] struct {
	rc    *ristretto.Cache[uint64, V]
	group singleflight.Group
	// front answers a hit in two memory loads (slot, value) where
	// ristretto's Get takes a shard lock, a map probe, a clock read for the
	// expiry and a push into its admission buffer. In a profile under an
	// open-loop hit load, ristretto's Get was 6.6% of all samples and its
	// admission work 2.8%, the largest user-space cost after the kernel's;
	// the table took 0.35-0.4 µs off the 11 µs of server CPU per request
	// (alternating A/B runs). Ristretto is here the bottleneck the library
	// rule allows us to work around. Slots hold only values ristretto
	// holds: a value is put in after a ristretto hit and taken out when
	// ristretto lets it go (OnExit), so ristretto's byte budget and
	// eviction stay in charge.
	front      []atomic.Pointer[T]
	frontShift uint
	// sampling says front-table hits are told to ristretto (see
	// sampleEvery); it sits by front, whose line a hit reads anyway.
	sampling atomic.Bool
	half     int64 // sampling starts when no more than this is left
	hits     counter
	misses   counter
	// collide maps every Key to one ristretto key; tests use it to prove
	// that a collision is a miss. (A func field here would make every Key
	// escape to the heap, an allocation per lookup.)
	collide bool
}

// New returns a cache bounded by cfg.MaxBytes.
func New[T any, V Ptr[T]](cfg Config) (*Cache[T, V], error) {
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("cache: MaxBytes must be positive")
	}
	avg := cfg.AvgEntryBytes
	if avg <= 0 {
		avg = 512
	}
	entries := cfg.MaxBytes / avg
	counters := max(10*entries, 1000)
	c := &Cache[T, V]{}
	budget := cfg.MaxBytes
	if cfg.Front {
		// One slot per entry the budget holds, rounded up to a power of
		// two, between 2^10 and 2^20 (8 MiB), on huge pages where it can
		// be (see newFront); its bytes come out of the budget.
		n := uint(bits.Len64(uint64(max(entries, 1) - 1)))
		n = min(max(n, 10), 20)
		var size int64
		c.front, size = newFront[T](1 << n)
		c.frontShift = 64 - n
		budget -= size
		if budget <= 0 {
			return nil, fmt.Errorf("cache: MaxBytes %d too small for the front table", cfg.MaxBytes)
		}
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, V]{
		NumCounters: counters,
		MaxCost:     budget,
		BufferItems: 64,
		Metrics:     true,
		// Our cost already counts the per-entry overhead.
		IgnoreInternalCost: true,
		OnExit:             c.exit,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	c.half = budget - budget/2
	return c, nil
}

// slot is the front-table slot of a Key with hint h (see [Keyer.Hint]).
func (c *Cache[T, V]) slot(h uint64) *atomic.Pointer[T] {
	return &c.front[h>>c.frontShift]
}

// exit runs when ristretto lets v go (evicted, expired, rejected by
// admission, replaced): v must then leave the front table too.
func (c *Cache[T, V]) exit(v V) {
	if c.front != nil && v != nil {
		c.slot(v.CacheKey().hint()).CompareAndSwap((*T)(v), nil)
	}
}

// keyFor uses the Key's first 8 bytes as ristretto's key: the Key is
// already a uniform hash, so hashing it again would only cost time.
func (c *Cache[T, V]) keyFor(d *Key) uint64 {
	if c.collide {
		return 42
	}
	return binary.LittleEndian.Uint64(d[:8])
}

// Prefetch starts loading the memory a Get of a Key with hint h (see
// [Keyer.Hint]) reads first, its front-table slot, so that a caller with
// other work to do before its Get, such as computing the Key, does that
// work while the slot is on its way: a slot is a random line in a table of
// megabytes, a miss in every CPU cache under load.
func (c *Cache[T, V]) Prefetch(h uint64) {
	if c.front != nil {
		prefetch.Line(unsafe.Pointer(c.slot(h)))
	}
}

// PrefetchValue starts loading the first line of the value in the front
// slot of hint h, the next miss of a Get after the slot's. Call it after
// Prefetch, once the slot has had time to arrive (the load of the slot
// waits for it), and some work before the Get.
func (c *Cache[T, V]) PrefetchValue(h uint64) {
	if c.front != nil {
		prefetch.Line(unsafe.Pointer(c.slot(h).Load()))
	}
}

// Get returns the value stored under d, if any.
func (c *Cache[T, V]) Get(d *Key) (V, bool) {
	var slot *atomic.Pointer[T]
	var held *T
	if c.front != nil {
		slot = c.slot(d.hint())
		held = slot.Load()
		if v := V(held); v != nil && *v.CacheKey() == *d {
			c.hits.add(d)
			if c.sampling.Load() && rand.Uint32()%sampleEvery == 0 {
				c.rc.Get(c.keyFor(d))
			}
			return v, true
		}
	}
	v, ok := c.rc.Get(c.keyFor(d))
	if !ok || *v.CacheKey() != *d {
		c.misses.add(d)
		return nil, false
	}
	c.hits.add(d)
	// A slot held by another value is taken over only now and then: two
	// hot tokens sharing a slot would otherwise displace each other on
	// every hit, each time paying ristretto's lookup twice.
	if slot != nil && (held == nil || rand.Uint32()%sampleEvery == 0) {
		c.promote(slot, v)
	}
	return v, true
}

// promote puts v, just found in ristretto, in the front table. Ristretto
// may have let v go since it was found, in which case exit ran before v was
// in the slot and left it; looking again after the store settles it: if v
// is still there, any later exit will see it in the slot.
func (c *Cache[T, V]) promote(slot *atomic.Pointer[T], v V) {
	slot.Store((*T)(v))
	if w, ok := c.rc.Get(c.keyFor(v.CacheKey())); !ok || w != v {
		slot.CompareAndSwap((*T)(v), nil)
	}
}

// Set stores v under its Key with the given cost in bytes, for at most
// ttl. A non-positive ttl stores nothing. Like ristretto, Set may drop the
// write.
func (c *Cache[T, V]) Set(v V, cost int64, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	ok := c.rc.SetWithTTL(c.keyFor(v.CacheKey()), v, cost+itemOverhead, ttl)
	if rand.Uint32()%fillEvery == 0 {
		c.noteFill()
	}
	return ok
}

// noteFill turns the sampling of front-table hits on while ristretto holds
// at least half its budget, and off below. Under that, every new value
// fits, so ristretto admits it without looking at a count. Telling it was
// a quarter of the handler's samples in a server profile under an open-loop
// hit load (its map lookup, a miss in every CPU cache, and the admission
// goroutine's work); not telling took 0.12-0.55 µs off the server CPU per
// request, every run lower (two sets of 6 paired open-loop runs at 40,000
// req/s over 10,000 tokens: means 0.27 and 0.30).
// Only Set makes the cache fuller, so Set is where to look, one Set in
// fillEvery: RemainingCost takes ristretto's policy lock, about 1 µs with
// cold CPU caches, beside a miss of 30-80 µs that the miss-path target
// allows 20% over the bare signature verify. A cache emptied by expiry
// keeps sampling until a Set looks, which costs time, never admission
// quality.
func (c *Cache[T, V]) noteFill() {
	if c.front == nil {
		return
	}
	on := c.rc.RemainingCost() <= c.half
	if c.sampling.Load() != on { // no store, so no cache-line bounce, in the steady state
		c.sampling.Store(on)
	}
}

// Do runs fn once for all concurrent callers asking for the same Key and
// returns its result to each of them. It does not consult or fill the cache:
// callers decide what is worth storing.
func (c *Cache[T, V]) Do(d *Key, fn func() (V, error)) (V, error) {
	v, err, _ := c.group.Do(string(d[:]), func() (any, error) { return fn() })
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

// Wait blocks until buffered writes are applied. Tests use it; the service
// does not need it.
func (c *Cache[T, V]) Wait() { c.rc.Wait() }

// Close stops the cache's goroutines.
func (c *Cache[T, V]) Close() { c.rc.Close() }

// Stats is a snapshot of the cache's counters, for metrics.
type Stats struct {
	Hits, Misses            uint64
	SetsAdded, SetsRejected uint64
	SetsDropped, Evictions  uint64
	CostBytes, Entries      int64
	CostAdded, CostEvicted  uint64
}

// Stats returns the cache's counters: hits and misses as Get answered
// them, the rest from ristretto.
func (c *Cache[T, V]) Stats() Stats {
	m := c.rc.Metrics
	if m == nil {
		return Stats{}
	}
	added := m.CostAdded()
	evicted := m.CostEvicted()
	return Stats{
		Hits:         c.hits.load(),
		Misses:       c.misses.load(),
		SetsAdded:    m.KeysAdded(),
		SetsRejected: m.SetsRejected(),
		SetsDropped:  m.SetsDropped(),
		Evictions:    m.KeysEvicted(),
		CostAdded:    added,
		CostEvicted:  evicted,
		CostBytes:    int64(added) - int64(evicted),
		Entries:      int64(m.KeysAdded()) - int64(m.KeysEvicted()),
	}
}

// counter is a count that both cores of a busy server can add to without
// bouncing one cache line between them: the Key picks one of 16 stripes.
type counter struct {
	stripes [16]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

func (c *counter) add(d *Key) { c.stripes[d[15]&15].n.Add(1) }

func (c *counter) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}
