package introspect

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/introspectd/introspectd/revocation"

	"github.com/go-json-experiment/json/jsontext"
)

// TestAnswerCopiesClaims pins the answer of an active token: "active":true
// first, then the token's members in the token's order with their bytes
// unchanged, except that a claim named active is dropped and scope is
// answered as one space-separated string.
func TestAnswerCopiesClaims(t *testing.T) {
	c := newTestChecker(t, nil, nil)
	key, kid := testKeys().keyFor("ES256")
	hdr := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, kid)
	exp := time.Now().Add(time.Hour).Unix()
	std := fmt.Sprintf(`"iss":%q,"aud":"orders-api","exp":%d`, testIss, exp)
	for _, tc := range []struct {
		name, claims, want string // want: the answer after {"active":true
	}{
		{"order and bytes kept",
			`{"z":1,` + std + `,"a":{"b":[1, 2.50]},"u":"\u00e9\n"}`,
			`,"z":1,` + std + `,"a":{"b":[1, 2.50]},"u":"\u00e9\n"}`},
		{"whitespace between members dropped, inside kept",
			"{ \"sub\" : \"x\" ,\n" + std + "\t}",
			`,"sub" : "x",` + std + `}`},
		{"active claim dropped",
			`{"active":false,` + std + `,"x":true}`,
			`,` + std + `,"x":true}`},
		{"escaped active claim dropped",
			`{"\u0061ctive":false,` + std + `}`,
			`,` + std + `}`},
		{"escaped iss name is iss",
			fmt.Sprintf(`{"\u0069ss":%q,"aud":"orders-api","exp":%d}`, testIss, exp),
			fmt.Sprintf(`,"\u0069ss":%q,"aud":"orders-api","exp":%d}`, testIss, exp)},
		{"scope string kept",
			`{` + std + `,"scope":"read  write"}`,
			`,` + std + `,"scope":"read  write"}`},
		{"scope array rewritten",
			`{"scope":["read","write"],` + std + `}`,
			`,` + std + `,"scope":"read write"}`},
		{"scp added as scope, scp kept",
			`{` + std + `,"scp":["a","b\"c"]}`,
			`,` + std + `,"scp":["a","b\"c"],"scope":"a b\"c"}`},
		{"scope wins over scp",
			`{"scope":"s",` + std + `,"scp":["a"]}`,
			`,"scope":"s",` + std + `,"scp":["a"]}`},
		{"fractional exp",
			fmt.Sprintf(`{"iss":%q,"aud":"orders-api","exp":%d.75}`, testIss, exp),
			fmt.Sprintf(`,"iss":%q,"aud":"orders-api","exp":%d.75}`, testIss, exp)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRaw(t, "ES256", key, hdr, tc.claims)
			e, err := c.Check(context.Background(), []byte(tok))
			if err != nil || !e.Active() {
				t.Fatalf("not active: %v %v", err, e.Reason())
			}
			got := string(e.Body())
			if want := `{"active":true` + tc.want; got != want {
				t.Fatalf("answer\n got %s\nwant %s", got, want)
			}
			// Whatever the token's spelling, the answer is one valid JSON
			// object without duplicate names.
			if err := walkObject(e.Body(), func(_, _ []byte, _ member) error { return nil }); err != nil {
				t.Fatalf("answer is not a strict JSON object: %v", err)
			}
		})
	}
}

