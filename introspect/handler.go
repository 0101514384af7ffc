package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/introspectd/introspectd/cache"
	"github.com/introspectd/introspectd/revocation"
)

// Endpoint names an HTTP endpoint, for metrics.
type Endpoint uint8

// Endpoints.
const (
	EndpointIntrospect Endpoint = iota
	EndpointAuthz
	EndpointRevoke
	NumEndpoints
)

var endpointNames = [NumEndpoints]string{"introspect", "authz", "revoke"}

func (e Endpoint) String() string { return endpointNames[e] }

// Outcome classifies an answer, for metrics.
type Outcome uint8

// Outcomes: what the caller was told.
const (
	OutcomeActive           Outcome = iota // introspect: active
	OutcomeInactive                        // introspect: inactive
	OutcomeAllowed                         // authz: 200
	OutcomeUnauthorized                    // authz: 401, no or bad token
	OutcomeForbidden                       // authz: 403, scope missing
	OutcomeRevoked                         // revoke: 200
	OutcomeInvalidRequest                  // 400
	OutcomeInvalidClient                   // 401 caller not authenticated
	OutcomeMethodNotAllowed                // 405
	OutcomeUnsupportedMedia                // 415
	OutcomeUnavailable                     // 503
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"active", "inactive", "allowed", "unauthorized", "forbidden",
	"revoked", "invalid_request", "invalid_client", "method_not_allowed", "unsupported_media_type", "unavailable"}

func (o Outcome) String() string { return outcomeNames[o] }

// Observer records each answer. Implementations must not allocate: it is
// called on the hit path.
type Observer interface {
	Observe(e Endpoint, o Outcome, d time.Duration)
}

// Publisher publishes revocation events and returns once they are stored.
type Publisher interface {
	Publish(ctx context.Context, events ...revocation.Event) (uint64, error)
}

// HandlerConfig wires a Handler.
type HandlerConfig struct {
	Checker *Checker
	Clients []Client
	// AllowAnonymous lets callers without credentials use /introspect and
	// /revoke. Only dev mode sets it.
	AllowAnonymous bool
	Routes         []Route
	// ClaimHeaders are the /authz response headers for the claims named in
	// VerifierOptions.ClaimHeaders, in the same order.
	ClaimHeaders []string
	Publisher    Publisher // nil: /revoke answers 503
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func() (bool, string)
	// Unavailable, when it returns true, makes /introspect and /authz answer
	// 503: the revocation history is stale and the operator chose to fail
	// closed.
	Unavailable func() bool
	Observer    Observer
	Metrics     fasthttp.RequestHandler // serves /metrics; nil: 404
	Logger      *slog.Logger
}

// Handler serves the HTTP API. Safe for concurrent use.
type Handler struct {
	cfg     HandlerConfig
	chk     *Checker
	clients *clients
	routes  []route
	// claimHeaders are cfg.ClaimHeaders in fasthttp's canonical form, for
	// SetCanonical (see hdrCacheCtl).
	claimHeaders [][]byte
	log          *slog.Logger
}

