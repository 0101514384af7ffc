package introspect

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestAuthenticate(t *testing.T) {
	long := strings.Repeat("s", 300)
	cs := newClients([]Client{
		{ID: "web", SecretSHA256: sha256.Sum256([]byte("web-secret"))},
		{ID: "a b", SecretSHA256: sha256.Sum256([]byte("p+q"))},
		{ID: "long", SecretSHA256: sha256.Sum256([]byte(long))},
	})
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	for _, tc := range []struct {
		name, header, want string // want: client id, "" for none
	}{
		{"basic", basic("web", "web-secret"), "web"},
		{"basic, scheme in lower case", "basic " + base64.StdEncoding.EncodeToString([]byte("web:web-secret")), "web"},
		{"basic, wrong secret", basic("web", "web-secreT"), ""},
		{"basic, secret of another client", basic("web", "p+q"), ""},
		{"basic, unknown client", basic("nobody", "web-secret"), ""},
		{"basic, form-encoded id and secret", basic("a+b", "p%2Bq"), "a b"},
		{"basic, raw id and secret", basic("a b", "p+q"), "a b"},
		{"basic, no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("web")), ""},
		{"basic, not base64", "Basic !!!", ""},
		{"bearer", "Bearer web-secret", "web"},
		{"bearer, wrong", "Bearer web-secre", ""},
		{"bearer, long secret (not remembered)", "Bearer " + long, "long"},
		{"basic, long (not remembered)", basic("long", long), "long"},
		{"no scheme", "web-secret", ""},
		{"other scheme", "Digest web-secret", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer may come from the memo and must agree.
			for i := range 2 {
				got := ""
				if cl := cs.authenticate([]byte(tc.header)); cl != nil {
					got = cl.ID
				}
				if got != tc.want {
					t.Fatalf("call %d: got client %q, want %q", i+1, got, tc.want)
				}
			}
		})
	}
}

// TestAuthenticateMemo checks that the memo holds only headers that
// authenticated, answers them without allocating, and does not accept a
// header that merely shares a slot or a prefix with a remembered one.
func TestAuthenticateMemo(t *testing.T) {
	cs := newClients([]Client{{ID: "web", SecretSHA256: sha256.Sum256([]byte("web-secret"))}})
	for _, h := range []string{"Bearer wrong", "Bearer web-secre", "Bearer web-secretX"} {
		if cs.authenticate([]byte(h)) != nil {
			t.Fatalf("%q authenticated", h)
		}
	}
	for i := range cs.memo {
		if cs.memo[i].Load() != nil {
			t.Fatal("a header that failed was remembered")
		}
	}
	good := []byte("Bearer web-secret")
	if cs.authenticate(good) == nil {
		t.Fatal("good header refused")
	}
	n := 0
	for i := range cs.memo {
		if m := cs.memo[i].Load(); m != nil {
			n++
			if string(m.header) != string(good) {
				t.Fatalf("memo holds %q", m.header)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d headers remembered, want 1", n)
	}
	// The memo copies the header: a caller reusing its buffer cannot
	// change what is remembered.
	buf := append([]byte(nil), good...)
	cs.authenticate(buf)
	buf[len(buf)-1] = 'X'
	if cs.authenticate(buf) != nil {
		t.Fatal("altered header authenticated")
	}
	if allocs := testing.AllocsPerRun(100, func() { cs.authenticate(good) }); allocs != 0 {
		t.Fatalf("remembered header: %v allocs, want 0", allocs)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	cs := newClients([]Client{{ID: "bench", SecretSHA256: sha256.Sum256([]byte("bench-secret"))}})
	h := []byte("Basic " + base64.StdEncoding.EncodeToString([]byte("bench:bench-secret")))
	b.Run("memo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if cs.authenticate(h) == nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if cs.check(h) == nil {
				b.Fatal("refused")
			}
		}
	})
}
