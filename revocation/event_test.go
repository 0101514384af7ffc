package revocation

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const base = DefaultSubject

var (
	hexLower = strings.Repeat("0123456789abcdef", 4)
	hexUpper = strings.ToUpper(hexLower)
)

func mustHex(s string) (h [32]byte) {
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		panic(err)
	}
	return h
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		body    string
		want    Event
		wantErr bool
	}{
		{"jti", base + ".jti", `{"iss":"https://a/","jti":"j1","exp":1767225600}`, Event{Kind: KindJTI, Iss: "https://a/", Jti: "j1", Exp: 1767225600}, false},
		{"jti without iss and exp", base + ".jti", `{"jti":"j1"}`, Event{Kind: KindJTI, Jti: "j1"}, false},
		{"jti with whitespace", base + ".jti", " \n{ \"jti\" : \"j1\" ,\t\"exp\" : 5 }\r\n", Event{Kind: KindJTI, Jti: "j1", Exp: 5}, false},
		{"jti with escapes", base + ".jti", `{"j\u0074i":"a\"b\\c\u00e9\ud83d\ude00"}`, Event{Kind: KindJTI, Jti: "a\"b\\cé😀"}, false},
		{"jti exp zero is absent", base + ".jti", `{"jti":"j","exp":0}`, Event{Kind: KindJTI, Jti: "j"}, false},
		{"jti exp minus zero", base + ".jti", `{"jti":"j","exp":-0}`, Event{Kind: KindJTI, Jti: "j"}, false},
		{"token lower hex", base + ".token", `{"token_sha256":"` + hexLower + `","exp":1}`, Event{Kind: KindToken, TokenSHA256: mustHex(hexLower), Exp: 1}, false},
		{"token upper hex", base + ".token", `{"token_sha256":"` + hexUpper + `"}`, Event{Kind: KindToken, TokenSHA256: mustHex(hexLower)}, false},
		{"sub", base + ".sub", `{"iss":"i","sub":"s","not_before":1767225600}`, Event{Kind: KindSub, Iss: "i", Sub: "s", NotBefore: 1767225600}, false},
		{"sub without iss", base + ".sub", `{"sub":"s","not_before":1}`, Event{Kind: KindSub, Sub: "s", NotBefore: 1}, false},
		{"client", base + ".client", `{"iss":"i","client_id":"c","not_before":7}`, Event{Kind: KindClient, Iss: "i", ClientID: "c", NotBefore: 7}, false},
		{"unknown members ignored", base + ".jti", `{"x":{"a":[1,"}",{"b":null}]},"jti":"j","y":[],"z":true,"w":-1.5e3}`, Event{Kind: KindJTI, Jti: "j"}, false},
		{"other kinds' members ignored", base + ".jti", `{"jti":"j","sub":5,"not_before":"x","client_id":null,"token_sha256":1}`, Event{Kind: KindJTI, Jti: "j"}, false},
		{"iss ignored for token", base + ".token", `{"token_sha256":"` + hexLower + `","iss":5}`, Event{Kind: KindToken, TokenSHA256: mustHex(hexLower)}, false},
		{"custom base", "x.y.jti", `{"jti":"j"}`, Event{Kind: KindJTI, Jti: "j"}, false},

		{"subject other base", "other.revocations.jti", `{"jti":"j"}`, Event{}, true},
		{"subject extra token", base + ".jti.x", `{"jti":"j"}`, Event{}, true},
		{"subject unknown kind", base + ".bogus", `{"jti":"j"}`, Event{}, true},
		{"subject base only", base, `{"jti":"j"}`, Event{}, true},
		{"subject prefix without dot", base + "jti", `{"jti":"j"}`, Event{}, true},
		{"subject upper-case kind", base + ".JTI", `{"jti":"j"}`, Event{}, true},
		{"not JSON", base + ".jti", `jti=j`, Event{}, true},
		{"empty body", base + ".jti", ``, Event{}, true},
		{"array", base + ".jti", `[{"jti":"j"}]`, Event{}, true},
		{"string", base + ".jti", `"j"`, Event{}, true},
		{"null", base + ".jti", `null`, Event{}, true},
		{"trailing data", base + ".jti", `{"jti":"j"} {}`, Event{}, true},
		{"trailing comma", base + ".jti", `{"jti":"j",}`, Event{}, true},
		{"BOM", base + ".jti", "\ufeff{\"jti\":\"j\"}", Event{}, true},
		{"invalid UTF-8", base + ".jti", "{\"jti\":\"\xff\"}", Event{}, true},
		{"empty object", base + ".jti", `{}`, Event{}, true},
		{"duplicate jti", base + ".jti", `{"jti":"a","jti":"b"}`, Event{}, true},
		{"duplicate unused member", base + ".jti", `{"jti":"a","sub":"x","sub":"y"}`, Event{}, true},
		{"jti null", base + ".jti", `{"jti":null}`, Event{}, true},
		{"jti number", base + ".jti", `{"jti":1}`, Event{}, true},
		{"jti empty", base + ".jti", `{"jti":""}`, Event{}, true},
		{"iss number", base + ".jti", `{"jti":"j","iss":1}`, Event{}, true},
		{"iss null", base + ".jti", `{"jti":"j","iss":null}`, Event{}, true},
		{"exp string", base + ".jti", `{"jti":"j","exp":"1"}`, Event{}, true},
		{"exp float", base + ".jti", `{"jti":"j","exp":1.5}`, Event{}, true},
		{"exp exponent", base + ".jti", `{"jti":"j","exp":1e9}`, Event{}, true},
		{"exp negative", base + ".jti", `{"jti":"j","exp":-1}`, Event{}, true},
		{"exp too large", base + ".jti", `{"jti":"j","exp":253402300800}`, Event{}, true},
		{"exp overflows", base + ".jti", `{"jti":"j","exp":99999999999999999999}`, Event{}, true},
		{"token missing", base + ".token", `{"exp":1}`, Event{}, true},
		{"token 63 digits", base + ".token", `{"token_sha256":"` + hexLower[1:] + `"}`, Event{}, true},
		{"token 65 digits", base + ".token", `{"token_sha256":"` + hexLower + `0"}`, Event{}, true},
		{"token not hex", base + ".token", `{"token_sha256":"` + strings.Repeat("g", 64) + `"}`, Event{}, true},
		{"token escaped", base + ".token", `{"token_sha256":"\u0030` + hexLower[1:] + `"}`, Event{Kind: KindToken, TokenSHA256: mustHex(hexLower)}, false},
		{"sub missing not_before", base + ".sub", `{"sub":"s"}`, Event{}, true},
		{"sub not_before zero", base + ".sub", `{"sub":"s","not_before":0}`, Event{}, true},
		{"sub empty", base + ".sub", `{"sub":"","not_before":1}`, Event{}, true},
		{"sub missing", base + ".sub", `{"not_before":1}`, Event{}, true},
		{"client empty", base + ".client", `{"client_id":"","not_before":1}`, Event{}, true},
		{"client missing", base + ".client", `{"sub":"s","not_before":1}`, Event{}, true},
		{"client not_before string", base + ".client", `{"client_id":"c","not_before":"1"}`, Event{}, true},
		{"too large", base + ".jti", `{"jti":"j","x":"` + strings.Repeat("a", MaxEventSize) + `"}`, Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			if strings.HasPrefix(tt.subject, "x.y.") {
				b = "x.y"
			}
			got, err := ParseEvent(tt.subject, []byte(tt.body), b)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseEvent = %+v, want an error", got)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if got != tt.want {
				t.Fatalf("ParseEvent = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseEventErrorsHoldNoTokenMaterial makes sure error texts, which end
// up in logs, never carry the body or its values.
func TestParseEventErrorsHoldNoTokenMaterial(t *testing.T) {
	const secret = "SECRETVALUE"
	bodies := map[Kind][]string{
		KindJTI:    {`{"jti":"` + secret + `","exp":"` + secret + `"}`, `{"jti":"` + secret + `","jti":"x"}`, `{"iss":"` + secret + `"}`, secret},
		KindToken:  {`{"token_sha256":"` + secret + `"}`, `{"token_sha256":"` + hexLower + `","exp":"` + secret + `"}`},
		KindSub:    {`{"sub":"` + secret + `"}`, `{"sub":"` + secret + `","not_before":-1}`},
		KindClient: {`{"client_id":"` + secret + `","not_before":"` + secret + `"}`},
	}
	for kind, list := range bodies {
		for _, body := range list {
			e, err := ParseEvent(base+"."+string(kind), []byte(body), base)
			if err == nil {
				t.Fatalf("%s %s: no error", kind, body)
			}
			if e.Kind != kind {
				t.Errorf("%s: Kind on error = %q, want %q", body, e.Kind, kind)
			}
			if e.Jti != "" || e.Sub != "" || e.ClientID != "" || e.Iss != "" {
				t.Errorf("%s: values returned with an error: %+v", body, e)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), hexLower) {
				t.Errorf("error text holds token material: %v", err)
			}
		}
	}
	_, err := ParseEvent(base+"."+secret, []byte(`{}`), base)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("unknown kind: error %v", err)
	}
}

func TestEventMarshalJSON(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Kind: KindJTI, Iss: "https://a/", Jti: "j1", Exp: 1767225600}, `{"iss":"https://a/","jti":"j1","exp":1767225600}`},
		{Event{Kind: KindJTI, Jti: "j1"}, `{"jti":"j1"}`},
		{Event{Kind: KindJTI, Jti: "j1", Sub: "ignored", NotBefore: 5}, `{"jti":"j1"}`},
		{Event{Kind: KindToken, TokenSHA256: mustHex(hexLower), Exp: 1767225600, Iss: "ignored"}, `{"token_sha256":"` + hexLower + `","exp":1767225600}`},
		{Event{Kind: KindToken, TokenSHA256: mustHex(hexLower)}, `{"token_sha256":"` + hexLower + `"}`},
		{Event{Kind: KindSub, Iss: "i", Sub: "s", NotBefore: 1767225600}, `{"iss":"i","sub":"s","not_before":1767225600}`},
		{Event{Kind: KindSub, Sub: "s", NotBefore: 1}, `{"sub":"s","not_before":1}`},
		{Event{Kind: KindClient, Iss: "i", ClientID: "c", NotBefore: 1767225600}, `{"iss":"i","client_id":"c","not_before":1767225600}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.e)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", tt.e, err)
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%+v) = %s, want %s", tt.e, got, tt.want)
		}
		back, err := ParseEvent(tt.e.Subject(""), got, "")
		if err != nil {
			t.Fatalf("ParseEvent of own encoding: %v", err)
		}
		if want := canonical(tt.e); back != want {
			t.Errorf("round trip = %+v, want %+v", back, want)
		}
	}
	for _, bad := range []Event{{}, {Kind: "x", Jti: "j"}, {Kind: KindJTI}, {Kind: KindSub, Sub: "s"}, {Kind: KindJTI, Jti: "j", Exp: -1}} {
		if _, err := bad.MarshalJSON(); !errors.Is(err, ErrMalformed) {
			t.Errorf("MarshalJSON(%+v) error = %v, want ErrMalformed", bad, err)
		}
	}
	if got := (Event{Kind: KindSub}).Subject("a.b"); got != "a.b.sub" {
		t.Errorf("Subject = %q, want a.b.sub", got)
	}
}

// canonical drops the fields that e's kind does not carry.
func canonical(e Event) Event {
	switch e.Kind {
	case KindJTI:
		return Event{Kind: e.Kind, Iss: e.Iss, Jti: e.Jti, Exp: e.Exp}
	case KindToken:
		return Event{Kind: e.Kind, TokenSHA256: e.TokenSHA256, Exp: e.Exp}
	case KindSub:
		return Event{Kind: e.Kind, Iss: e.Iss, Sub: e.Sub, NotBefore: e.NotBefore}
	case KindClient:
		return Event{Kind: e.Kind, Iss: e.Iss, ClientID: e.ClientID, NotBefore: e.NotBefore}
	}
	return e
}

func FuzzParseEvent(f *testing.F) {
	seeds := []struct {
		kind uint8
		body string
	}{
		{0, `{"iss":"https://a/","jti":"j1","exp":1767225600}`},
		{0, `{"jti":"a\"b\\c\u00e9","x":{"y":[1,2,"}"]}}`},
		{0, `{"jti":"a","jti":"b"}`},
		{0, `{"jti":null}`},
		{1, `{"token_sha256":"` + hexLower + `","exp":1767225600}`},
		{1, `{"token_sha256":"` + hexUpper + `"}`},
		{2, `{"iss":"i","sub":"s","not_before":1767225600}`},
		{2, `{"sub":"s","not_before":1.5}`},
		{3, `{"iss":"i","client_id":"c","not_before":1}`},
		{3, `[]`},
		{4, `{"jti":"j"}`},
		{0, "\xff"},
		{0, ``},
	}
	for _, s := range seeds {
		f.Add(s.kind, []byte(s.body))
	}
	subjects := []string{base + ".jti", base + ".token", base + ".sub", base + ".client", base + ".other"}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		subject := subjects[int(kind)%len(subjects)]
		e, err := ParseEvent(subject, body, base)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if len(body) >= 16 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error text holds the body: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event %+v: %v", e, err)
		}
		// Whatever is accepted is a JSON object whose members, by exact
		// name, decode to the same values.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json rejects: %v", err)
		}
		str := func(k string) string {
			var s string
			if raw, ok := m[k]; ok {
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("member %s: %v", k, err)
				}
			}
			return s
		}
		num := func(k string) int64 {
			var n int64
			if raw, ok := m[k]; ok {
				if err := json.Unmarshal(raw, &n); err != nil {
					t.Fatalf("member %s: %v", k, err)
				}
			}
			return n
		}
		var want Event
		switch e.Kind {
		case KindJTI:
			want = Event{Kind: e.Kind, Iss: str("iss"), Jti: str("jti"), Exp: num("exp")}
		case KindToken:
			h, err := hex.DecodeString(str("token_sha256"))
			if err != nil || len(h) != 32 {
				t.Fatalf("token_sha256 accepted but not 32 hex bytes")
			}
			want = Event{Kind: e.Kind, Exp: num("exp")}
			copy(want.TokenSHA256[:], h)
		case KindSub:
			want = Event{Kind: e.Kind, Iss: str("iss"), Sub: str("sub"), NotBefore: num("not_before")}
		case KindClient:
			want = Event{Kind: e.Kind, Iss: str("iss"), ClientID: str("client_id"), NotBefore: num("not_before")}
		default:
			t.Fatalf("accepted kind %q", e.Kind)
		}
		if e != want {
			t.Fatalf("ParseEvent = %+v, encoding/json says %+v", e, want)
		}
		// The canonical encoding parses back to the same event.
		enc, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		back, err := ParseEvent(e.Subject(base), enc, base)
		if err != nil || back != e {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, e)
		}
		if !bytes.Equal(enc, mustMarshal(t, e)) {
			t.Fatal("MarshalJSON and json.Marshal disagree")
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
