package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithms lists the JWS algorithms an issuer may allow.
var Algorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
	"HS256", "HS384", "HS512",
}

// forbiddenHeaders may not be set from claims: they would change how the
// gateway or the HTTP layer treats the response, or forge our own headers.
var forbiddenHeaders = []string{
	"Authorization", "Host", "Content-Length", "Transfer-Encoding", "Connection",
	"Content-Type", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Set-Cookie", "TE", "Trailer", "Upgrade", "WWW-Authenticate",
}

// Validate checks c and returns an [errors.Join] of [*Error] values, one
// for every problem, or nil. It reads the files c names (key files, secret
// files, certificates) to check that they can be read. Load calls it; a
// Config built in code (dev mode) should call it too.
func (c *Config) Validate() error {
	return errors.Join(c.validate(nil)...)
}

// validate returns the problems with c, leaving out those whose key path
// skip reports.
func (c *Config) validate(skip func(path string) bool) []error {
	v := &validator{c: c, skip: skip}
	v.top()
	for i := range c.Issuers {
		v.issuer(i)
	}
	v.clients()
	v.nats()
	v.revocation()
	v.routes()
	v.claimsHeaders()
	v.tls()
	v.http()
	return v.errs
}

type validator struct {
	c    *Config
	skip func(path string) bool
	errs []error
}

// errf reports a problem with key path, named by where its value came
// from; a key not set in the file takes the line of its closest parent.
func (v *validator) errf(path, format string, args ...any) {
	if v.skip != nil && v.skip(path) {
		return
	}
	e := &Error{Key: path, Msg: fmt.Sprintf(format, args...)}
	if o, ok := v.c.origin[path]; ok {
		e.Key, e.Line = o.key, o.line
	} else {
		for p := parentKey(path); p != ""; p = parentKey(p) {
			if o, ok := v.c.origin[p]; ok && o.line > 0 {
				e.Line = o.line
				break
			}
		}
	}
	v.errs = append(v.errs, e)
}

