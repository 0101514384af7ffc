package config

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable that sets a key.
// INTROSPECTD_CONFIG is reserved for the main program (the file's path) and
// is not treated as a key.
const EnvPrefix = "INTROSPECTD_"

// EnvConfig is the environment variable the main program may read the
// config file's path from; [Load] ignores it.
const EnvConfig = EnvPrefix + "CONFIG"

// Defaults.
const (
	DefaultListen           = ":8080"
	DefaultLogFormat        = "json"
	DefaultLogLevel         = "info"
	DefaultLeeway           = 30 * time.Second
	DefaultRefreshInterval  = 15 * time.Minute
	DefaultRefetchCooldown  = 10 * time.Second
	DefaultFetchTimeout     = 5 * time.Second
	DefaultNATSSubject      = "introspect.revocations"
	DefaultNATSStream       = "INTROSPECT_REVOCATIONS"
	DefaultNATSReplicas     = 1
	DefaultNATSDataDir      = "./data/nats"
	DefaultEmbeddedListen   = "127.0.0.1:-1"
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultMaxStaleness     = 60 * time.Second
	DefaultCacheMaxBytes    = 256 << 20
	DefaultNegativeTTL      = 30 * time.Second
	DefaultReadTimeout      = 5 * time.Second
	DefaultWriteTimeout     = 5 * time.Second
	DefaultIdleTimeout      = 120 * time.Second
	DefaultMaxBodyBytes     = 16 << 10
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultConcurrency      = 256 << 10
	DefaultShutdownTimeout  = 15 * time.Second
)

// DefaultAlgorithms is the algorithm allow-list of an issuer that sets none.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// MinHMACSecretBytes is the shortest HMAC secret accepted (RFC 7518 §3.2:
// a key of the same size as the hash output, 256 bits for HS256).
const MinHMACSecretBytes = 32

// Duration is a [time.Duration] written as a string like "30s" or "1h30m"
// in YAML, environment variables and flags.
type Duration time.Duration

// D returns d as a [time.Duration].
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like [time.Duration.String].
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is the whole introspectd configuration. Build it with [Load], or
// start from [Default] (and [DefaultIssuer]) and call [Config.Validate].
// A Config is not modified after Load returns and may then be read
// concurrently.
type Config struct {
	Listen        string            `yaml:"listen" doc:"address (host:port) of the introspection, authz, health and metrics endpoints"`
	LogFormat     string            `yaml:"log_format" doc:"log format: json or text"`
	LogLevel      string            `yaml:"log_level" doc:"log level: debug, info, warn or error"`
	PprofListen   string            `yaml:"pprof_listen" doc:"loopback address (127.0.0.1:port, [::1]:port, localhost:port) for net/http/pprof; empty: off"`
	Issuers       []Issuer          `yaml:"issuers" doc:"trusted token issuers; a token is verified against the one its iss names"`
	Clients       []Client          `yaml:"clients" doc:"callers allowed to use /introspect and /revoke (RFC 7662 §2.1)"`
	NATS          NATS              `yaml:"nats" doc:"NATS connection carrying revocation events"`
	Revocation    Revocation        `yaml:"revocation" doc:"revocation list behaviour"`
	Cache         Cache             `yaml:"cache" doc:"verification result cache"`
	Routes        []Route           `yaml:"routes" doc:"/authz rules; the first whose path_prefix and method match wins; none: any active token passes"`
	ClaimsHeaders map[string]string `yaml:"claims_headers" doc:"/authz: token claim name -> response header name it is copied to"`
	TLS           TLS               `yaml:"tls" doc:"TLS for listen; neither file set: plain HTTP"`
	HTTP          HTTP              `yaml:"http" doc:"HTTP server limits and timeouts"`

	// Dev is set by -dev: no issuers or clients are required. It is not a
	// YAML key.
	Dev bool `yaml:"-" doc:"development mode (-dev)"`

	// origin maps a key path (issuers[0].leeway) to where its value came
	// from, so that Validate can name the file line, variable or flag.
	origin map[string]origin
}

// Issuer is one trusted token issuer. Exactly one key source is set:
// JWKSFile, JWKSURI, Discovery, or, for an HMAC-only issuer, an HMAC secret
// with only HS* algorithms.
type Issuer struct {
	Issuer          string   `yaml:"issuer" doc:"issuer identifier, compared exactly with the token's iss"`
	JWKSFile        string   `yaml:"jwks_file" path:"" doc:"JWKS file with the issuer's public keys"`
	JWKSURI         string   `yaml:"jwks_uri" doc:"http(s) URL of the issuer's JWKS, refreshed periodically"`
	Discovery       bool     `yaml:"discovery" doc:"find jwks_uri in <issuer>/.well-known/openid-configuration (then oauth-authorization-server)"`
	Audiences       []string `yaml:"audiences" doc:"if set, the token's aud must contain one of these"`
	Algorithms      []string `yaml:"algorithms" doc:"allowed JWS algorithms (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA HS256 HS384 HS512); none is never accepted"`
	Leeway          Duration `yaml:"leeway" doc:"clock skew allowed on exp, nbf and iat (0 to 5m)"`
	Typ             []string `yaml:"typ" doc:"if set, allowed values of the JOSE typ header (RFC 9068: at+jwt)"`
	HMACSecret      string   `yaml:"hmac_secret" secret:"" doc:"shared secret for HS* algorithms (at least 32 bytes)"`
	HMACSecretFile  string   `yaml:"hmac_secret_file" path:"" doc:"file holding the shared secret for HS* algorithms (one trailing newline is dropped)"`
	RefreshInterval Duration `yaml:"refresh_interval" doc:"JWKS refresh interval when the response has no Cache-Control max-age"`
	RefetchCooldown Duration `yaml:"refetch_cooldown" doc:"at most one JWKS refetch for an unknown kid per this interval"`
	FetchTimeout    Duration `yaml:"fetch_timeout" doc:"timeout of one JWKS or discovery fetch"`
}

