package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const mintDoc = `
Mints a signed JWT and prints it in compact form on stdout. The algorithm is
the key's (its "alg" member, or RS256, ES256, ES384, ES512 or EdDSA from its
type). Claims: iss, sub, aud, iat, exp, jti, scope and client_id from the
flags, then every -claim, which may also replace any of them.

With -dev-server the token is fetched from a running 'introspectd -dev'
instead (GET /dev/token), which signs with its ephemeral key; only -sub,
-scope, -client-id and -ttl apply then.
`

const mintExamples = `  tokenctl mint -key issuer.jwk -iss https://auth.example.com/ -sub alice -aud orders-api -scope "orders:read orders:write"
  tokenctl mint -key issuer.jwk -iss https://auth.example.com/ -sub alice -claim roles='["admin"]' -claim tenant=acme
  tokenctl mint -dev-server http://127.0.0.1:8080 -sub bob -scope admin -ttl 10m
`

// claimsFlag is the repeatable -claim key=value.
type claimsFlag struct {
	keys []string
	vals map[string]any
}

func (c *claimsFlag) String() string { return strings.Join(c.keys, ",") }

// Set takes key=value; value is kept as JSON when it is valid JSON (a
// number, true, an array, a quoted string...) and as a string otherwise.
func (c *claimsFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, e.g. -claim tenant=acme")
	}
	if c.vals == nil {
		c.vals = make(map[string]any)
	}
	if _, dup := c.vals[k]; !dup {
		c.keys = append(c.keys, k)
	}
	c.vals[k] = claimValue(val)
	return nil
}

// claimValue is val as JSON when it parses as JSON, else val as a string.
// Valid JSON is kept verbatim (json.RawMessage), so large integers keep
// every digit.
func claimValue(val string) any {
	if json.Valid([]byte(val)) {
		return json.RawMessage(strings.TrimSpace(val))
	}
	return val
}

func runMint(e *env, args []string) error {
	f := newFlags("mint", "-key FILE -iss URL -sub S [flags]  |  -dev-server URL [-sub S] [-scope S] [-client-id C] [-ttl D]", mintDoc, mintExamples)
	keyFile := f.String("key", "", "private JWK `FILE` written by 'tokenctl keys -out-private', e.g. -key issuer.jwk")
	iss := f.String("iss", "", "issuer `URL`, the iss claim; must match an issuer in introspectd's config, e.g. -iss https://auth.example.com/")
	sub := f.String("sub", "", "`subject`, the sub claim, e.g. -sub alice")
	var aud listFlag
	f.Var(&aud, "aud", "`audience`, the aud claim; repeat for several (then aud is an array), e.g. -aud orders-api")
	scope := f.String("scope", "", "space-separated `scopes`, the scope claim, e.g. -scope \"orders:read orders:write\"")
	clientID := f.String("client-id", "", "OAuth client `ID`, the client_id claim, e.g. -client-id gateway")
	ttl := f.Duration("ttl", time.Hour, "lifetime: exp is now plus this `duration`, e.g. -ttl 15m (with -dev-server: the server's default unless given)")
	jti := f.String("jti", "auto", "the jti claim: auto (random, 128 bits), none (no jti), or the `ID` to use, e.g. -jti order-42")
	var claims claimsFlag
	f.Var(&claims, "claim", "extra claim `key=value`, repeatable; value is JSON if it parses as JSON, else a string; it replaces a claim of the same name, e.g. -claim roles='[\"admin\"]' -claim tenant=acme")
	typ := f.String("typ", "at+jwt", "JOSE `typ` header (RFC 9068 access tokens use at+jwt); empty for none, e.g. -typ JWT")
	devServer := f.String("dev-server", "", "fetch the token from 'introspectd -dev' at this base `URL` instead of signing it, e.g. -dev-server http://127.0.0.1:8080")
	if err := f.parse(e, args); err != nil {
		return err
	}
	set := f.set()
	if set["ttl"] && *ttl <= 0 {
		return usagef("-ttl: %s is not positive", *ttl)
	}

	if set["dev-server"] {
		if err := f.only(set, "with -dev-server (the dev server sets the other claims itself)", "dev-server", "sub", "scope", "client-id", "ttl"); err != nil {
			return err
		}
		return mintDev(e, *devServer, *sub, *scope, *clientID, *ttl, set["ttl"])
	}

	switch {
	case *keyFile == "":
		return usagef("-key is required (or -dev-server)")
	case *iss == "":
		return usagef("-iss is required")
	case *sub == "":
		return usagef("-sub is required")
	case *jti == "":
		return usagef("-jti is empty; use auto, none or an ID")
	}
	for i, a := range aud {
		if a == "" {
			return usagef("-aud: value %d is empty", i+1)
		}
	}

	jwk, err := readPrivateJWK(*keyFile)
	if err != nil {
		return err
	}
	alg, err := signingAlg(jwk)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}

	now := e.now()
	c := map[string]any{
		"iss": *iss,
		"sub": *sub,
		"iat": now.Unix(),
		"exp": now.Add(*ttl).Unix(),
	}
	switch len(aud) {
	case 0:
	case 1:
		c["aud"] = aud[0]
	default:
		c["aud"] = []string(aud)
	}
	switch *jti {
	case "none":
	case "auto":
		var b [16]byte
		_, _ = rand.Read(b[:])
		c["jti"] = base64.RawURLEncoding.EncodeToString(b[:])
	default:
		c["jti"] = *jti
	}
	if *scope != "" {
		c["scope"] = *scope
	}
	if *clientID != "" {
		c["client_id"] = *clientID
	}
	for _, k := range claims.keys {
		c[k] = claims.vals[k]
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode claims: %w", err)
	}

	opts := &jose.SignerOptions{}
	if *typ != "" {
		opts = opts.WithType(jose.ContentType(*typ))
	}
	// Signing with the JSONWebKey itself puts its kid into the header.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk}, opts)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// readPrivateJWK reads the private JWK that 'tokenctl keys' wrote.