func parentKey(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (v *validator) top() {
	c := v.c
	if msg := checkHostPort(c.Listen, false); msg != "" {
		v.errf("listen", "%s", msg)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		v.errf("log_format", "%q: want json or text", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.errf("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.PprofListen != "" {
		if msg := checkHostPort(c.PprofListen, false); msg != "" {
			v.errf("pprof_listen", "%s", msg)
		} else if !isLoopback(c.PprofListen) {
			v.errf("pprof_listen", "%q is not a loopback address; want 127.0.0.1:port, [::1]:port or localhost:port", c.PprofListen)
		}
	}
	if len(c.Issuers) == 0 && !c.Dev {
		v.errf("issuers", "no issuers configured: add at least one trusted issuer")
	}
}

// checkHostPort checks a host:port listen address; port -1 (random) is
// allowed when randomOK.
func checkHostPort(s string, randomOK bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Sprintf("%q has a bad host", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p > 65535 || p < 0 && !(randomOK && p == -1) {
		return fmt.Sprintf("%q has a bad port; want 0 to 65535", s)
	}
	return ""
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) nonEmptyStrings(path string, s []string) {
	for i, e := range s {
		if strings.TrimSpace(e) == "" {
			v.errf(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
	}
}

func (v *validator) readable(path, file string) {
	if file == "" {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		v.errf(path, "%v", err)
		return
	}
	defer f.Close() //nolint:errcheck // opened read-only to test access
	if st, err := f.Stat(); err != nil {
		v.errf(path, "%v", err)
	} else if st.IsDir() {
		v.errf(path, "%s is a directory; want a file", file)
	}
}

func (v *validator) duration(path string, d Duration, lo, hi time.Duration) {
	switch {
	case d.D() < lo && lo == 0:
		v.errf(path, "%s is negative", d)
	case d.D() < lo:
		v.errf(path, "%s is too short; want at least %s", d, lo)
	case hi > 0 && d.D() > hi:
		v.errf(path, "%s is too long; want at most %s", d, hi)
	}
}

func (v *validator) issuer(i int) {
	is := &v.c.Issuers[i]
	p := fmt.Sprintf("issuers[%d]", i)
	if is.Issuer == "" {
		v.errf(p+".issuer", "missing: every issuer needs the iss value of its tokens")
	} else {
		for j := range i {
			if v.c.Issuers[j].Issuer == is.Issuer {
				v.errf(p+".issuer", "%q is already issuers[%d]", is.Issuer, j)
				break
			}
		}
	}

	hasHS, hasOther := false, false
	if is.Algorithms != nil && len(is.Algorithms) == 0 {
		v.errf(p+".algorithms", "empty; want at least one algorithm (or leave it out for %s)", strings.Join(DefaultAlgorithms, ", "))
	}
	for j, a := range is.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, j)
		switch {
		case strings.EqualFold(strings.TrimSpace(a), "none"):
			v.errf(ap, `"none" is never accepted`)
		case slices.Contains(Algorithms, a):
			if strings.HasPrefix(a, "HS") {
				hasHS = true
			} else {
				hasOther = true
			}
		default:
			msg := fmt.Sprintf("unknown algorithm %q", a)
			if s := suggest(a, Algorithms); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			v.errf(ap, "%s; want one of %s", msg, strings.Join(Algorithms, " "))
		}
	}

	hasSecret := is.HMACSecret != "" || is.HMACSecretFile != ""
	if is.HMACSecret != "" && is.HMACSecretFile != "" {
		v.errf(p+".hmac_secret", "set only one of hmac_secret and hmac_secret_file")
	}
	if hasHS && !hasSecret {
		v.errf(p+".algorithms", "HS* algorithms need hmac_secret or hmac_secret_file")
	}
	if hasSecret && !hasHS {
		key := p + ".hmac_secret"
		if is.HMACSecret == "" {
			key = p + ".hmac_secret_file"
		}
		v.errf(key, "an HMAC secret is set but algorithms has no HS256, HS384 or HS512")
	}
	if is.HMACSecret != "" && len(is.HMACSecret) < MinHMACSecretBytes {
		v.errf(p+".hmac_secret", "too short (%d bytes); want at least %d", len(is.HMACSecret), MinHMACSecretBytes)
	}
	if is.HMACSecret == "" && is.HMACSecretFile != "" {
		if k, err := is.HMACKey(); err != nil {
			v.errf(p+".hmac_secret_file", "%v", err)
		} else if len(k) < MinHMACSecretBytes {
			v.errf(p+".hmac_secret_file", "secret too short (%d bytes); want at least %d", len(k), MinHMACSecretBytes)
		}
	}

	var sources []string
	if is.JWKSFile != "" {
		sources = append(sources, "jwks_file")
		v.readable(p+".jwks_file", is.JWKSFile)
	}
	if is.JWKSURI != "" {
		sources = append(sources, "jwks_uri")
		if msg := checkHTTPURL(is.JWKSURI); msg != "" {
			v.errf(p+".jwks_uri", "%s", msg)
		}
	}
	if is.Discovery {
		sources = append(sources, "discovery")
		if msg := checkHTTPURL(is.Issuer); is.Issuer != "" && msg != "" {
			v.errf(p+".discovery", "issuer %s", msg)
		}
	}
	switch {
	case len(sources) > 1:
		v.errf(p+"."+sources[1], "set only one of %s", strings.Join(sources, ", "))
	case len(sources) == 0 && hasOther:
		v.errf(p, "no key source for %s: set jwks_file, jwks_uri or discovery", strings.Join(slices.DeleteFunc(slices.Clone(is.Algorithms), func(a string) bool {
			return strings.HasPrefix(a, "HS") || !slices.Contains(Algorithms, a)
		}), ", "))
	case len(sources) == 0 && !hasSecret:
		v.errf(p, "no key source: set jwks_file, jwks_uri or discovery (or an HMAC secret with only HS* algorithms)")
	}

	v.nonEmptyStrings(p+".audiences", is.Audiences)
	v.nonEmptyStrings(p+".typ", is.Typ)
	v.duration(p+".leeway", is.Leeway, 0, 5*time.Minute)
	v.duration(p+".refresh_interval", is.RefreshInterval, time.Second, 0)
	v.duration(p+".refetch_cooldown", is.RefetchCooldown, time.Millisecond, 0)
	v.duration(p+".fetch_timeout", is.FetchTimeout, time.Millisecond, 5*time.Minute)
}

func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", s)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Sprintf("%q is not an http(s) URL", s)
	}
	return ""
}

func (v *validator) clients() {
	c := v.c
	if len(c.Clients) == 0 && !c.Dev {
		v.errf("clients", "no clients configured: callers of /introspect must authenticate (add clients, or run with -dev)")
	}
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			v.errf(p+".id", "missing")
		} else if strings.IndexFunc(cl.ID, isCtl) >= 0 {
			v.errf(p+".id", "%q has control characters", cl.ID)
		} else {
			for j := range i {
				if c.Clients[j].ID == cl.ID {
					v.errf(p+".id", "%q is already clients[%d]", cl.ID, j)
					break
				}
			}
		}
		switch {
		case cl.Secret == "" && cl.SecretSHA256 == "":
			v.errf(p, "set secret or secret_sha256")
		case cl.Secret != "" && cl.SecretSHA256 != "":
			v.errf(p+".secret_sha256", "set only one of secret and secret_sha256")
		case cl.SecretSHA256 != "":
			// Never echo the value: it is a secret too.
			if b, err := hex.DecodeString(cl.SecretSHA256); err != nil || len(b) != 32 {
				v.errf(p+".secret_sha256", "want 64 hex characters (a SHA-256 hash)")
			}
		}
		v.nonEmptyStrings(p+".audiences", cl.Audiences)
	}
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

func (v *validator) nats() {
	n := &v.c.NATS
	if n.URL != "" {
		for u := range strings.SplitSeq(n.URL, ",") {
			u = strings.TrimSpace(u)
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "nats" && pu.Scheme != "tls") || pu.Host == "" {
				// The URL may carry credentials: never show them.
				v.errf("nats.url", "%s is not a nats:// or tls:// URL", redactURLs(u))
			}
		}
	}
	if msg := checkSubject(n.Subject); msg != "" {
		v.errf("nats.subject", "%s", msg)
	}
	if n.Stream == "" || strings.ContainsAny(n.Stream, ".*> \t\r\n/\\") || len(n.Stream) > 255 {
		v.errf("nats.stream", "%q is not a valid stream name (no spaces, '.', '*', '>', '/' or '\\')", n.Stream)
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		v.errf("nats.replicas", "%d is out of range; want 1 to 5", n.Replicas)
	}
	var auth []string
	if n.CredsFile != "" {
		auth = append(auth, "creds_file")
	}
	if n.NKeySeedFile != "" {
		auth = append(auth, "nkey_seed_file")
	}
	if n.User != "" {
		auth = append(auth, "user")
	}
	if n.Token != "" {
		auth = append(auth, "token")
	}
	if len(auth) > 1 {
		v.errf("nats."+auth[1], "set only one of %s", strings.Join(auth, ", "))
	}
	if n.Password != "" && n.User == "" {
		v.errf("nats.password", "needs nats.user")
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		v.errf("nats.cert_file", "set both nats.cert_file and nats.key_file, or neither")
	}
	v.readable("nats.creds_file", n.CredsFile)
	v.readable("nats.nkey_seed_file", n.NKeySeedFile)
	v.readable("nats.ca_file", n.CAFile)
	v.readable("nats.cert_file", n.CertFile)
	v.readable("nats.key_file", n.KeyFile)
	if n.URL == "" && n.DataDir == "" {
		v.errf("nats.data_dir", "missing: the embedded NATS server needs a folder for its store")
	}
	if msg := checkHostPort(n.EmbeddedListen, true); msg != "" {
		v.errf("nats.embedded_listen", "%s", msg)
	} else if !isLoopback(n.EmbeddedListen) {
		v.errf("nats.embedded_listen", "%q is not a loopback address; want 127.0.0.1:port, [::1]:port or localhost:port", n.EmbeddedListen)
	}
}

