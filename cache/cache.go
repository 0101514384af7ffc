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
//   - lets concurrent misses for one Key share a single computation.
package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// Value is what a Cache holds: a pointer to a value that knows the Key it
// is stored under. Keeping the Key in the value rather than in a wrapper
// saves a hit one dependent memory load (a cache miss under load, with many
// tokens) and an allocation per entry.
type Value interface {
	CacheKey() *Key
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
	// AvgEntryBytes sizes ristretto's admission counters; 0 means 512.
	AvgEntryBytes int64
}

// Cache maps token Keys to values of type V. It is safe for concurrent
// use. Get does not allocate.
type Cache[V Value] struct {
	rc    *ristretto.Cache[uint64, V]
	group singleflight.Group
	// collide maps every Key to one ristretto key; tests use it to prove
	// that a collision is a miss. (A func field here would make every Key
	// escape to the heap, an allocation per lookup.)
	collide bool
}

// New returns a cache bounded by cfg.MaxBytes.
func New[V Value](cfg Config) (*Cache[V], error) {
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("cache: MaxBytes must be positive")
	}
	avg := cfg.AvgEntryBytes
	if avg <= 0 {
		avg = 512
	}
	counters := 10 * (cfg.MaxBytes / avg)
	if counters < 1000 {
		counters = 1000
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, V]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		Metrics:     true,
		// Our cost already counts the per-entry overhead.
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache[V]{rc: rc}, nil
}

// keyFor uses the Key's first 8 bytes as ristretto's key: the Key is
// already a uniform hash, so hashing it again would only cost time.
func (c *Cache[V]) keyFor(d *Key) uint64 {
	if c.collide {
		return 42
	}
	return binary.LittleEndian.Uint64(d[:8])
}

// Get returns the value stored under d, if any.
func (c *Cache[V]) Get(d *Key) (V, bool) {
	v, ok := c.rc.Get(c.keyFor(d))
	if !ok || *v.CacheKey() != *d {
		var zero V
		return zero, false
	}
	return v, true
}

// Set stores v under its Key with the given cost in bytes, for at most
// ttl. A non-positive ttl stores nothing. Like ristretto, Set may drop the
// write.
func (c *Cache[V]) Set(v V, cost int64, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	return c.rc.SetWithTTL(c.keyFor(v.CacheKey()), v, cost+itemOverhead, ttl)
}

// Do runs fn once for all concurrent callers asking for the same Key and
// returns its result to each of them. It does not consult or fill the cache:
// callers decide what is worth storing.
func (c *Cache[V]) Do(d *Key, fn func() (V, error)) (V, error) {
	v, err, _ := c.group.Do(string(d[:]), func() (any, error) { return fn() })
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

// Wait blocks until buffered writes are applied. Tests use it; the service
// does not need it.
func (c *Cache[V]) Wait() { c.rc.Wait() }

// Close stops the cache's goroutines.
func (c *Cache[V]) Close() { c.rc.Close() }

// Stats is a snapshot of the cache's counters, for metrics.
type Stats struct {
	Hits, Misses            uint64
	SetsAdded, SetsRejected uint64
	SetsDropped, Evictions  uint64
	CostBytes, Entries      int64
	CostAdded, CostEvicted  uint64
}

// Stats returns ristretto's counters. Misses include Key mismatches only
// as ristretto saw them (hits of a colliding key count as ristretto hits).
func (c *Cache[V]) Stats() Stats {
	m := c.rc.Metrics
	if m == nil {
		return Stats{}
	}
	added := m.CostAdded()
	evicted := m.CostEvicted()
	return Stats{
		Hits:         m.Hits(),
		Misses:       m.Misses(),
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