// DefaultIssuer returns an Issuer with all defaults applied and no issuer
// or key source; Load starts every issuers[i] from it.
func DefaultIssuer() Issuer {
	return Issuer{
		Algorithms:      append([]string(nil), DefaultAlgorithms...),
		Leeway:          Duration(DefaultLeeway),
		RefreshInterval: Duration(DefaultRefreshInterval),
		RefetchCooldown: Duration(DefaultRefetchCooldown),
		FetchTimeout:    Duration(DefaultFetchTimeout),
	}
}

// HMACKey returns the issuer's HMAC secret: HMACSecret, or the content of
// HMACSecretFile without one trailing "\n" or "\r\n". It returns nil and no
// error when neither is set.
func (i *Issuer) HMACKey() ([]byte, error) {
	if i.HMACSecret != "" {
		return []byte(i.HMACSecret), nil
	}
	if i.HMACSecretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(i.HMACSecretFile)
	if err != nil {
		return nil, err
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2], nil
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}

// Client is a caller of /introspect and /revoke. Exactly one of Secret and
// SecretSHA256 is set.
type Client struct {
	ID           string   `yaml:"id" doc:"client id (HTTP Basic user name)"`
	Secret       string   `yaml:"secret" secret:"" doc:"client secret"`
	SecretSHA256 string   `yaml:"secret_sha256" secret:"" doc:"hex SHA-256 of the client secret, instead of secret"`
	Audiences    []string `yaml:"audiences" doc:"if set, this client only learns about tokens whose aud contains one of these (RFC 7662 §4)"`
}

// NATS configures the connection that carries revocation events.
type NATS struct {
	URL            string `yaml:"url" doc:"comma-separated nats:// or tls:// server URLs; empty: run an embedded NATS server with JetStream"`
	Subject        string `yaml:"subject" doc:"subject prefix of revocation events (<subject>.<kind>)"`
	Stream         string `yaml:"stream" doc:"JetStream stream that keeps revocation events"`
	Replicas       int    `yaml:"replicas" doc:"stream replicas (1 to 5)"`
	CredsFile      string `yaml:"creds_file" path:"" doc:"NATS credentials (JWT and seed) file"`
	NKeySeedFile   string `yaml:"nkey_seed_file" path:"" doc:"NATS NKey seed file"`
	User           string `yaml:"user" doc:"NATS user name"`
	Password       string `yaml:"password" secret:"" doc:"NATS password"`
	Token          string `yaml:"token" secret:"" doc:"NATS authentication token"`
	CAFile         string `yaml:"ca_file" path:"" doc:"CA certificates (PEM) to verify the NATS server"`
	CertFile       string `yaml:"cert_file" path:"" doc:"client certificate (PEM) for NATS TLS"`
	KeyFile        string `yaml:"key_file" path:"" doc:"client private key (PEM) for NATS TLS"`
	DataDir        string `yaml:"data_dir" path:"" doc:"JetStream store of the embedded NATS server (dev mode: a temporary folder)"`
	EmbeddedListen string `yaml:"embedded_listen" doc:"loopback address of the embedded NATS server; port -1: random"`
}

// Revocation configures how revocations are kept and how staleness is handled.
type Revocation struct {
	MaxTokenLifetime Duration `yaml:"max_token_lifetime" doc:"how long sub and client revocations and exp-less entries are kept"`
	MaxStaleness     Duration `yaml:"max_staleness" doc:"without NATS for longer than this, /readyz answers 503"`
	FailClosed       bool     `yaml:"fail_closed" doc:"past max_staleness, /introspect answers 503 instead of deciding"`
}

// Cache configures the verification result cache.
type Cache struct {
	MaxBytes    int64    `yaml:"max_bytes" doc:"cache size in bytes (at least 1 MiB)"`
	NegativeTTL Duration `yaml:"negative_ttl" doc:"how long a token that failed verification is remembered; 0: not at all"`
}

// Route is an /authz rule.
type Route struct {
	PathPrefix string   `yaml:"path_prefix" doc:"path prefix, matched on whole segments (/admin covers /admin/users, not /administrator)"`
	Methods    []string `yaml:"methods" doc:"HTTP methods; empty: any"`
	Scopes     []string `yaml:"scopes" doc:"scopes the token needs, all of them"`
}