// checkSubject checks a literal NATS subject: dot-separated non-empty
// tokens without wildcards or white space.
func checkSubject(s string) string {
	if s == "" {
		return "missing"
	}
	for tok := range strings.SplitSeq(s, ".") {
		switch {
		case tok == "":
			return fmt.Sprintf("%q has an empty token", s)
		case strings.ContainsAny(tok, "*>"):
			return fmt.Sprintf("%q has a wildcard; want a literal subject", s)
		case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			return fmt.Sprintf("%q has white space or control characters", s)
		}
	}
	return ""
}

func (v *validator) revocation() {
	r := &v.c.Revocation
	v.duration("revocation.max_token_lifetime", r.MaxTokenLifetime, time.Second, 0)
	v.duration("revocation.max_staleness", r.MaxStaleness, time.Second, 0)
	if v.c.Cache.MaxBytes < 1<<20 {
		v.errf("cache.max_bytes", "%d is too small; want at least 1048576 (1 MiB)", v.c.Cache.MaxBytes)
	}
	v.duration("cache.negative_ttl", v.c.Cache.NegativeTTL, 0, 0)
}

func (v *validator) routes() {
	for i, r := range v.c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case !strings.HasPrefix(r.PathPrefix, "/"):
			v.errf(p+".path_prefix", "%q must start with /", r.PathPrefix)
		case strings.ContainsAny(r.PathPrefix, "?# \t\r\n"):
			v.errf(p+".path_prefix", "%q must be a plain path (no query, fragment or white space)", r.PathPrefix)
		}
		for j, m := range r.Methods {
			switch {
			case !isToken(m):
				v.errf(fmt.Sprintf("%s.methods[%d]", p, j), "%q is not an HTTP method", m)
			case m != strings.ToUpper(m):
				v.errf(fmt.Sprintf("%s.methods[%d]", p, j), "%q must be upper case", m)
			}
		}
		v.nonEmptyStrings(p+".scopes", r.Scopes)
		for j, s := range r.Scopes {
			if strings.ContainsAny(s, " \t\r\n") {
				v.errf(fmt.Sprintf("%s.scopes[%d]", p, j), "%q has white space; list scopes one per item", s)
			}
		}
	}
}

