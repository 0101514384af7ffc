package introspect

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCachedTokenBytes measures the live heap each cached 800-byte
// token costs (verdict, answer, deny-list identifiers and the cache's own
// bookkeeping), after a full GC, reported as bytes/token. Issue target:
// at most 1.5 KiB.
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
		runtime.ReadMemStats(&before)
		for _, tok := range toks {
			if e, err := c.Check(context.Background(), []byte(tok)); err != nil || !e.Active() {
				b.Fatal("not active")
			}
		}
		c.pos.Wait()
		runtime.GC()
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
		c.Close()
	}
}