// TLS configures HTTPS on listen. Both files or neither are set.
type TLS struct {
	CertFile string `yaml:"cert_file" path:"" doc:"certificate chain (PEM)"`
	KeyFile  string `yaml:"key_file" path:"" doc:"private key (PEM)"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	ReadTimeout     Duration `yaml:"read_timeout" doc:"time to read a whole request"`
	WriteTimeout    Duration `yaml:"write_timeout" doc:"time to write a response"`
	IdleTimeout     Duration `yaml:"idle_timeout" doc:"keep-alive idle time"`
	MaxBodyBytes    int      `yaml:"max_body_bytes" doc:"largest request body; larger: 413"`
	MaxHeaderBytes  int      `yaml:"max_header_bytes" doc:"largest request header"`
	Concurrency     int      `yaml:"concurrency" doc:"most concurrent connections"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout" doc:"time allowed for in-flight requests at shutdown"`
}

// Default returns a Config with all defaults applied and no issuers,
// clients, routes or claims headers.
func Default() *Config {
	return &Config{
		Listen:    DefaultListen,
		LogFormat: DefaultLogFormat,
		LogLevel:  DefaultLogLevel,
		NATS: NATS{
			Subject:        DefaultNATSSubject,
			Stream:         DefaultNATSStream,
			Replicas:       DefaultNATSReplicas,
			DataDir:        DefaultNATSDataDir,
			EmbeddedListen: DefaultEmbeddedListen,
		},
		Revocation: Revocation{
			MaxTokenLifetime: Duration(DefaultMaxTokenLifetime),
			MaxStaleness:     Duration(DefaultMaxStaleness),
		},
		Cache: Cache{
			MaxBytes:    DefaultCacheMaxBytes,
			NegativeTTL: Duration(DefaultNegativeTTL),
		},
		HTTP: HTTP{
			ReadTimeout:     Duration(DefaultReadTimeout),
			WriteTimeout:    Duration(DefaultWriteTimeout),
			IdleTimeout:     Duration(DefaultIdleTimeout),
			MaxBodyBytes:    DefaultMaxBodyBytes,
			MaxHeaderBytes:  DefaultMaxHeaderBytes,
			Concurrency:     DefaultConcurrency,
			ShutdownTimeout: Duration(DefaultShutdownTimeout),
		},
	}
}

// Redacted returns a deep copy of c with every secret (client secret and
// secret_sha256, issuer hmac_secret, NATS password and token, credentials
// in nats.url) replaced by "REDACTED". Empty secrets stay empty, so the copy shows which are set.
func (c *Config) Redacted() *Config {
	r := c.clone()
	red := func(s *string) {
		if *s != "" {
			*s = Redacted
		}
	}
	for i := range r.Issuers {
		red(&r.Issuers[i].HMACSecret)
	}
	for i := range r.Clients {
		red(&r.Clients[i].Secret)
		red(&r.Clients[i].SecretSHA256)
	}
	red(&r.NATS.Password)
	red(&r.NATS.Token)
	r.NATS.URL = redactURLs(r.NATS.URL)
	return r
}

// redactURLs hides credentials in comma-separated URLs: the password of
// user:password@, and a lone user@, which NATS takes as a token.
func redactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = Redacted
			}
			continue
		}
		if u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		} else {
			u.User = url.User(Redacted)
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// Redacted replaces secrets in [Config.Redacted].
const Redacted = "REDACTED"

func (c *Config) clone() *Config {
	r := *c
	r.Issuers = nil
	for _, is := range c.Issuers {
		is.Audiences = cloneStrings(is.Audiences)
		is.Algorithms = cloneStrings(is.Algorithms)
		is.Typ = cloneStrings(is.Typ)
		r.Issuers = append(r.Issuers, is)
	}
	r.Clients = nil
	for _, cl := range c.Clients {
		cl.Audiences = cloneStrings(cl.Audiences)
		r.Clients = append(r.Clients, cl)
	}
	r.Routes = nil
	for _, rt := range c.Routes {
		rt.Methods = cloneStrings(rt.Methods)
		rt.Scopes = cloneStrings(rt.Scopes)
		r.Routes = append(r.Routes, rt)
	}
	if c.ClaimsHeaders != nil {
		r.ClaimsHeaders = make(map[string]string, len(c.ClaimsHeaders))
		for k, v := range c.ClaimsHeaders {
			r.ClaimsHeaders[k] = v
		}
	}
	return &r
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// String returns c as YAML with secrets redacted (see [Config.Redacted]).
// Dev is not a YAML key and is shown as a comment when set.
func (c *Config) String() string {
	var b strings.Builder
	if c.Dev {
		b.WriteString("# dev mode\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c.Redacted()); err != nil {
		return fmt.Sprintf("# cannot encode config: %v\n", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Sprintf("# cannot encode config: %v\n", err)
	}
	return b.String()
}
