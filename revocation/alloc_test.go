//go:build !race

package revocation

import (
	"testing"
	"time"
)

// TestRevokedAllocs pins the hit path at zero allocations: with a
// remembered clean answer, with a full lookup, and for a revoked token.
func TestRevokedAllocs(t *testing.T) {
	d := NewDenyList(DenyListConfig{Now: func() time.Time { return time.Unix(t0, 0) }})
	d.Apply(Event{Kind: KindJTI, Iss: issA, Jti: "revoked"})
	d.Apply(Event{Kind: KindToken, TokenSHA256: digest("other")})
	d.Apply(Event{Kind: KindSub, Iss: issA, Sub: "alice", NotBefore: t0 - 10})
	d.Apply(Event{Kind: KindClient, ClientID: "gw", NotBefore: t0 - 10})
	clean := NewToken(digest("tok"), digest("twin"), issA, "j1", "alice", "gw", t0, t0+60)
	revoked := NewToken(digest("tok2"), [32]byte{}, issA, "revoked", "bob", "gw2", t0, t0+60)

	tests := []struct {
		name string
		f    func()
	}{
		{"memo", func() { d.Revoked(clean) }},
		{"lookup", func() { clean.clean.Store(0); d.Revoked(clean) }},
		{"revoked", func() { d.Revoked(revoked) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per Revoked, want 0", tt.name, n)
		}
	}
	if d.Revoked(clean) || !d.Revoked(revoked) {
		t.Fatal("wrong answers")
	}
}