// TestClaimTypes covers how registered claims must be typed.
func TestClaimTypes(t *testing.T) {
	c := newTestChecker(t, nil, nil)
	key, kid := testKeys().keyFor("ES256")
	hdr := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, kid)
	exp := time.Now().Add(time.Hour).Unix()
	base := fmt.Sprintf(`"iss":%q,"aud":"orders-api"`, testIss)
	for _, tc := range []struct {
		name, claims string
		active       bool
	}{
		{"integer exp", fmt.Sprintf(`{%s,"exp":%d}`, base, exp), true},
		{"exponent exp", fmt.Sprintf(`{%s,"exp":%de0}`, base, exp), true},
		{"string exp", fmt.Sprintf(`{%s,"exp":"%d"}`, base, exp), false},
		{"negative exp", fmt.Sprintf(`{%s,"exp":-%d}`, base, exp), false},
		{"huge exp", fmt.Sprintf(`{%s,"exp":1e300}`, base), false},
		{"overflowing exp", fmt.Sprintf(`{%s,"exp":1e999}`, base), false},
		{"13-digit exp", fmt.Sprintf(`{%s,"exp":9999999999999}`, base), false},
		{"no exp", fmt.Sprintf(`{%s}`, base), false},
		{"iat in the future", fmt.Sprintf(`{%s,"exp":%d,"iat":%d}`, base, exp, exp), false},
		{"numeric iss", fmt.Sprintf(`{"iss":1,"aud":"orders-api","exp":%d}`, exp), false},
		{"aud array", fmt.Sprintf(`{"iss":%q,"aud":["x","orders-api"],"exp":%d}`, testIss, exp), true},
		{"aud array with a number", fmt.Sprintf(`{"iss":%q,"aud":["orders-api",1],"exp":%d}`, testIss, exp), false},
		{"aud escaped", fmt.Sprintf(`{"iss":%q,"aud":["orders\u002dapi"],"exp":%d}`, testIss, exp), true},
		{"aud object", fmt.Sprintf(`{"iss":%q,"aud":{"a":"orders-api"},"exp":%d}`, testIss, exp), false},
		{"scope number", fmt.Sprintf(`{%s,"exp":%d,"scope":7}`, base, exp), false},
		{"scp with a null", fmt.Sprintf(`{%s,"exp":%d,"scp":["a",null]}`, base, exp), false},
		{"odd scp beside a scope", fmt.Sprintf(`{%s,"exp":%d,"scope":"a","scp":7}`, base, exp), true},
		{"duplicate escaped exp", fmt.Sprintf(`{%s,"exp":%d,"\u0065xp":%d}`, base, exp, exp), false},
		{"duplicate in a nested object", fmt.Sprintf(`{%s,"exp":%d,"x":{"a":1,"a":2}}`, base, exp), false},
		{"trailing data", fmt.Sprintf(`{%s,"exp":%d} {}`, base, exp), false},
		{"array payload", `[1]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRaw(t, "ES256", key, hdr, tc.claims)
			e, err := c.v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if e.Active() != tc.active {
				t.Fatalf("active %v (reason %v), want %v", e.Active(), e.Reason(), tc.active)
			}
		})
	}
}

// TestHeaderMemo checks that only headers of tokens that verified are
// remembered, that a remembered header reads as a fresh parse would, and
// that the memo stays bounded.
func TestHeaderMemo(t *testing.T) {
	c := newTestChecker(t, nil, nil)
	v := c.v
	k := testKeys()
	good := k.mint(t, "ES256", claims(time.Now(), nil))
	forged := good[:len(good)-4] + "AAAA"
	seg := good[:strings.IndexByte(good, '.')]

	if e, _ := v.Verify(context.Background(), forged); e.Active() {
		t.Fatal("forged token active")
	}
	if v.headers.get(seg) != nil {
		t.Fatal("header of a token that failed its signature check was remembered")
	}
	if e, _ := v.Verify(context.Background(), good); !e.Active() {
		t.Fatal("good token inactive")
	}
	h := v.headers.get(seg)
	if h == nil {
		t.Fatal("header of a verified token not remembered")
	}
	raw, _ := decodeSegment(seg)
	fresh, err := parseHeader(raw)
	if err != nil || *fresh != *h {
		t.Fatalf("remembered header %+v, fresh parse %+v (%v)", *h, *fresh, err)
	}
	// A remembered header is used as is: the forged token still fails.
	if e, _ := v.Verify(context.Background(), forged); e.Active() {
		t.Fatal("forged token with a remembered header active")
	}

	var m headerMemo
	for i := range 3 * maxMemoHeaders {
		m.add(fmt.Sprintf("h%d", i), h)
		if n := len(m.m); n > maxMemoHeaders {
			t.Fatalf("memo holds %d headers, bound %d", n, maxMemoHeaders)
		}
	}
	var nilMemo *headerMemo
	nilMemo.add("x", h)
	if nilMemo.get("x") != nil {
		t.Fatal("nil memo remembered")
	}
}

// TestWalkObjectKeepsNoInput checks that a decoder goes back to the pool
// without a reference to the object it read, and that walkObject reports
// every member in order.
func TestWalkObjectKeepsNoInput(t *testing.T) {
	b := []byte(`{"a":1}`)
	od := new(objectDecoder)
	od.buf = *bytes.NewBuffer(b)
	od.dec.Reset(&od.buf)
	if _, err := od.dec.ReadToken(); err != nil {
		t.Fatal(err)
	}
	od.release()
	if od.buf.Cap() != 0 || len(od.dec.UnreadBuffer()) != 0 {
		t.Fatal("released decoder still references its input")
	}
	var names []string
	if err := walkObject([]byte(`{"a":{"x":[1]},"\u0062":"c"}`), func(name, v []byte, _ member) error {
		names = append(names, string(name))
		if string(name) == "a" && jsontext.Value(v).Kind() != '{' {
			t.Errorf("a: got %s", v)
		}
		return nil
	}); err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("walked %q (%v), want a,b", names, err)
	}
}

// TestEntryLayout pins what a cache hit reads of an Entry to one run of
// memory: the header's fields fit one cache line and the answer follows
// them. It also checks that an Entry holds no Go pointer, which the GC
// would not see in an entry built by newEntry (a []byte). Under load with
// many tokens a hit is mostly memory latency: move fields, do not just fix
// the numbers here.
func TestEntryLayout(t *testing.T) {
	if entryHeader > 64 {
		t.Errorf("sizeof(Entry) = %d, want ≤ 64", entryHeader)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Entry](), reflect.TypeFor[entryTail]()} {
		if p := pointerIn(typ); p != "" {
			t.Errorf("%s holds a pointer: %s", typ, p)
		}
	}
	c := newTestChecker(t, nil, nil)
	e, err := c.Check(context.Background(), []byte(testKeys().mint(t, "ES256", claims(time.Now(), nil))))
	if err != nil || !e.Active() {
		t.Fatalf("Check: %v", err)
	}
	if body := unsafe.Pointer(unsafe.SliceData(e.Body())); body != unsafe.Add(unsafe.Pointer(e), entryHeader) {
		t.Errorf("the answer is at %p, want right after the header at %p", body, unsafe.Add(unsafe.Pointer(e), entryHeader))
	}
	if uintptr(e.tail) < entryHeader+uintptr(len(e.Body())) || e.tail%8 != 0 {
		t.Errorf("tail at offset %d overlaps the answer (%d bytes) or is not 8-byte aligned", e.tail, len(e.Body()))
	}
}

// TestEntryStrings reads back every string an entry stores from its one
// allocation: deny-list identity, header-safe values (stored apart only
// when they differ), audiences and the /authz claim headers.
func TestEntryStrings(t *testing.T) {
	tok := jwt{header: &header{alg: "EdDSA"}}
	payload := `{"iss":"https://i/","sub":"bob\r\nX: 1","client_id":"web","jti":"j-1","exp":2000000000,"iat":1900000000,` +
		`"aud":["a1","a2"],"scp":["read","write"],"tenant":"acme","roles":["x","y"],"n":{"k":1}}`
	if err := tok.parseClaims([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	v := &Verifier{claimHeaders: []string{"tenant", "roles", "n", "missing"}}
	e := v.activeEntry(&tok, &issuer{index: 1, leeway: 30}, &key{fp: [32]byte{7}}, 1, [32]byte{9})
	var rt revocation.Token
	e.token(&rt)
	if rt.Iss != "https://i/" || rt.Sub != "bob\r\nX: 1" || rt.ClientID != "web" || rt.Jti != "j-1" ||
		rt.Iat != 1900000000 || rt.Exp != 2000000000 || rt.Digest != [32]byte{9} {
		t.Errorf("deny-list identity %q %q %q %q %d %d %x", rt.Iss, rt.Sub, rt.ClientID, rt.Jti, rt.Iat, rt.Exp, rt.Digest[:1])
	}
	sub, client, scope := e.headerValues()
	if string(sub) != "bob%0D%0AX: 1" || string(client) != "web" || string(scope) != "read write" || e.scope() != string(scope) || cap(sub) != len(sub) {
		t.Errorf("header values %q %q %q (scope() %q)", sub, client, scope, e.scope())
	}
	for i, want := range []string{"acme", "x y", `{"k":1}`, "", ""} {
		if got := string(e.claimValue(i)); got != want {
			t.Errorf("claimValue(%d) = %q, want %q", i, got, want)
		}
	}
	for _, tc := range []struct {
		want []string
		ok   bool
	}{{[]string{"a2"}, true}, {[]string{"z", "a1"}, true}, {[]string{"a3"}, false}, {nil, false}} {
		if got := e.hasAudience(tc.want); got != tc.ok {
			t.Errorf("hasAudience(%q) = %v, want %v", tc.want, got, tc.ok)
		}
	}
	if e.more().keyFP != [32]byte{7} || e.notAfter != 2000000030 || e.cost() != int64(e.size) {
		t.Errorf("key fingerprint %x, notAfter %d, cost %d of %d bytes", e.more().keyFP[:1], e.notAfter, e.cost(), e.size)
	}
}

// pointerIn names a field of typ that is or holds a pointer, "" if none.
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type); p != "" {
				return typ.Field(i).Name + "." + p
			}
		}
		return ""
	case reflect.Array:
		return pointerIn(typ.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	}
	return typ.String()
}

func TestClaim(t *testing.T) {
	var tok jwt
	if err := tok.parseClaims([]byte(`{"iss":"i","exp":1,"\u0074enant":"acme","n":{"a":1}}`)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"tenant": `"acme"`, "n": `{"a":1}`, "missing": ""} {
		if got := string(tok.claim(name)); got != want {
			t.Errorf("claim(%q) = %s, want %s", name, got, want)
		}
	}
}
