package cache

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func digest(s string) (k Key) {
	d := sha256.Sum256([]byte(s))
	copy(k[:], d[:])
	return k
}

// val is a test value: an answer and the Key it is stored under.
type val struct {
	d Key
	s string
}

func (v *val) CacheKey() *Key { return &v.d }

func newTest(t testing.TB, front bool) *Cache[val, *val] {
	t.Helper()
	c, err := New[val](Config{MaxBytes: 1 << 20, Front: front})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// eachMode runs f on a cache without and with a front table.
func eachMode(t *testing.T, f func(t *testing.T, front bool)) {
	for _, front := range []bool{false, true} {
		t.Run(fmt.Sprintf("front=%v", front), func(t *testing.T) { f(t, front) })
	}
}

func TestGetSet(t *testing.T) {
	eachMode(t, func(t *testing.T, front bool) {
		c := newTest(t, front)
		a, b := digest("a"), digest("b")
		if !c.Set(&val{a, "answer-a"}, 10, time.Minute) {
			t.Fatal("Set dropped")
		}
		c.Wait()
		// The second and third Get come from the front table when there
		// is one.
		for range 3 {
			if v, ok := c.Get(&a); !ok || v.s != "answer-a" {
				t.Fatalf("Get(a) = %v, %v; want answer-a", v, ok)
			}
		}
		if _, ok := c.Get(&b); ok {
			t.Fatal("Get(b) hit")
		}
		if c.Set(&val{b, "x"}, 10, 0) {
			t.Fatal("Set with ttl 0 stored")
		}
		if st := c.Stats(); st.Hits != 3 || st.Misses != 1 {
			t.Fatalf("hits %d misses %d, want 3 and 1", st.Hits, st.Misses)
		}
	})
}

// TestFrontHoldsOnlyWhatRistrettoHolds churns a small cache from several
// goroutines, so that ristretto evicts and rejects values while they are
// being promoted to the front table; afterwards no front slot may hold a
// value ristretto let go (it would be kept alive past the byte budget).
func TestFrontHoldsOnlyWhatRistrettoHolds(t *testing.T) {
	c, err := New[val](Config{MaxBytes: 64 << 10, AvgEntryBytes: 1000, Front: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const keys = 400
	vals := make([]*val, keys)
	for i := range vals {
		vals[i] = &val{digest(fmt.Sprint(i)), fmt.Sprint(i)}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20_000 {
				v := vals[(i*7+g*13)%keys]
				if got, ok := c.Get(&v.d); ok {
					if got != v {
						t.Errorf("Get(%s) = value %s", v.s, got.s)
						return
					}
					continue
				}
				c.Set(v, 1000, time.Hour)
			}
		}()
	}
	wg.Wait()
	c.Wait()
	for _, v := range vals {
		if c.slot(v.d.hint()).Load() != v {
			continue
		}
		if w, ok := c.rc.Get(c.keyFor(&v.d)); !ok || w != v {
			t.Errorf("value %s is in the front table but not in ristretto", v.s)
		}
	}
	// And hits do fill it.
	inFront := 0
	for _, v := range vals {
		if _, ok := c.Get(&v.d); ok && c.slot(v.d.hint()).Load() == v {
			inFront++
		}
	}
	if inFront == 0 {
		t.Fatal("no hit put its value in the front table")
	}
	if st := c.Stats(); st.Evictions+st.SetsRejected == 0 {
		t.Fatal("ristretto let nothing go: the test proves nothing")
	}
}

// TestFrontHitsReachAdmission: hits served from the front table must
// still reach ristretto's admission policy (TinyLFU) once the cache is half
// full, or a stream of tokens asked for once would evict the hot ones. A
// sample of them does: sampleEvery is the rate. Below half, where
// ristretto admits without counting, none does.
func TestFrontHitsReachAdmission(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fill     int64 // cost stored besides the hot value
		sampling bool
	}{
		{"empty", 0, false},
		{"under half", 400 << 10, false},
		{"over half", 600 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTest(t, true) // 1 MiB
			if tc.fill > 0 {
				c.Set(&val{digest("filler"), "filler"}, tc.fill, time.Hour)
			}
			v := &val{digest("hot"), "hot"}
			c.Set(v, 10, time.Hour)
			c.Wait()
			c.noteFill() // as one Set in fillEvery does
			c.Get(&v.d)  // promoted to the front table
			before := c.rc.Metrics.Hits()
			const n = 16_000
			for range n {
				c.Get(&v.d)
			}
			got := c.rc.Metrics.Hits() - before
			if !tc.sampling {
				if got != 0 {
					t.Fatalf("%d of %d front-table hits reached ristretto below half its budget, want 0", got, n)
				}
				return
			}
			// Binomial(n, 1/sampleEvery): mean 2,000, sd 42.
			if want := uint64(n / sampleEvery); got < want*3/4 || got > want*5/4 {
				t.Fatalf("%d of %d front-table hits reached ristretto, want about %d", got, n, want)
			}
		})
	}
}

