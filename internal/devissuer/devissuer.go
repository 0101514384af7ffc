// Package devissuer is the ephemeral token issuer of dev mode: a fresh
// signing key that lives as long as the process, the issuer configuration
// that trusts it, and a /dev/token endpoint that mints tokens with it.
//
// It exists for trying the service out on a laptop. Nothing of it runs
// unless introspectd is started with -dev.
package devissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"

	"github.com/introspectd/introspectd/introspect"
)

// Issuer is the dev issuer's iss value.
const Issuer = "https://dev.introspectd.invalid/"

// Audience is the aud of the dev issuer's tokens.
const Audience = "dev-api"

// Dev holds the ephemeral key.
type Dev struct {
	signer jose.Signer
	jwks   []byte
}

// New makes a fresh ES256 key.
func New() (*Dev, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := randomHex(8)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	return &Dev{signer: signer, jwks: jwks}, nil
}

// IssuerConfig is the configuration that trusts the dev key.
func (d *Dev) IssuerConfig() introspect.IssuerConfig {
	return introspect.IssuerConfig{
		Issuer: Issuer, JWKS: d.jwks, Algorithms: []string{"ES256"},
		Leeway: 30 * time.Second,
	}
}

// JWKS returns the public key set.
func (d *Dev) JWKS() []byte { return d.jwks }

// Claims are what a minted token says.
type Claims struct {
	Sub      string
	Scope    string
	ClientID string
	TTL      time.Duration
}

// Mint signs an access token.
func (d *Dev) Mint(c Claims) (string, error) {
	now := time.Now()
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	claims := map[string]any{
		"iss": Issuer, "aud": Audience, "sub": c.Sub, "iat": now.Unix(),
		"exp": now.Add(c.TTL).Unix(), "jti": randomHex(16),
	}
	if c.Scope != "" {
		claims["scope"] = c.Scope
	}
	if c.ClientID != "" {
		claims["client_id"] = c.ClientID
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := d.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Handler serves GET/POST /dev/token (query or form: sub, scope,
// client_id, ttl) with a fresh token as text, and /dev/jwks.json.
func (d *Dev) Handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/dev/jwks.json":
		ctx.SetContentType("application/json")
		ctx.SetBody(d.jwks)
	case "/dev/token":
		arg := func(k string) string {
			if v := ctx.QueryArgs().Peek(k); len(v) > 0 {
				return string(v)
			}
			return string(ctx.PostArgs().Peek(k))
		}
		c := Claims{Sub: arg("sub"), Scope: arg("scope"), ClientID: arg("client_id")}
		if c.Sub == "" {
			c.Sub = "dev-user"
		}
		if c.ClientID == "" {
			c.ClientID = "dev-client"
		}
		if t := arg("ttl"); t != "" {
			ttl, err := time.ParseDuration(t)
			if err != nil || ttl <= 0 || ttl > 24*time.Hour {
				ctx.SetStatusCode(fasthttp.StatusBadRequest)
				ctx.SetBodyString("ttl: want a duration like 1h, at most 24h\n")
				return
			}
			c.TTL = ttl
		}
		tok, err := d.Mint(c)
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			ctx.SetBodyString(err.Error())
			return
		}
		ctx.SetContentType("text/plain")
		ctx.SetBodyString(tok + "\n")
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

// Curl returns a command a developer can paste to try the service.
func Curl(addr, token string) string {
	return fmt.Sprintf("curl -s -X POST http://%s/introspect -d token=%s", Host(addr), token)
}

// Host turns a listen address into one a local client can dial.
func Host(addr string) string {
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") || strings.HasPrefix(addr, ":") {
		return "127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:]
	}
	return addr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
