package bench

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// BaselineKinds are the baseline servers [ServeBaseline] can run.
var BaselineKinds = []string{"fixed", "nethttp-jwt"}

// BaselineConfig configures a baseline server.
type BaselineConfig struct {
	Kind string // "fixed" or "nethttp-jwt"

	// nethttp-jwt: the keys to verify against (a public JWKS file) and the
	// issuer and caller credentials to require (none when ClientID is empty).
	JWKSFile     string
	Issuer       string
	Leeway       time.Duration // default 30s
	ClientID     string
	ClientSecret string

	// fixed: the answer imitates one for a token of this size (default 800),
	// so that both servers write about as many bytes.
	TokenSize int
	// fixed: CPU to spend on each /introspect and /authz request before
	// answering (0: none). With it set to introspectd's extra CPU per
	// request, the fixed server is the CPU-matched ceiling of run.sh.
	Work time.Duration
}

// ServeBaseline serves a baseline on ln until ctx is done.
//
//   - fixed is the HTTP ceiling: a fasthttp server that answers POST
//     /introspect with a pre-encoded {"active":true,...} body (and GET /authz
//     with 200 and fixed X-Auth-* headers) and does nothing else: no
//     authentication, no parsing, no verification. With Work set it also
//     spends that much CPU on each request, and nothing else changes.
//   - nethttp-jwt is what teams deploy instead of a cache: a net/http handler
//     that parses the form and verifies the JWT on every request with
//     github.com/golang-jwt/jwt/v5, then encodes the claims with encoding/json.
func ServeBaseline(ctx context.Context, ln net.Listener, c BaselineConfig) error {
	var serve func() error
	var shutdown func() error
	switch c.Kind {
	case "fixed":
		s, err := NewFixedServer(c.TokenSize, c.Work)
		if err != nil {
			return err
		}
		serve = func() error { return s.Serve(ln) }
		shutdown = s.Shutdown
	case "nethttp-jwt":
		h, err := NewJWTHandler(c)
		if err != nil {
			return err
		}
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		serve = func() error { return s.Serve(ln) }
		shutdown = func() error { return s.Shutdown(context.Background()) }
	default:
		return fmt.Errorf("unknown baseline %q: want one of %s", c.Kind, strings.Join(BaselineKinds, ", "))
	}
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		_ = shutdown()
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// NewFixedServer returns the fixed-body fasthttp server (see [ServeBaseline]),
// spending work of CPU on each /introspect and /authz request.
func NewFixedServer(tokenSize int, work time.Duration) (*fasthttp.Server, error) {
	body, err := fixedBody(tokenSize)
	if err != nil {
		return nil, err
	}
	b := newBurner(work)
	return &fasthttp.Server{
		Name:                          "fixed",
		NoDefaultDate:                 false,
		DisableHeaderNamesNormalizing: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/introspect":
				b.burn()
				if !ctx.IsPost() {
					ctx.Response.Header.Set("Allow", "POST")
					ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
					return
				}
				ctx.SetContentType("application/json")
				ctx.Response.SetBodyRaw(body)
			case "/authz":
				b.burn()
				ctx.Response.Header.Set("X-Auth-Subject", "user-1")
				ctx.Response.Header.Set("X-Auth-Client-Id", "bench-client")
				ctx.Response.Header.Set("X-Auth-Scope", "read write")
			case "/healthz", "/readyz":
			default:
				ctx.SetStatusCode(fasthttp.StatusNotFound)
			}
		},
	}, nil
}

// fixedBody is an introspection answer for a typical bench token of tokenSize bytes.
func fixedBody(tokenSize int) ([]byte, error) {
	if tokenSize == 0 {
		tokenSize = 800
	}
	keys, err := GenerateKeys(DefaultIssuer, "ES256")
	if err != nil {
		return nil, err
	}
	m := NewMinter(keys, Claims{Size: tokenSize})
	_, kid, _ := keys.Signer("ES256")
	hdr, cs := m.claimsFor("ES256", kid, time.Now().Add(time.Hour))
	in := m.signingInput("ES256", hdr, cs)
	_, payload, _ := strings.Cut(string(in), ".")
	claims, err := b64.DecodeString(payload)
	if err != nil {
		return nil, err
	}
	return append([]byte(`{"active":true,"token_type":"Bearer",`), claims[1:]...), nil
}

type jwtHandler struct {
	parser *jwt.Parser
	keys   map[string]any    // kid → public key
	algs   map[string]string // kid → alg
	basic  BaselineConfig
}

// NewJWTHandler returns the verify-every-request net/http handler (see [ServeBaseline]).
func NewJWTHandler(c BaselineConfig) (http.Handler, error) {
	if c.JWKSFile == "" || c.Issuer == "" {
		return nil, errors.New("nethttp-jwt needs a JWKS file and an issuer")
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	set, err := LoadJWKS(c.JWKSFile)
	if err != nil {
		return nil, err
	}
	h := &jwtHandler{keys: map[string]any{}, algs: map[string]string{}, basic: c}
	for kid, k := range set {
		h.keys[kid], h.algs[kid] = k.Key, k.Algorithm
	}
	h.parser = jwt.NewParser(jwt.WithValidMethods(Algorithms), jwt.WithIssuer(c.Issuer),
		jwt.WithLeeway(c.Leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /introspect", h.introspect)
	mux.HandleFunc("/authz", h.authz)
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	return mux, nil
}

func (h *jwtHandler) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k, ok := h.keys[kid]
	if !ok || h.algs[kid] != t.Method.Alg() {
		return nil, errors.New("unknown key")
	}
	return k, nil
}

func (h *jwtHandler) verify(tok string) (jwt.MapClaims, bool) {
	claims := jwt.MapClaims{}
	if _, err := h.parser.ParseWithClaims(tok, claims, h.keyfunc); err != nil {
		return nil, false
	}
	return claims, true
}

func (h *jwtHandler) introspect(w http.ResponseWriter, r *http.Request) {
	if h.basic.ClientID != "" {
		id, secret, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(h.basic.ClientID)) != 1 ||
			subtle.ConstantTimeCompare([]byte(secret), []byte(h.basic.ClientSecret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="introspect"`)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	claims, ok := h.verify(tok)
	if !ok {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	claims["active"] = true
	claims["token_type"] = "Bearer"
	b, _ := json.Marshal(claims)
	_, _ = w.Write(b)
}

func (h *jwtHandler) authz(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="introspect"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	claims, ok := h.verify(tok)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="introspect", error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	sub, _ := claims["sub"].(string)
	cid, _ := claims["client_id"].(string)
	scope, _ := claims["scope"].(string)
	w.Header().Set("X-Auth-Subject", sub)
	w.Header().Set("X-Auth-Client-Id", cid)
	w.Header().Set("X-Auth-Scope", scope)
}