// NewHandler builds a Handler.
func NewHandler(cfg HandlerConfig) *Handler {
	h := &Handler{cfg: cfg, chk: cfg.Checker, clients: newClients(cfg.Clients), routes: compileRoutes(cfg.Routes), log: cfg.Logger}
	for _, name := range cfg.ClaimHeaders {
		h.claimHeaders = append(h.claimHeaders, fasthttp.AppendNormalizedHeaderKey(nil, name))
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.cfg.Observer == nil {
		h.cfg.Observer = nopObserver{}
	}
	return h
}

type nopObserver struct{}

func (nopObserver) Observe(Endpoint, Outcome, time.Duration) {}

var (
	ctJSON         = []byte("application/json")
	ctForm         = []byte("application/x-www-form-urlencoded")
	hdrNoStore     = []byte("no-store")
	errInvalidReq  = []byte(`{"error":"invalid_request"}`)
	errInvalidCli  = []byte(`{"error":"invalid_client"}`)
	errUnavailable = []byte(`{"error":"temporarily_unavailable"}`)
	errMethod      = []byte(`{"error":"invalid_request","error_description":"method not allowed"}`)
	errMedia       = []byte(`{"error":"invalid_request","error_description":"content type must be application/x-www-form-urlencoded"}`)
	errNotFound    = []byte(`{"error":"not_found"}`)
	retryAfterSecs = "5"
)

// Header names in fasthttp's canonical form, set with SetCanonical and read
// with PeekCanonical: Set and Peek copy and normalise the name on every call
// (Cache-Control's alone was 8% of a hit in-process). The server keeps
// fasthttp's name normalisation on, so every name received is in this form
// whatever its case on the wire (TestCanonicalNames).
var (
	hdrCacheCtl        = []byte("Cache-Control")
	hdrAuthorization   = []byte("Authorization")
	hdrForwardedMethod = []byte("X-Forwarded-Method")
	hdrOriginalMethod  = []byte("X-Original-Method")
	hdrForwardedURI    = []byte("X-Forwarded-Uri")
	hdrOriginalURI     = []byte("X-Original-Uri")
	hdrSubject         = []byte("X-Auth-Subject")
	hdrClientID        = []byte("X-Auth-Client-Id")
	hdrScope           = []byte("X-Auth-Scope")
)

// ServeHTTP is the fasthttp request handler. It reads request headers by
// their canonical names, so the server must keep fasthttp's header-name
// normalisation on (the default; DisableHeaderNamesNormalizing would hide
// an "authorization" sent in lower case).
func (h *Handler) ServeHTTP(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/introspect":
		h.introspect(ctx)
	case "/authz":
		h.authz(ctx)
	case "/revoke":
		h.revoke(ctx)
	case "/healthz":
		ctx.SetContentTypeBytes(ctJSON)
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/readyz":
		h.readyz(ctx)
	case "/metrics":
		if h.cfg.Metrics != nil {
			h.cfg.Metrics(ctx)
			return
		}
		fallthrough
	default:
		if bytes.HasPrefix(ctx.Path(), []byte("/authz/")) {
			h.authz(ctx)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentTypeBytes(ctJSON)
		ctx.SetBody(errNotFound)
	}
}

func (h *Handler) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentTypeBytes(ctJSON)
	ctx.Response.Header.SetCanonical(hdrCacheCtl, hdrNoStore)
	ok, reason := true, ""
	if h.cfg.Ready != nil {
		ok, reason = h.cfg.Ready()
	}
	if ok {
		ctx.SetBodyString(`{"status":"ready"}`)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	b, _ := json.Marshal(struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}{"not_ready", reason})
	ctx.SetBody(b)
}

// answer writes a JSON answer that no cache may keep (RFC 7662 answers
// describe live credentials).
func answer(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentTypeBytes(ctJSON)
	ctx.Response.Header.SetCanonical(hdrCacheCtl, hdrNoStore)
	// Every body given here is immutable (package constants or a cached
	// entry's answer, kept alive by the GC while fasthttp writes it), so
	// it need not be copied.
	ctx.Response.SetBodyRaw(body)
}

