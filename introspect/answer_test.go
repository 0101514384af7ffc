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
