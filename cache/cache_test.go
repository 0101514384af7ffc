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

func newTest(t testing.TB) *Cache[*val] {
	t.Helper()
	c, err := New[*val](Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestGetSet(t *testing.T) {
	c := newTest(t)
	a, b := digest("a"), digest("b")
	if !c.Set(&val{a, "answer-a"}, 10, time.Minute) {
		t.Fatal("Set dropped")
	}
	c.Wait()
	if v, ok := c.Get(&a); !ok || v.s != "answer-a" {
		t.Fatalf("Get(a) = %v, %v; want answer-a", v, ok)
	}
	if _, ok := c.Get(&b); ok {
		t.Fatal("Get(b) hit")
	}
	if c.Set(&val{b, "x"}, 10, 0) {
		t.Fatal("Set with ttl 0 stored")
	}
}

// TestCollisionNeverServesOtherToken forces every digest onto one
// ristretto key: the cache must answer a miss, never the other token's
// value.
func TestCollisionNeverServesOtherToken(t *testing.T) {
	c := newTest(t)
	c.collide = true
	a, b := digest("token-a"), digest("token-b")
	c.Set(&val{a, "answer-a"}, 10, time.Minute)
	c.Wait()
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
}

func TestTTL(t *testing.T) {
	c := newTest(t)
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
	c := newTest(t)
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
	c, err := New[*val](Config{MaxBytes: 100_000, AvgEntryBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 2000 {
		d := digest(fmt.Sprint(i))
		c.Set(&val{d, "v"}, 1000, time.Hour)
	}
	c.Wait()
	if got := c.Stats().CostBytes; got > 100_000 {
		t.Fatalf("cost %d over MaxBytes", got)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := newTest(b)
	d := digest("a")
	c.Set(&val{d, "v"}, 10, time.Hour)
	c.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(&d); !ok {
			b.Fatal("miss")
		}
	}
}
