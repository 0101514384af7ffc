package introspect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/introspectd/introspectd/revocation"
)

// FuzzParseJWT: the token parser must never panic, and whatever it accepts
// must be canonical — each segment re-encodes to exactly itself, so one
// token has exactly one spelling (and one hash).
func FuzzParseJWT(f *testing.F) {
	k := testKeys()
	now := time.Now()
	f.Add(k.mint(f, "ES256", claims(now, nil)))
	f.Add(k.mint(f, "EdDSA", claims(now, map[string]any{"scp": []string{"a"}})))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJhIjoxLCJhIjoyfQ.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := parseJWT(tok)
		if err != nil {
			return
		}
		segs := strings.Split(tok, ".")
		if len(segs) != 3 {
			t.Fatalf("accepted %d segments", len(segs))
		}
		for _, s := range segs {
			b, _ := base64.RawURLEncoding.DecodeString(s)
			if base64.RawURLEncoding.EncodeToString(b) != s {
				t.Fatalf("accepted non-canonical segment %q", s)
			}
		}
		if p.iss == "" || p.alg == "" {
			t.Fatalf("accepted token without iss or alg")
		}
	})
}

// FuzzVerify runs arbitrary tokens through the whole verify path: no panic,
// no error but ErrUndecidable (impossible with file keys), and nothing
// unsigned is ever active.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	f.Add(k.mint(f, "ES256", claims(time.Now(), nil)))
	f.Add(k.mint(f, "RS256", claims(time.Now(), nil)))
	f.Add("garbage")
	c := newTestChecker(f, nil, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		e, err := c.v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify error %v", err)
		}
		if e.Active() {
			// Only a token the keyring signed can be active; the fuzzer
			// cannot forge one, so it must be a seed or a twin of one.
			if _, err := parseJWT(tok); err != nil {
				t.Fatalf("active but unparseable: %q", tok)
			}
		}
	})
}

// FuzzRequest feeds raw HTTP requests to the handler: it must answer every
// one with a status from the contract, never panic, and never say active
// for a request without a valid token.
func FuzzRequest(f *testing.F) {
	tok := testKeys().mint(f, "ES256", claims(time.Now(), nil))
	auth := basic(testClientID, testClientSecret)
	f.Add([]byte("POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: " + auth + "\r\nContent-Length: 11\r\n\r\ntoken=abcde"))
	f.Add([]byte("POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: Bearer " + testClientSecret + "\r\nContent-Length: 5\r\n\r\ntoken"))
	f.Add([]byte("GET /authz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Original-URI: /admin/../x\r\n\r\n"))
	f.Add([]byte("POST /revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Og==\r\n\r\n"))
	env := newHandlerEnv(f, nil)
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 413: true, 415: true, 503: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return
		}
		env.h.ServeHTTP(&ctx)
		st := ctx.Response.StatusCode()
		if !allowed[st] {
			t.Fatalf("status %d", st)
		}
		if bytes.Contains(ctx.Response.Body(), []byte(`"active":true`)) && !bytes.Contains(raw, []byte(tok[:40])) {
			t.Fatalf("active answer for a request without the valid token")
		}
	})
}

// FuzzCleanPath: a path that a route would see must be clean and rooted,
// so no spelling of /admin escapes an /admin rule.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/admin", "/%61dmin", "//admin", "/x/../admin", "/a?b", "http://h/admin", "http://h/admin;x/y", "", "*"} {
		f.Add(s)
	}
	rs := compileRoutes([]Route{{PathPrefix: "/admin", Scopes: []string{"admin"}}})
	f.Fuzz(func(t *testing.T, uri string) {
		p, ok := cleanPath([]byte(uri))
		if !ok {
			return
		}
		if len(p) == 0 || p[0] != '/' {
			t.Fatalf("cleanPath(%q) = %q, not rooted", uri, p)
		}
		if !isClean(p) && string(p) != "/" {
			t.Fatalf("cleanPath(%q) = %q, not clean", uri, p)
		}
		if bytes.Equal(p, []byte("/admin")) && firstRoute(rs, []byte("GET"), p) == nil {
			t.Fatalf("/admin escaped its rule via %q", uri)
		}
		// The same path in absolute form must be read the same way.
		if strings.HasPrefix(uri, "/") {
			if q, ok := cleanPath([]byte("http://h" + uri)); ok && !bytes.Equal(p, q) {
				t.Fatalf("cleanPath(%q) = %q but %q in absolute form", uri, p, q)
			}
		}
	})
}

// FuzzClaims feeds arbitrary claims objects to the claims parser: whatever
// it accepts must make an entry (see newEntry: the answer must fit its
// bound) whose answer is one strict JSON object that starts with our
// verdict and has no other member named active, and whose strings are the
// token's.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"i","exp":1,"scope":["a","b"],"active":false}`))
	f.Add([]byte(`{"iss":"i","exp":1.5,"scp":"a b","\u0061ctive":0,"x":{"y":[1, {"z":null}]}}`))
	f.Add([]byte("{ \"iss\" :\t\"\\u00e9\" , \"exp\":1e3 }"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok := jwt{header: &header{alg: "EdDSA"}}
		if err := tok.parseClaims(payload); err != nil {
			return
		}
		e := (&Verifier{}).activeEntry(&tok, &issuer{index: 1}, &key{}, 1, [32]byte{1})
		var rt revocation.Token
		e.token(&rt)
		if rt.Iss != tok.iss || rt.Jti != tok.jti || rt.Sub != tok.sub || rt.ClientID != tok.clientID || rt.Exp != tok.exp {
			t.Fatalf("entry's token %q %q %q %q %d, want the parsed token's", rt.Iss, rt.Jti, rt.Sub, rt.ClientID, rt.Exp)
		}
		if sub, cl, scope := e.headerValues(); string(sub) != headerValue(tok.sub) || string(cl) != headerValue(tok.clientID) || string(scope) != headerValue(tok.scope) {
			t.Fatalf("entry's header values %q %q %q", sub, cl, scope)
		}
		if len(tok.aud) > 0 && !e.hasAudience(tok.aud[len(tok.aud)-1:]) {
			t.Fatalf("entry does not have audience %q", tok.aud[len(tok.aud)-1])
		}
		body := e.Body()
		if !bytes.HasPrefix(body, []byte(`{"active":true`)) {
			t.Fatalf("answer %q does not start with the verdict", body)
		}
		actives := 0
		err := walkObject(body, func(name, _ []byte, _ member) error {
			if string(name) == "active" {
				actives++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("answer %q is not a strict JSON object: %v", body, err)
		}
		if actives != 1 {
			t.Fatalf("answer %q has %d members named active", body, actives)
		}
	})
}
