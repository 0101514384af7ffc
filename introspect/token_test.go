package introspect

import (
	"encoding/base64"
	"testing"
)

// TestDecodeSegment: every spelling of a segment other than the canonical
// unpadded base64url one is refused, wherever the odd byte sits.
func TestDecodeSegment(t *testing.T) {
	valid := base64.RawURLEncoding.EncodeToString([]byte("any carnal pleas")) // 22 characters, the last with 4 zero trailing bits
	tests := []struct {
		name, seg string
		ok        bool
	}{
		{"canonical", valid, true},
		{"URL-safe characters", base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xbf}), true},
		{"empty", "", false},
		{"padding", base64.URLEncoding.EncodeToString([]byte("any carnal pleas")), false},
		{"line feed", valid[:5] + "\n" + valid[5:], false},
		{"carriage return", valid[:5] + "\r" + valid[5:], false},
		{"CRLF at the end", valid + "\r\n", false},
		{"line feed first", "\n" + valid, false},
		{"space", valid[:5] + " " + valid[5:], false},
		{"tab", valid[:5] + "\t" + valid[5:], false},
		{"standard alphabet +", base64.RawStdEncoding.EncodeToString([]byte{0xfb, 0xff, 0xbf}), false},
		{"standard alphabet /", base64.RawStdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff}), false},
		{"dot", valid[:5] + "." + valid[5:], false},
		{"NUL", valid[:5] + "\x00" + valid[5:], false},
		{"non-ASCII", valid[:5] + "\xff" + valid[5:], false},
		{"UTF-8", valid[:5] + "é" + valid[5:], false},
		{"non-zero trailing bits", valid[:len(valid)-1] + "x", false},
		{"impossible length", valid[:1], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := decodeSegment(tc.seg)
			if tc.ok {
				if err != nil {
					t.Fatalf("decodeSegment(%q): %v, want it decoded", tc.seg, err)
				}
				if got := base64.RawURLEncoding.EncodeToString(b); got != tc.seg {
					t.Fatalf("decodeSegment(%q) re-encodes as %q", tc.seg, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("decodeSegment(%q) = %q, want an error", tc.seg, b)
			}
		})
	}
}

func BenchmarkDecodeSegment(b *testing.B) {
	seg := base64.RawURLEncoding.EncodeToString(make([]byte, 600)) // an 800-byte token's payload
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeSegment(seg); err != nil {
			b.Fatal(err)
		}
	}
}