// TestSetTurnsSamplingOn: the cache starts sampling front-table hits as
// Sets fill it past half its budget, before it is full, where ristretto's
// admission starts comparing counts.
func TestSetTurnsSamplingOn(t *testing.T) {
	c, err := New[val](Config{MaxBytes: 1 << 20, AvgEntryBytes: 1000, Front: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const cost = 1000 // +itemOverhead: about 930 values fill the budget
	for i := range 2000 {
		c.Set(&val{digest(fmt.Sprint(i)), fmt.Sprint(i)}, cost, time.Hour)
		c.Wait()
		left := c.rc.RemainingCost()
		switch on := c.sampling.Load(); {
		case on && left > c.half:
			t.Fatalf("sampling after %d values, with %d of %d bytes left", i+1, left, c.rc.MaxCost())
		case !on && left < cost+itemOverhead:
			// Each Set looks with probability 1/fillEvery, and about 465
			// Sets lie between half full and full: (15/16)^465 ≈ 1e-13.
			t.Fatalf("full after %d values, and still not sampling", i+1)
		case on:
			return
		}
	}
	t.Fatal("2000 values never filled the cache")
}

// TestFrontSlotTakeover: a value takes an empty front slot at its first
// hit, and one held by another value after a few.
func TestFrontSlotTakeover(t *testing.T) {
	c := newTest(t, true)
	a, b := &val{digest("a"), "a"}, &val{digest("b"), "b"}
	copy(b.d[16:], a.d[16:]) // same hint, so same slot
	c.Set(a, 10, time.Hour)
	c.Set(b, 10, time.Hour)
	c.Wait()
	c.Get(&a.d)
	if c.slot(a.d.hint()).Load() != a {
		t.Fatal("first hit did not take the empty slot")
	}
	for range 200 { // 1 - (7/8)^200: the slot moves with certainty
		if v, ok := c.Get(&b.d); !ok || v != b {
			t.Fatalf("Get(b) = %v, %v", v, ok)
		}
	}
	if c.slot(b.d.hint()).Load() != b {
		t.Fatal("200 hits did not take over the slot")
	}
}

func TestCollisionNeverServesOtherToken(t *testing.T) {
	eachMode(t, func(t *testing.T, front bool) {
		c := newTest(t, front)
		c.collide = true
		a, b := digest("token-a"), digest("token-b")
		// Same front slot too, when there is a front table.
		copy(b[8:], a[8:])
		c.Set(&val{a, "answer-a"}, 10, time.Minute)
		c.Wait()
		c.Get(&a) // promoted to the front table
		if v, ok := c.Get(&b); ok {
			t.Fatalf("Get(b) = %q: served token a's answer for token b", v.s)
		}
		c.Set(&val{b, "answer-b"}, 10, time.Minute)
		c.Wait()
		if v, ok := c.Get(&a); ok && v.s != "answer-a" {
			t.Fatalf("Get(a) = %q after b overwrote the slot", v.s)
		}
		if v, ok := c.Get(&b); ok && v.s != "answer-b" {
			t.Fatalf("Get(b) = %q", v.s)
		}
	})
}

// TestTTL covers the cache without a front table, whose values go at
// their ttl (with one, the caller checks expiry: see Config.Front).
func TestTTL(t *testing.T) {
	c := newTest(t, false)
	a := digest("a")
	c.Set(&val{a, "v"}, 10, 50*time.Millisecond)
	c.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := c.Get(&a); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("entry outlived its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDoSharesOneCall(t *testing.T) {
	c := newTest(t, false)
	d := digest("x")
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Do(&d, func() (*val, error) {
				calls.Add(1)
				<-release
				return &val{d, "v"}, nil
			})
			if err != nil || v.s != "v" {
				t.Errorf("Do = %v, %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want 1", n)
	}
	boom := errors.New("boom")
	if _, err := c.Do(&d, func() (*val, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Do error = %v", err)
	}
}

func TestBoundedByMaxBytes(t *testing.T) {
	eachMode(t, func(t *testing.T, front bool) {
		c, err := New[val](Config{MaxBytes: 100_000, AvgEntryBytes: 1000, Front: front})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 2000 {
			d := digest(fmt.Sprint(i))
			c.Set(&val{d, "v"}, 1000, time.Hour)
			c.Get(&d)
		}
		c.Wait()
		got := c.Stats().CostBytes + int64(len(c.front))*8
		if got > 100_000 {
			t.Fatalf("cost %d (front table included) over MaxBytes", got)
		}
	})
}

func TestFrontTooSmall(t *testing.T) {
	if _, err := New[val](Config{MaxBytes: 4096, AvgEntryBytes: 1000, Front: true}); err == nil {
		t.Fatal("a budget smaller than the front table accepted")
	}
}

// BenchmarkGetHit is a hit on one value, from ristretto and from the
// front table.
func BenchmarkGetHit(b *testing.B) {
	for _, front := range []bool{false, true} {
		b.Run(fmt.Sprintf("front=%v", front), func(b *testing.B) {
			c := newTest(b, front)
			d := digest("a")
			c.Set(&val{d, "v"}, 10, time.Hour)
			c.Wait()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.Get(&d); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}
