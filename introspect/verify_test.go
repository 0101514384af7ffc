package introspect

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestVerifyAttackFamilies(t *testing.T) {
	k := testKeys()
	now := time.Now()
	valid := func(alg string) string { return k.mint(t, alg, claims(now, nil)) }
	hdr := func(alg, kid string, extra string) string {
		h := `{"alg":"` + alg + `","kid":"` + kid + `","typ":"at+jwt"` + extra + `}`
		return h
	}
	body := mustJSON(t, claims(now, nil))
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	rsaPubJWK := string(k.jwks(t))
	es := valid("ES256")
	esParts := strings.Split(es, ".")
	tooLong := k.mint(t, "ES256", claims(now, map[string]any{"pad": strings.Repeat("x", MaxTokenBytes)}))

	tests := []struct {
		name   string
		tok    string
		want   bool
		reason Reason
	}{
		{"RS256 valid", valid("RS256"), true, 0},
		{"RS384 valid", valid("RS384"), true, 0},
		{"RS512 valid", valid("RS512"), true, 0},
		{"PS256 valid", valid("PS256"), true, 0},
		{"PS384 valid", valid("PS384"), true, 0},
		{"PS512 valid", valid("PS512"), true, 0},
		{"ES256 valid", es, true, 0},
		{"ES384 valid", valid("ES384"), true, 0},
		{"ES512 valid", valid("ES512"), true, 0},
		{"EdDSA valid", valid("EdDSA"), true, 0},
		{"ES256 twin also verifies", flipS(t, es), true, 0},

		// alg none in every casing, with and without a signature.
		{"alg none", b64([]byte(hdr("none", "ec1", ""))) + "." + b64([]byte(body)) + ".", false, ReasonMalformed},
		{"alg None signed", b64([]byte(hdr("None", "ec1", ""))) + "." + b64([]byte(body)) + "." + esParts[2], false, ReasonAlgorithm},
		{"alg NONE signed", b64([]byte(hdr("NONE", "ec1", ""))) + "." + b64([]byte(body)) + ".AAAA", false, ReasonAlgorithm},
		{"alg nOnE signed", b64([]byte(hdr("nOnE", "ec1", ""))) + "." + b64([]byte(body)) + ".AAAA", false, ReasonAlgorithm},

		// Algorithm confusion: HMAC keyed with the issuer's public key.
		{"HS256 with RSA public key DER", signRaw(t, "HS256", rsaPubDER, hdr("HS256", "rsa1", ""), body), false, ReasonAlgorithm},
		{"HS256 with JWKS bytes", signRaw(t, "HS256", []byte(rsaPubJWK), hdr("HS256", "rsa1", ""), body), false, ReasonAlgorithm},
		{"HS512 no kid", signRaw(t, "HS512", rsaPubDER, `{"alg":"HS512"}`, body), false, ReasonAlgorithm},

		// Key selection.
		{"unknown kid", signRaw(t, "ES256", k.ec, hdr("ES256", "nope", ""), body), false, ReasonUnknownKey},
		{"hostile kid path", signRaw(t, "ES256", k.ec, hdr("ES256", "../../../../dev/null", ""), body), false, ReasonUnknownKey},
		{"hostile kid sql", signRaw(t, "ES256", k.ec, hdr("ES256", "x' OR '1'='1", ""), body), false, ReasonUnknownKey},
		{"kid of another key type", signRaw(t, "ES256", k.ec, hdr("ES256", "rsa1", ""), body), false, ReasonUnknownKey},
		{"kid of another curve", signRaw(t, "ES384", k.ec384, hdr("ES384", "ec1", ""), body), false, ReasonUnknownKey},
		{"no kid tries fitting keys", signRaw(t, "ES256", k.ec, `{"alg":"ES256","typ":"at+jwt"}`, body), true, 0},
		{"jwk header with attacker key", signRaw(t, "ES256", k.attacker, hdr("ES256", "ec1", `,"jwk":`+attackerJWK(t, k.attacker)), body), false, ReasonBadSignature},
		{"jku header to attacker", signRaw(t, "ES256", k.attacker, hdr("ES256", "ec1", `,"jku":"https://evil.test/jwks.json"`), body), false, ReasonBadSignature},
		{"x5u header to attacker", signRaw(t, "ES256", k.attacker, hdr("ES256", "ec1", `,"x5u":"https://evil.test/cert.pem"`), body), false, ReasonBadSignature},
		{"jku header but real key", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", `,"jku":"https://evil.test/jwks.json"`), body), true, 0},

		// crit and b64.
		{"crit unknown", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", `,"crit":["exp"],"exp":1`), body), false, ReasonMalformed},
		{"crit empty", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", `,"crit":[]`), body), false, ReasonMalformed},
		{"b64 false", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", `,"b64":false,"crit":["b64"]`), body), false, ReasonMalformed},

		// Times.
		{"expired", k.mint(t, "ES256", claims(now, map[string]any{"exp": now.Add(-time.Minute).Unix()})), false, ReasonExpired},
		{"expired within leeway", k.mint(t, "ES256", claims(now, map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), true, 0},
		{"nbf future", k.mint(t, "ES256", claims(now, map[string]any{"nbf": now.Add(time.Minute).Unix()})), false, ReasonNotYetValid},
		{"nbf within leeway", k.mint(t, "ES256", claims(now, map[string]any{"nbf": now.Add(10 * time.Second).Unix()})), true, 0},
		{"iat future", k.mint(t, "ES256", claims(now, map[string]any{"iat": now.Add(time.Minute).Unix()})), false, ReasonNotYetValid},
		{"exp missing", k.mint(t, "ES256", claims(now, map[string]any{"exp": nil})), false, ReasonMalformed},
		{"exp string", k.mint(t, "ES256", claims(now, map[string]any{"exp": "9999999999"})), false, ReasonMalformed},
		{"exp fractional", k.mint(t, "ES256", claims(now, map[string]any{"exp": float64(now.Add(time.Hour).Unix()) + 0.5})), true, 0},
		{"nbf string", k.mint(t, "ES256", claims(now, map[string]any{"nbf": "0"})), false, ReasonMalformed},

		// Issuer, audience, typ.
		{"wrong iss", k.mint(t, "ES256", claims(now, map[string]any{"iss": "https://evil.test/"})), false, ReasonUnknownIssuer},
		{"iss with trailing difference", k.mint(t, "ES256", claims(now, map[string]any{"iss": "https://issuer.test"})), false, ReasonUnknownIssuer},
		{"iss missing", k.mint(t, "ES256", claims(now, map[string]any{"iss": nil})), false, ReasonMalformed},
		{"iss not string", k.mint(t, "ES256", claims(now, map[string]any{"iss": []string{testIss}})), false, ReasonMalformed},
		{"wrong aud", k.mint(t, "ES256", claims(now, map[string]any{"aud": "billing-api"})), false, ReasonAudience},
		{"aud array with ours", k.mint(t, "ES256", claims(now, map[string]any{"aud": []string{"x", "orders-api"}})), true, 0},
		{"aud missing", k.mint(t, "ES256", claims(now, map[string]any{"aud": nil})), false, ReasonAudience},
		{"aud number", k.mint(t, "ES256", claims(now, map[string]any{"aud": 7})), false, ReasonMalformed},
		{"typ JWT", signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"ec1","typ":"JWT"}`, body), false, ReasonTyp},
		{"typ missing", signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"ec1"}`, body), false, ReasonTyp},
		{"typ application/at+jwt", signRaw(t, "ES256", k.ec, `{"alg":"ES256","kid":"ec1","typ":"application/AT+JWT"}`, body), true, 0},

		// Signatures.
		{"ECDSA r=s=0", esParts[0] + "." + esParts[1] + "." + b64(make([]byte, 64)), false, ReasonBadSignature},
		{"ECDSA DER signature", esParts[0] + "." + esParts[1] + "." + b64(derSig(t, es)), false, ReasonBadSignature},
		{"ECDSA s=n", esParts[0] + "." + esParts[1] + "." + b64(sigWithS(t, es, elliptic256N())), false, ReasonBadSignature},
		{"tampered payload", esParts[0] + "." + b64([]byte(strings.Replace(body, "alice", "admin", 1))) + "." + esParts[2], false, ReasonBadSignature},
		{"empty signature", esParts[0] + "." + esParts[1] + ".", false, ReasonMalformed},
		{"signed by attacker", signRaw(t, "ES256", k.attacker, hdr("ES256", "ec1", ""), body), false, ReasonBadSignature},

		// Structure and encoding.
		{"padding", esParts[0] + "=." + esParts[1] + "." + esParts[2], false, ReasonMalformed},
		{"line break", esParts[0][:10] + "\n" + esParts[0][10:] + "." + esParts[1] + "." + esParts[2], false, ReasonMalformed},
		{"CRLF", esParts[0] + "." + esParts[1][:5] + "\r\n" + esParts[1][5:] + "." + esParts[2], false, ReasonMalformed},
		{"non-zero trailing bits", esParts[0] + "." + esParts[1] + "." + trailingBits(esParts[2]), false, ReasonMalformed},
		{"std alphabet", esParts[0] + "." + esParts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(esParts[2]) + "+", false, ReasonMalformed},
		{"two segments", esParts[0] + "." + esParts[1], false, ReasonMalformed},
		{"four segments", es + ".AAAA", false, ReasonMalformed},
		{"JWE shaped", esParts[0] + ".." + "AAAA" + "." + esParts[1] + "." + "AAAA", false, ReasonMalformed},
		{"empty", "", false, ReasonMalformed},
		{"garbage", "hello world", false, ReasonMalformed},
		{"dots only", "..", false, ReasonMalformed},
		{"header not object", b64([]byte(`["ES256"]`)) + "." + esParts[1] + "." + esParts[2], false, ReasonMalformed},
		{"claims array", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", ""), `[1,2]`), false, ReasonMalformed},
		{"claims string", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", ""), `"x"`), false, ReasonMalformed},
		{"claims not JSON", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", ""), `{iss:1`), false, ReasonMalformed},
		{"duplicate header alg", signRaw(t, "ES256", k.ec, `{"alg":"ES256","alg":"none","kid":"ec1","typ":"at+jwt"}`, body), false, ReasonMalformed},
		{"duplicate claim sub", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", ""), strings.Replace(body, `"sub":"alice"`, `"sub":"alice","sub":"root"`, 1)), false, ReasonMalformed},
		{"duplicate nested claim", signRaw(t, "ES256", k.ec, hdr("ES256", "ec1", ""), strings.Replace(body, `"sub":"alice"`, `"sub":"alice","x":{"a":1,"a":2}`, 1)), false, ReasonMalformed},
		{"oversized", tooLong, false, ReasonMalformed},
	}
	c := newTestChecker(t, nil, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := c.Check(context.Background(), []byte(tc.tok))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if e.Active() != tc.want {
				t.Fatalf("active = %v (reason %v), want %v", e.Active(), e.Reason(), tc.want)
			}
			if !tc.want && e.Reason() != tc.reason {
				t.Errorf("reason = %v, want %v", e.Reason(), tc.reason)
			}
			if !tc.want && string(e.Body()) != `{"active":false}` {
				t.Errorf("inactive body = %s", e.Body())
			}
			// A second look comes from the cache and must agree.
			e2, _ := c.Check(context.Background(), []byte(tc.tok))
			if e2.Active() != tc.want {
				t.Fatalf("second check active = %v, want %v", e2.Active(), tc.want)
			}
		})
	}
}

func TestHMACOnlyWhereConfigured(t *testing.T) {
	k := testKeys()
	secret := []byte(strings.Repeat("s", 32))
	c := newTestChecker(t, func(ic *IssuerConfig) {
		ic.HMACSecret = secret
		ic.Algorithms = append(ic.Algorithms, "HS256")
	}, nil)
	now := time.Now()
	body := mustJSON(t, claims(now, nil))
	der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	for _, tc := range []struct {
		name string
		key  []byte
		want bool
	}{
		{"configured secret", secret, true},
		{"public key as secret", der, false},
		{"jwks as secret", k.jwks(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRaw(t, "HS256", tc.key, `{"alg":"HS256","typ":"at+jwt"}`, body)
			e, err := c.Check(context.Background(), []byte(tok))
			if err != nil || e.Active() != tc.want {
				t.Fatalf("active = %v, err %v; want %v", e.Active(), err, tc.want)
			}
		})
	}
	if _, err := NewVerifier([]IssuerConfig{{Issuer: testIss, JWKS: k.jwks(t), Algorithms: []string{"HS256"}}}, VerifierOptions{}); err == nil {
		t.Fatal("HS256 without a secret was accepted")
	}
}

func TestAnswerMembers(t *testing.T) {
	k := testKeys()
	c := newTestChecker(t, nil, nil)
	now := time.Now()
	tok := k.mint(t, "EdDSA", claims(now, map[string]any{
		"scope": nil, "scp": []string{"orders:read", "orders:write"}, "active": false,
		"tenant": map[string]any{"id": 42}, "username": "alice@example.com",
	}))
	e, err := c.Check(context.Background(), []byte(tok))
	if err != nil || !e.Active() {
		t.Fatalf("not active: %v %v", e.Reason(), err)
	}
	var got map[string]any
	if err := json.Unmarshal(e.Body(), &got); err != nil {
		t.Fatalf("body %s: %v", e.Body(), err)
	}
	want := map[string]any{
		"active": true, "scope": "orders:read orders:write", "sub": "alice", "iss": testIss,
		"aud": "orders-api", "client_id": "web", "jti": "jti-1", "username": "alice@example.com",
		"exp": float64(now.Add(time.Hour).Unix()), "iat": float64(now.Unix()),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if tenant, _ := got["tenant"].(map[string]any); tenant["id"] != float64(42) {
		t.Errorf("custom claim tenant = %#v", got["tenant"])
	}
	if strings.Count(string(e.Body()), `"active"`) != 1 {
		t.Errorf("body repeats active: %s", e.Body())
	}
}

func attackerJWK(t *testing.T, k *ecdsa.PrivateKey) string {
	x := b64(k.X.FillBytes(make([]byte, 32)))
	y := b64(k.Y.FillBytes(make([]byte, 32)))
	return `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}`
}

func sigOf(t *testing.T, tok string) []byte {
	sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func derSig(t *testing.T, tok string) []byte {
	sig := sigOf(t, tok)
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func sigWithS(t *testing.T, tok string, s *big.Int) []byte {
	sig := sigOf(t, tok)
	s.FillBytes(sig[32:])
	return sig
}

func elliptic256N() *big.Int { return new(big.Int).Set(ellipticP256N) }

// trailingBits sets the unused low bits of the last character of a
// base64url segment whose length is not a multiple of 4.
func trailingBits(seg string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alpha, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alpha[last|1])
}
