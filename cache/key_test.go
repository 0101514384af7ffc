package cache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// keyers returns the keyed Keyer (when this machine has the hardware) and
// the SHA-256 fallback, so that both are tested everywhere they can run.
func keyers(t testing.TB) map[string]*Keyer {
	t.Helper()
	k, err := NewKeyer()
	if err != nil {
		t.Fatal(err)
	}
	ks := map[string]*Keyer{"sha256": {}}
	if k.Keyed() {
		ks["gmac-aes"] = k
	}
	return ks
}

func TestKeyDistinguishesTokens(t *testing.T) {
	for name, k := range keyers(t) {
		t.Run(name, func(t *testing.T) {
			base := strings.Repeat("x", 800)
			toks := []string{"", "a", "b", "ab", "ba", base, base + "y", "y" + base, base[:799], strings.Repeat("\x00", 16), strings.Repeat("\x00", 17)}
			// One-byte changes at every position of a block-sized token:
			// GHASH is linear, so single-block differences are its easiest
			// case to get wrong.
			for i := range 48 {
				b := []byte(strings.Repeat("t", 48))
				b[i] ^= 1
				toks = append(toks, string(b))
			}
			seen := map[Key]string{}
			for _, tok := range toks {
				key := k.Key([]byte(tok))
				if key != k.Key([]byte(tok)) {
					t.Fatalf("Key(%q) is not stable", tok)
				}
				if other, dup := seen[key]; dup {
					t.Fatalf("Key(%q) == Key(%q)", tok, other)
				}
				seen[key] = tok
			}
		})
	}
}

// TestKeyIsSecret checks that two processes (two Keyers) key tokens
// differently: an attacker cannot compute Keys offline.
func TestKeyIsSecret(t *testing.T) {
	a, err := NewKeyer()
	if err != nil {
		t.Fatal(err)
	}
	if !a.Keyed() {
		t.Skip("no hardware AES and carry-less multiply here: Keys are SHA-256, which is not secret")
	}
	b, _ := NewKeyer()
	if a.Key([]byte("token")) == b.Key([]byte("token")) {
		t.Fatal("two Keyers gave one Key: the secret is not random")
	}
}

func TestKeyConcurrent(t *testing.T) {
	for name, k := range keyers(t) {
		t.Run(name, func(t *testing.T) {
			want := map[int]Key{}
			for i := range 64 {
				want[i] = k.Key(fmt.Appendf(nil, "token-%d", i))
			}
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range 200 {
						i := (g*31 + r) % 64
						if got := k.Key(fmt.Appendf(nil, "token-%d", i)); got != want[i] {
							t.Errorf("Key(token-%d) changed under concurrency", i)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestKeyAllocs(t *testing.T) {
	for name, k := range keyers(t) {
		tok := []byte(strings.Repeat("x", 800))
		if n := testing.AllocsPerRun(100, func() { k.Key(tok) }); n != 0 {
			t.Errorf("%s: Key allocates %.0f times", name, n)
		}
	}
}

// BenchmarkKey compares the Keyer with the SHA-256 it replaces on the hit
// path, on an 800-byte token.
func BenchmarkKey(b *testing.B) {
	tok := []byte(strings.Repeat("x", 800))
	for name, k := range keyers(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(tok)))
			b.ReportAllocs()
			for b.Loop() {
				k.Key(tok)
			}
		})
	}
}

// TestHint: a Key carries its token's hint, so that Prefetch loads the
// slot that Get then reads, and hints spread tokens whose ends are random
// (as JWT signatures are) evenly over slots.
func TestHint(t *testing.T) {
	for name, k := range keyers(t) {
		t.Run(name, func(t *testing.T) {
			for _, tok := range []string{"", "a", strings.Repeat("x", 15), strings.Repeat("x", 16), strings.Repeat("x", 800)} {
				key := k.Key([]byte(tok))
				if got, want := key.hint(), k.Hint([]byte(tok)); got != want {
					t.Errorf("Key(%d bytes) has hint %#x, Hint says %#x", len(tok), got, want)
				}
			}
			if k.Hint([]byte("abc")) == k.Hint([]byte("abcabc")) {
				t.Error("tokens differing in their tails share a hint")
			}
			tail := strings.Repeat("t", 16)
			if k.Hint([]byte(tail)) != k.Hint([]byte("token="+strings.Repeat("x", 700)+tail)) {
				t.Error("a request body ending in a token's last 16 bytes does not have its hint")
			}
			const slots, n = 1024, 64 * 1024
			var load [slots]int
			rng := rand.New(rand.NewPCG(1, 2))
			tok := []byte(strings.Repeat("h", 700) + "." + strings.Repeat("s", 86))
			for range n {
				for i := len(tok) - 86; i < len(tok); i++ { // a fresh signature
					tok[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng.IntN(64)]
				}
				load[k.Hint(tok)>>(64-10)]++
			}
			// 64 per slot on average; a Poisson(64) slot exceeds 110 or
			// falls below 25 with probability about 1e-7.
			for i, l := range load {
				if l > 110 || l < 25 {
					t.Fatalf("slot %d got %d of %d tokens (mean %d)", i, l, n, n/slots)
				}
			}
		})
	}
}

func TestHintIsSeeded(t *testing.T) {
	a, err := NewKeyer()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKeyer()
	tok := []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl")
	if a.Hint(tok) == b.Hint(tok) {
		t.Fatal("two Keyers gave one hint: the seed is not random")
	}
}