// isToken reports whether s is an RFC 9110 token (header name, method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) claimsHeaders() {
	claims := make([]string, 0, len(v.c.ClaimsHeaders))
	for k := range v.c.ClaimsHeaders {
		claims = append(claims, k)
	}
	sort.Strings(claims)
	used := map[string]string{}
	for _, claim := range claims {
		h := v.c.ClaimsHeaders[claim]
		p := fmt.Sprintf("claims_headers[%q]", claim)
		if claim == "" {
			v.errf(p, "empty claim name")
		}
		switch {
		case !isToken(h):
			v.errf(p, "%q is not a valid header name", h)
			continue
		case strings.HasPrefix(strings.ToLower(h), "x-auth-"):
			v.errf(p, "%q is reserved: X-Auth-* headers are set by introspectd", h)
			continue
		}
		if i := slices.IndexFunc(forbiddenHeaders, func(f string) bool { return strings.EqualFold(f, h) }); i >= 0 {
			v.errf(p, "%q may not be set from a claim", h)
			continue
		}
		lh := strings.ToLower(h)
		if other, dup := used[lh]; dup {
			v.errf(p, "header %q is already used for claim %q", h, other)
			continue
		}
		used[lh] = claim
	}
}

func (v *validator) tls() {
	t := &v.c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errf("tls.cert_file", "set both tls.cert_file and tls.key_file, or neither")
	}
	v.readable("tls.cert_file", t.CertFile)
	v.readable("tls.key_file", t.KeyFile)
}

func (v *validator) http() {
	h := &v.c.HTTP
	v.duration("http.read_timeout", h.ReadTimeout, time.Millisecond, 0)
	v.duration("http.write_timeout", h.WriteTimeout, time.Millisecond, 0)
	v.duration("http.idle_timeout", h.IdleTimeout, time.Millisecond, 0)
	v.duration("http.shutdown_timeout", h.ShutdownTimeout, 0, 0)
	intRange := func(path string, n, lo, hi int) {
		if n < lo || n > hi {
			v.errf(path, "%d is out of range; want %d to %d", n, lo, hi)
		}
	}
	intRange("http.max_body_bytes", h.MaxBodyBytes, 1024, 64<<20)
	intRange("http.max_header_bytes", h.MaxHeaderBytes, 1024, 1<<20)
	intRange("http.concurrency", h.Concurrency, 1, 1<<24)
}
