package revocation

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// clock is an injectable clock for deny-list tests.
type clock struct{ unix atomic.Int64 }

func newClock(unix int64) *clock {
	c := &clock{}
	c.unix.Store(unix)
	return c
}

func (c *clock) Now() time.Time { return time.Unix(c.unix.Load(), 0) }
func (c *clock) Set(unix int64) { c.unix.Store(unix) }

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

const (
	issA = "https://a.example/"
	issB = "https://b.example/"
	t0   = int64(1_767_225_600) // 2026-01-01T00:00:00Z
)

func TestDenyListSemantics(t *testing.T) {
	tok := func(mod func(*Token)) *Token {
		t := &Token{Digest: digest("tok"), TwinDigest: digest("twin"), Iss: issA, Jti: "j1", Sub: "alice", ClientID: "gw", Iat: t0, Exp: t0 + 3600}
		if mod != nil {
			mod(t)
		}
		return t
	}
	jti := func(iss, id string) Event { return Event{Kind: KindJTI, Iss: iss, Jti: id, Exp: t0 + 3600} }
	sub := func(iss, id string, nb int64) Event { return Event{Kind: KindSub, Iss: iss, Sub: id, NotBefore: nb} }
	client := func(iss, id string, nb int64) Event {
		return Event{Kind: KindClient, Iss: iss, ClientID: id, NotBefore: nb}
	}
	token := func(s string) Event { return Event{Kind: KindToken, TokenSHA256: digest(s), Exp: t0 + 3600} }

	tests := []struct {
		name   string
		events []Event
		token  *Token
		want   bool
	}{
		{"empty list", nil, tok(nil), false},
		{"jti from same issuer", []Event{jti(issA, "j1")}, tok(nil), true},
		{"jti from any issuer", []Event{jti("", "j1")}, tok(nil), true},
		{"jti any issuer, token without iss", []Event{jti("", "j1")}, tok(func(t *Token) { t.Iss = "" }), true},
		{"jti from other issuer", []Event{jti(issB, "j1")}, tok(nil), false},
		{"other jti", []Event{jti(issA, "j2")}, tok(nil), false},
		{"jti event, token without jti", []Event{jti(issA, "j1")}, tok(func(t *Token) { t.Jti = "" }), false},
		{"jti named like the sub", []Event{jti(issA, "alice")}, tok(func(t *Token) { t.Jti = "" }), false},
		{"empty jti is rejected", []Event{jti(issA, "")}, tok(func(t *Token) { t.Jti = "" }), false},

		{"token digest", []Event{token("tok")}, tok(nil), true},
		{"token twin digest", []Event{token("twin")}, tok(nil), true},
		{"other token", []Event{token("other")}, tok(nil), false},
		{"token event covers twin presented", []Event{token("tok")}, tok(func(t *Token) { t.Digest, t.TwinDigest = digest("twin"), digest("tok") }), true},
		{"zero digest matches no token without twin", []Event{{Kind: KindToken, Exp: t0 + 3600}}, tok(func(t *Token) { t.TwinDigest = [32]byte{} }), false},
		{"token event ignores issuer", []Event{{Kind: KindToken, Iss: issB, TokenSHA256: digest("tok"), Exp: t0 + 3600}}, tok(nil), true},

		{"sub issued before", []Event{sub(issA, "alice", t0+1)}, tok(nil), true},
		{"sub issued at not_before", []Event{sub(issA, "alice", t0)}, tok(nil), false},
		{"sub issued after", []Event{sub(issA, "alice", t0-1)}, tok(nil), false},
		{"sub, token without iat", []Event{sub(issA, "alice", t0-1000)}, tok(func(t *Token) { t.Iat = 0 }), true},
		{"sub from any issuer", []Event{sub("", "alice", t0+1)}, tok(nil), true},
		{"sub from other issuer", []Event{sub(issB, "alice", t0+1)}, tok(nil), false},
		{"other sub", []Event{sub(issA, "bob", t0+1)}, tok(nil), false},
		{"sub event, token without sub", []Event{sub(issA, "alice", t0+1)}, tok(func(t *Token) { t.Sub = "" }), false},
		{"empty sub is rejected", []Event{sub(issA, "", t0+1)}, tok(func(t *Token) { t.Sub = "" }), false},
		{"sub named like the client", []Event{sub(issA, "gw", t0+1)}, tok(nil), false},
		{"larger not_before wins, later", []Event{sub(issA, "alice", t0-10), sub(issA, "alice", t0+10)}, tok(nil), true},
		{"larger not_before wins, earlier", []Event{sub(issA, "alice", t0+10), sub(issA, "alice", t0-10)}, tok(nil), true},
		{"issuer entry older, any-issuer entry newer", []Event{sub(issA, "alice", t0-10), sub("", "alice", t0+10)}, tok(nil), true},
		{"any-issuer entry older, issuer entry newer", []Event{sub("", "alice", t0-10), sub(issA, "alice", t0+10)}, tok(nil), true},

		{"client issued before", []Event{client(issA, "gw", t0+1)}, tok(nil), true},
		{"client issued after", []Event{client(issA, "gw", t0-1)}, tok(nil), false},
		{"client from any issuer", []Event{client("", "gw", t0+1)}, tok(nil), true},
		{"client from other issuer", []Event{client(issB, "gw", t0+1)}, tok(nil), false},
		{"client named like the sub", []Event{client(issA, "alice", t0+1)}, tok(nil), false},
		{"client, token without iat", []Event{client(issA, "gw", t0-1000)}, tok(func(t *Token) { t.Iat = 0 }), true},
		{"empty client_id is rejected", []Event{client(issA, "", t0+1)}, tok(func(t *Token) { t.ClientID = "" }), false},

		// No kind masks another.
		{"older sub does not un-revoke a jti", []Event{jti(issA, "j1"), sub(issA, "alice", t0-100)}, tok(nil), true},
		{"older sub before jti does not mask it", []Event{sub(issA, "alice", t0-100), jti(issA, "j1")}, tok(nil), true},
		{"older client does not un-revoke a token", []Event{token("tok"), client(issA, "gw", t0-100)}, tok(nil), true},
		{"other issuer's jti does not mask sub", []Event{sub(issA, "alice", t0+1), jti(issB, "j1")}, tok(nil), true},
		{"sub of other issuer next to client of this one", []Event{sub(issB, "alice", t0+1), client(issA, "gw", t0+1)}, tok(nil), true},
		{"all kinds for other tokens", []Event{jti(issA, "j2"), token("x"), sub(issA, "bob", t0+1), client(issA, "other", t0+1), jti(issB, "j1"), sub(issB, "alice", t0+1)}, tok(nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(t0)
			d := NewDenyList(DenyListConfig{Leeway: 30 * time.Second, MaxTokenLifetime: time.Hour, Now: clk.Now})
			for _, e := range tt.events {
				d.Apply(e)
			}
			if got := d.Revoked(tt.token); got != tt.want {
				t.Errorf("Revoked = %v, want %v", got, tt.want)
			}
			// Twice: the second answer may come from the memo.
			if got := d.Revoked(tt.token); got != tt.want {
				t.Errorf("second Revoked = %v, want %v", got, tt.want)
			}
			if got := d.Listed(tt.token); got != tt.want {
				t.Errorf("Listed = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDenyListTTL walks the clock across forget times: an entry revokes
// from the moment it is applied until Prune drops it, which happens only
// after exp+leeway (jti, token) or not_before+max_token_lifetime+leeway (sub,
// client); never active in between.
func TestDenyListTTL(t *testing.T) {
	const leeway, mtl = 30, 3600
	tests := []struct {
		name   string
		event  Event
		token  *Token
		forget int64 // last second the entry must be kept
	}{
		{"jti", Event{Kind: KindJTI, Iss: issA, Jti: "j", Exp: t0 + 100}, &Token{Iss: issA, Jti: "j", Iat: t0}, t0 + 100 + leeway},
		{"jti without exp", Event{Kind: KindJTI, Jti: "j"}, &Token{Iss: issA, Jti: "j", Iat: t0}, t0 + mtl + leeway},
		{"token", Event{Kind: KindToken, TokenSHA256: digest("x"), Exp: t0 + 100}, &Token{Digest: digest("x")}, t0 + 100 + leeway},
		{"token without exp", Event{Kind: KindToken, TokenSHA256: digest("x")}, &Token{Digest: digest("x")}, t0 + mtl + leeway},
		{"sub", Event{Kind: KindSub, Iss: issA, Sub: "s", NotBefore: t0 + 10}, &Token{Iss: issA, Sub: "s", Iat: t0}, t0 + 10 + mtl + leeway},
		{"client", Event{Kind: KindClient, ClientID: "c", NotBefore: t0 + 10}, &Token{Iss: issA, ClientID: "c", Iat: t0}, t0 + 10 + mtl + leeway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(t0)
			d := NewDenyList(DenyListConfig{Leeway: leeway * time.Second, MaxTokenLifetime: mtl * time.Second, Now: clk.Now})
			if d.Revoked(tt.token) {
				t.Fatal("revoked before the event")
			}
			if !d.Apply(tt.event) {
				t.Fatal("Apply = false, want true")
			}
			for _, at := range []int64{t0, t0 + 50, tt.forget - 1, tt.forget} {
				clk.Set(at)
				if n := d.Prune(clk.Now()); n != 0 {
					t.Fatalf("Prune at forget%+d dropped %d entries, want 0", at-tt.forget, n)
				}
				if !d.Revoked(tt.token) {
					t.Fatalf("not revoked at forget%+d", at-tt.forget)
				}
			}
			if got := d.Len()[tt.event.Kind]; got != 1 {
				t.Fatalf("Len[%s] = %d, want 1", tt.event.Kind, got)
			}
			clk.Set(tt.forget + 1)
			if n := d.Prune(clk.Now()); n != 1 {
				t.Fatalf("Prune after forget dropped %d entries, want 1", n)
			}
			if d.Revoked(tt.token) {
				t.Fatal("still revoked after it was pruned")
			}
			if got := d.Len()[tt.event.Kind]; got != 0 {
				t.Fatalf("Len[%s] = %d, want 0", tt.event.Kind, got)
			}
			// An event already past its forget time is ignored.
			if tt.event.Exp != 0 || tt.event.NotBefore != 0 {
				if d.Apply(tt.event) {
					t.Fatal("Apply of an expired event = true, want false")
				}
				if d.Revoked(tt.token) {
					t.Fatal("an expired event revoked the token")
				}
			}
		})
	}
}

func TestDenyListIdempotent(t *testing.T) {
	clk := newClock(t0)
	d := NewDenyList(DenyListConfig{Now: clk.Now})
	e := Event{Kind: KindJTI, Iss: issA, Jti: "j", Exp: t0 + 60}
	if !d.Apply(e) {
		t.Fatal("first Apply = false")
	}
	for range 3 {
		if d.Apply(e) {
			t.Fatal("repeated Apply = true, want false")
		}
	}
	// A later exp keeps the entry longer.
	e.Exp += 60
	if !d.Apply(e) {
		t.Fatal("Apply with later exp = false, want true")
	}
	e.Exp -= 100
	if d.Apply(e) {
		t.Fatal("Apply with earlier exp = true, want false")
	}
	s := Event{Kind: KindSub, Sub: "s", NotBefore: t0}
	d.Apply(s)
	s.NotBefore--
	if d.Apply(s) {
		t.Fatal("Apply of older not_before = true, want false")
	}
	want := map[Kind]int{KindJTI: 1, KindToken: 0, KindSub: 1, KindClient: 0}
	if got := d.Len(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Len = %v, want %v", got, want)
	}
	if n := d.Prune(time.Unix(t0+120+1, 0)); n != 1 {
		t.Fatalf("Prune dropped %d, want 1 (the jti kept until its latest exp)", n)
	}
}

// TestDenyListMemo checks that a clean answer remembered on a Token never
// outlives a change of the list, nor carries over to another list.
func TestDenyListMemo(t *testing.T) {
	clk := newClock(t0)
	d1 := NewDenyList(DenyListConfig{Now: clk.Now})
	d2 := NewDenyList(DenyListConfig{Now: clk.Now})
	tok := NewToken(digest("a"), [32]byte{}, issA, "j", "s", "c", t0, t0+60)
	d2.Apply(Event{Kind: KindJTI, Jti: "j"})
	if d1.Revoked(tok) {
		t.Fatal("d1: revoked on an empty list")
	}
	if !d2.Revoked(tok) {
		t.Fatal("d2: memo of d1 carried over")
	}
	if d1.Revoked(tok) {
		t.Fatal("d1: revoked on an empty list")
	}
	// An unrelated change, then a related one.
	d1.Apply(Event{Kind: KindJTI, Jti: "other"})
	if d1.Revoked(tok) {
		t.Fatal("d1: revoked by an unrelated entry")
	}
	d1.Apply(Event{Kind: KindSub, Sub: "s", NotBefore: t0 - 1})
	if d1.Revoked(tok) {
		t.Fatal("d1: revoked by an older not_before")
	}
	d1.Apply(Event{Kind: KindSub, Sub: "s", NotBefore: t0 + 1})
	if !d1.Revoked(tok) {
		t.Fatal("d1: raised not_before did not reach a remembered token")
	}
}

// TestDenyListEpoch checks what a caller keeping its own memo relies on:
// Epoch changes with every entry applied (and only then), and no two lists
// share one.
func TestDenyListEpoch(t *testing.T) {
	d1 := NewDenyList(DenyListConfig{})
	d2 := NewDenyList(DenyListConfig{})
	if d1.Epoch() == d2.Epoch() {
		t.Fatalf("two lists share epoch %d", d1.Epoch())
	}
	e := d1.Epoch()
	if d1.Epoch() != e {
		t.Fatal("epoch changed with no entry applied")
	}
	d1.Apply(Event{Kind: KindJTI, Jti: "j", Exp: time.Now().Unix() + 60})
	if d1.Epoch() == e {
		t.Fatal("epoch unchanged after an entry was applied")
	}
	if d1.Epoch() == d2.Epoch() {
		t.Fatalf("two lists share epoch %d", d1.Epoch())
	}
}

// TestDenyListConcurrent checks, under the race detector, that once Apply
// returned every later Revoked of that token is true, while readers hammer
// the memo of shared tokens.
func TestDenyListConcurrent(t *testing.T) {
	d := NewDenyList(DenyListConfig{})
	const n = 2000
	toks := make([]*Token, n)
	for i := range toks {
		toks[i] = &Token{Digest: digest(fmt.Sprint(i)), Iss: issA, Jti: fmt.Sprint("j", i), Sub: fmt.Sprint("s", i%7), Iat: t0}
	}
	var done [n]atomic.Bool
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failures atomic.Int64
	for r := range 4 {
		wg.Go(func() {
			for i := r; !stop.Load(); i = (i + 7) % n {
				applied := done[i].Load()
				if !d.Revoked(toks[i]) && applied {
					failures.Add(1)
				}
			}
		})
	}
	for i := range n {
		switch i % 3 {
		case 0:
			d.Apply(Event{Kind: KindJTI, Iss: issA, Jti: toks[i].Jti})
		case 1:
			d.Apply(Event{Kind: KindToken, TokenSHA256: toks[i].Digest})
		case 2:
			d.Apply(Event{Kind: KindJTI, Jti: toks[i].Jti})
		}
		done[i].Store(true)
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d checks answered clean after Apply returned", f)
	}
	for i, tok := range toks {
		if !d.Revoked(tok) {
			t.Fatalf("token %d not revoked", i)
		}
	}
}

// TestTokenLayout pins clean right after Digest: a cache hit reads both,
// and next to each other they share a cache line.
func TestTokenLayout(t *testing.T) {
	var tok Token
	if got := unsafe.Offsetof(tok.clean); got != unsafe.Offsetof(tok.Digest)+32 {
		t.Fatalf("Token.clean at offset %d, want right after Digest", got)
	}
}
