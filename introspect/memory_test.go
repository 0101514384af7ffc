package introspect

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCachedTokenBytes measures the live heap each cached 800-byte
// token costs (verdict, answer, deny-list identifiers and the cache's own
// bookkeeping), after a full GC, reported as bytes/token. Issue target:
// at most 1.5 KiB.
//
// It also reports what the cached tokens add to a full GC cycle (gc-ns/token:
// the wall time of runtime.GC with the tokens cached, less that of one
// before, per token). A cycle marks every pointer the cache holds, and Go
// runs one at least every two minutes, so with a million tokens this is
// the cost of the cache's layout that a node pays while idle.
func BenchmarkCachedTokenBytes(b *testing.B) {
	const n = 50_000
	k := testKeys()
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		c := claims(now, map[string]any{"jti": strconv.Itoa(i)})
		tok := k.mint(b, "EdDSA", c)
		// Pad to about 800 bytes, as typical access tokens are.
		c["pad"] = strings.Repeat("p", max(0, 800-len(tok)-12)*3/4)
		toks[i] = k.mint(b, "EdDSA", c)
	}
	b.Logf("token length %d bytes", len(toks[0]))
	for b.Loop() {
		c, err := NewChecker(newTestChecker(b, nil, nil).v, CheckerConfig{MaxBytes: 512 << 20})
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		gcBefore := gcTime()
		runtime.ReadMemStats(&before)
		for _, tok := range toks {
			if e, err := c.Check(context.Background(), []byte(tok)); err != nil || !e.Active() {
				b.Fatal("not active")
			}
		}
		c.pos.Wait()
		runtime.GC()
		gcAfter := gcTime()
		runtime.ReadMemStats(&after)
		held := 0
		for _, tok := range toks {
			k := c.keys.Key([]byte(tok))
			if _, ok := c.pos.Get(&k); ok {
				held++
			}
		}
		if held < n*99/100 {
			b.Fatalf("only %d of %d tokens cached", held, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(held), "bytes/token")
		b.ReportMetric(float64(c.pos.Stats().CostBytes)/float64(held), "cost/token")
		b.ReportMetric(float64(gcAfter-gcBefore)/float64(held), "gc-ns/token")
		c.Close()
	}
}

// gcTime is the median wall time of five forced GC cycles: one cycle is
// noisy on a shared machine.
func gcTime() time.Duration {
	var d [5]time.Duration
	for i := range d {
		start := time.Now()
		runtime.GC()
		d[i] = time.Since(start)
	}
	slices.Sort(d[:])
	return d[2]
}