// caller checks method, content type and client credentials shared by
// /introspect and /revoke. It writes the error answer and returns nil,
// false when the request must stop.
func (h *Handler) caller(ctx *fasthttp.RequestCtx, ep Endpoint, start time.Time) (*Client, bool) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		answer(ctx, fasthttp.StatusMethodNotAllowed, errMethod)
		h.cfg.Observer.Observe(ep, OutcomeMethodNotAllowed, time.Since(start))
		return nil, false
	}
	ct := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if !bytes.Equal(ct, ctForm) && !bytes.EqualFold(bytes.TrimSpace(ct), ctForm) {
		answer(ctx, fasthttp.StatusUnsupportedMediaType, errMedia)
		h.cfg.Observer.Observe(ep, OutcomeUnsupportedMedia, time.Since(start))
		return nil, false
	}
	cl := h.clients.authenticate(ctx.Request.Header.PeekCanonical(hdrAuthorization))
	if cl == nil && !h.cfg.AllowAnonymous {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Basic realm="introspect"`)
		answer(ctx, fasthttp.StatusUnauthorized, errInvalidCli)
		h.cfg.Observer.Observe(ep, OutcomeInvalidClient, time.Since(start))
		return nil, false
	}
	return cl, true
}

func (h *Handler) unavailable(ctx *fasthttp.RequestCtx, ep Endpoint, start time.Time) {
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, retryAfterSecs)
	answer(ctx, fasthttp.StatusServiceUnavailable, errUnavailable)
	h.cfg.Observer.Observe(ep, OutcomeUnavailable, time.Since(start))
}

// check runs the checker and applies what depends on the caller. k is
// tok's key from h.chk.key; sendsBody says the answer will carry the
// entry's body (see Checker.checkAt).
func (h *Handler) check(ctx *fasthttp.RequestCtx, tok []byte, k *cache.Key, cl *Client, start time.Time, sendsBody bool) (*Entry, error) {
	if h.cfg.Unavailable != nil && h.cfg.Unavailable() {
		return nil, ErrUndecidable
	}
	now := start.Unix()
	if !h.chk.realClock {
		now = h.chk.now().Unix()
	}
	e, err := h.chk.checkAt(ctx, tok, k, now, sendsBody) // the only error is ErrUndecidable
	if err != nil {
		return nil, err
	}
	if e.active && cl != nil && len(cl.Audiences) > 0 && !e.hasAudience(cl.Audiences) {
		return inactiveEntries[ReasonAudience], nil
	}
	return e, nil
}

func (h *Handler) introspect(ctx *fasthttp.RequestCtx) {
	start := requestStart(ctx)
	// The token's key first, so that the cache's memory loads while the
	// caller is checked (see Checker.key).
	tok := formValue(ctx, "token")
	k := h.chk.key(tok)
	cl, ok := h.caller(ctx, EndpointIntrospect, start)
	if !ok {
		return
	}
	if len(tok) == 0 {
		answer(ctx, fasthttp.StatusBadRequest, errInvalidReq)
		h.cfg.Observer.Observe(EndpointIntrospect, OutcomeInvalidRequest, time.Since(start))
		return
	}
	e, err := h.check(ctx, tok, &k, cl, start, true)
	if err != nil {
		h.unavailable(ctx, EndpointIntrospect, start)
		return
	}
	answer(ctx, fasthttp.StatusOK, e.Body())
	if e.active {
		h.cfg.Observer.Observe(EndpointIntrospect, OutcomeActive, time.Since(start))
	} else {
		h.cfg.Observer.Observe(EndpointIntrospect, OutcomeInactive, time.Since(start))
	}
}

var (
	challengeMissing = `Bearer realm="introspect"`
	challengeInvalid = `Bearer realm="introspect", error="invalid_token"`
)

// authz is forward authentication: may the original request pass?
func (h *Handler) authz(ctx *fasthttp.RequestCtx) {
	start := requestStart(ctx)
	tok := bearer(ctx.Request.Header.PeekCanonical(hdrAuthorization))
	if len(tok) == 0 {
		h.deny(ctx, challengeMissing, OutcomeUnauthorized, start)
		return
	}
	k := h.chk.key(tok)
	// The route is found while the cache's memory loads (see
	// Checker.key), though a bad token is refused before a bad path.
	method, uri := originalRequest(ctx)
	p, pathOK := cleanPath(uri)
	var r *route
	if pathOK {
		r = firstRoute(h.routes, method, p)
	}
	e, err := h.check(ctx, tok, &k, nil, start, false)
	if err != nil {
		h.unavailable(ctx, EndpointAuthz, start)
		return
	}
	if !e.active {
		h.deny(ctx, challengeInvalid, OutcomeUnauthorized, start)
		return
	}
	if !pathOK {
		answer(ctx, fasthttp.StatusBadRequest, errInvalidReq)
		h.cfg.Observer.Observe(EndpointAuthz, OutcomeInvalidRequest, time.Since(start))
		return
	}
	if r != nil && !hasScopes(e.scope(), r.scopes) {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate,
			`Bearer realm="introspect", error="insufficient_scope", scope="`+r.needed+`"`)
		answer(ctx, fasthttp.StatusForbidden, []byte(`{"error":"insufficient_scope"}`))
		h.cfg.Observer.Observe(EndpointAuthz, OutcomeForbidden, time.Since(start))
		return
	}
	hdr := &ctx.Response.Header
	sub, clientID, scope := e.headerValues()
	hdr.SetCanonical(hdrSubject, sub)
	hdr.SetCanonical(hdrClientID, clientID)
	hdr.SetCanonical(hdrScope, scope)
	for i, name := range h.claimHeaders {
		if v := e.claimValue(i); len(v) > 0 {
			hdr.SetCanonical(name, v)
		}
	}
	hdr.SetCanonical(hdrCacheCtl, hdrNoStore)
	ctx.SetStatusCode(fasthttp.StatusOK)
	h.cfg.Observer.Observe(EndpointAuthz, OutcomeAllowed, time.Since(start))
}

func (h *Handler) deny(ctx *fasthttp.RequestCtx, challenge string, o Outcome, start time.Time) {
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, challenge)
	answer(ctx, fasthttp.StatusUnauthorized, []byte(`{"error":"invalid_token"}`))
	h.cfg.Observer.Observe(EndpointAuthz, o, time.Since(start))
}

// originalRequest returns the method and URI of the request the gateway
// asks about: from X-Forwarded-* (Traefik, Caddy), X-Original-* (nginx
// auth_request), else this request's own (Envoy ext_authz forwards the
// original method and path under the /authz prefix).
func originalRequest(ctx *fasthttp.RequestCtx) (method, uri []byte) {
	hdr := &ctx.Request.Header
	method = hdr.PeekCanonical(hdrForwardedMethod)
	if len(method) == 0 {
		method = hdr.PeekCanonical(hdrOriginalMethod)
	}
	if len(method) == 0 {
		method = ctx.Method()
	}
	uri = hdr.PeekCanonical(hdrForwardedURI)
	if len(uri) == 0 {
		uri = hdr.PeekCanonical(hdrOriginalURI)
	}
	if len(uri) == 0 {
		uri = ctx.RequestURI()
		uri = bytes.TrimPrefix(uri, []byte("/authz"))
		if len(uri) == 0 || uri[0] != '/' {
			uri = []byte("/")
		}
	}
	return method, uri
}

// formValue returns the first value of name in the form body. Tokens are
// base64url and need no decoding, so a body without '%' or '+' is split
// directly; fasthttp's full argument parse scans and copies every byte and
// was 6% of a cache hit in the hit-path profile. Any body that needs
// decoding goes through fasthttp.
func formValue(ctx *fasthttp.RequestCtx, name string) []byte {
	body := ctx.PostBody()
	if bytes.IndexByte(body, '%') >= 0 || bytes.IndexByte(body, '+') >= 0 {
		return ctx.PostArgs().Peek(name)
	}
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte{'&'})
		if k, v, _ := bytes.Cut(pair, []byte{'='}); string(k) == name {
			return v
		}
	}
	return nil
}

// Prefetch starts loading the cache memory of the request whose bytes, as
// read from the connection, end with p, when p ends a form body that ends
// with a token: POST /introspect sends token=..., optionally followed by a
// token_type_hint. Its last 16 bytes give the token's front-table slot (see
// [cache.Keyer.Hint]). Called from the connection's Read (internal/onread),
// it lets the parse of the request hide the slot's memory miss: 0.33 and
// 0.34 µs less server CPU per request (two sets of six paired open-loop
// runs at 40,000 req/s over 10,000 tokens, 11 of 12 lower). A wrong guess
// costs one needless load.
// It does not keep p.
func (h *Handler) Prefetch(p []byte) {
	if t := tokenTail(p); t != nil {
		h.chk.prefetch(t)
	}
}

var typeHints = [][]byte{[]byte("&token_type_hint=access_token"), []byte("&token_type_hint=refresh_token")}

// tokenTail returns the last 16 bytes of the token that ends p, if p ends
// in the way an introspection body does, or nil.
func tokenTail(p []byte) []byte {
	for _, s := range typeHints {
		if bytes.HasSuffix(p, s) {
			p = p[:len(p)-len(s)]
			break
		}
	}
	// A chunk that ends a header (CRLF CRLF) carries no body.
	if len(p) < 16 || p[len(p)-1] == '\n' {
		return nil
	}
	return p[len(p)-16:]
}

func bearer(h []byte) []byte {
	if len(h) < 7 || !asciiEqualFold(h[:7], "Bearer ") {
		return nil
	}
	return bytes.TrimSpace(h[7:])
}

// hasScopes reports whether the space-separated scope list have holds
// every scope in need, without splitting it (the hit path must not
// allocate).
func hasScopes(have string, need []string) bool {
	for _, n := range need {
		found := false
		for rest := have; rest != "" && !found; {
			var s string
			s, rest, _ = strings.Cut(rest, " ")
			found = s == n
		}
		if !found {
			return false
		}
	}
	return true
}

// revoke implements RFC 7009: the token is revoked on every node once the
// events are stored. Tokens that are not active here need nothing and get
// the same empty 200, as the RFC asks for unknown tokens.
func (h *Handler) revoke(ctx *fasthttp.RequestCtx) {
	start := requestStart(ctx)
	if _, ok := h.caller(ctx, EndpointRevoke, start); !ok {
		return
	}
	tok := formValue(ctx, "token")
	if len(tok) == 0 {
		answer(ctx, fasthttp.StatusBadRequest, errInvalidReq)
		h.cfg.Observer.Observe(EndpointRevoke, OutcomeInvalidRequest, time.Since(start))
		return
	}
	k := h.chk.key(tok)
	e, err := h.check(ctx, tok, &k, nil, start, false)
	if err != nil || h.cfg.Publisher == nil {
		h.unavailable(ctx, EndpointRevoke, start)
		return
	}
	if e.active {
		var t revocation.Token
		e.token(&t)
		events := []revocation.Event{{Kind: revocation.KindToken, TokenSHA256: t.Digest, Exp: t.Exp}}
		if t.Jti != "" {
			events = append(events, revocation.Event{Kind: revocation.KindJTI, Iss: t.Iss, Jti: t.Jti, Exp: t.Exp})
		}
		pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		seq, err := h.cfg.Publisher.Publish(pctx, events...)
		cancel()
		if err != nil {
			h.log.Warn("revocation not published", "err", err, "token_sha256", shortDigest(tok))
			h.unavailable(ctx, EndpointRevoke, start)
			return
		}
		h.log.Info("token revoked", "token_sha256", shortDigest(tok), "seq", seq)
	}
	ctx.Response.Header.SetCanonical(hdrCacheCtl, hdrNoStore)
	ctx.SetStatusCode(fasthttp.StatusOK)
	h.cfg.Observer.Observe(EndpointRevoke, OutcomeRevoked, time.Since(start))
}

// shortDigest is how logs name a token: the first 12 hex digits of its
// SHA-256, enough to correlate, never enough to use.
func shortDigest(tok []byte) string {
	d := Digest(tok)
	const hex = "0123456789abcdef"
	b := make([]byte, 12)
	for i := 0; i < 6; i++ {
		b[2*i], b[2*i+1] = hex[d[i]>>4], hex[d[i]&15]
	}
	return string(b)
}

// ErrorHandler answers requests fasthttp refused before the handler ran,
// chiefly bodies over the limit (413) and malformed HTTP (400).
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		answer(ctx, fasthttp.StatusRequestEntityTooLarge, []byte(`{"error":"invalid_request","error_description":"body too large"}`))
		return
	}
	answer(ctx, fasthttp.StatusBadRequest, errInvalidReq)
}

// requestStart is when fasthttp began serving the request, read from its
// clock reading rather than a new one: reading the clock costs tens of
// nanoseconds in a virtual machine, and a hit is only a microsecond.
func requestStart(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}