func readPrivateJWK(path string) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	b, err := os.ReadFile(path)
	if err != nil {
		return jwk, fmt.Errorf("-key: %w", err)
	}
	if err := jwk.UnmarshalJSON(b); err != nil {
		return jwk, fmt.Errorf("-key: %s is not a JWK: %w", path, err)
	}
	if jwk.IsPublic() {
		return jwk, fmt.Errorf("-key: %s holds a public key; mint needs the private JWK of 'tokenctl keys -out-private'", path)
	}
	if !jwk.Valid() {
		return jwk, fmt.Errorf("-key: %s is not a valid private key", path)
	}
	return jwk, nil
}

// signingAlg returns the key's alg, or the usual one for its type.
func signingAlg(jwk jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	if jwk.Algorithm != "" {
		return jose.SignatureAlgorithm(jwk.Algorithm), nil
	}
	switch k := jwk.Key.(type) {
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("cannot tell the algorithm of a %T key; add \"alg\" to the JWK", jwk.Key)
}

// mintDev fetches a token from the /dev/token endpoint of introspectd -dev.
func mintDev(e *env, base, sub, scope, clientID string, ttl time.Duration, ttlSet bool) error {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("-dev-server: want a base URL like http://127.0.0.1:8080")
	}
	u = u.JoinPath("dev", "token")
	q := url.Values{}
	for k, v := range map[string]string{"sub": sub, "scope": scope, "client_id": clientID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if ttlSet {
		q.Set("ttl", ttl.String())
	}
	u.RawQuery = q.Encode()

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u.String())
	if err != nil {
		return fmt.Errorf("-dev-server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes))
	if err != nil {
		return fmt.Errorf("-dev-server: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("-dev-server: %s answered %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	tok := strings.TrimSpace(string(body))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return fmt.Errorf("-dev-server: %s did not answer with a token (is it 'introspectd -dev'?)", u.Redacted())
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}
