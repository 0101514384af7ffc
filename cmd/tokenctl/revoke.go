package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/introspectd/introspectd/revocation"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const revokeDoc = `
Publishes revocation events to NATS JetStream, where every introspectd node
(and any node that starts later) picks them up, and prints the stream
sequence of each event once JetStream has acknowledged it. Give exactly one
of -token (or -token-file), -jti, -sub, -client:

  -token T            a "token" event: that exact token (JWT or opaque) is
                      inactive; for a JWT that has a jti, also a "jti" event
                      with its iss, jti and exp. The token is read, not
                      verified; only its exp, iss and jti are used. exp is
                      the token's exp claim or -exp/-ttl, whichever is
                      later; now+24h when there is neither.
  -jti ID             a "jti" event: needs -exp or -ttl, optionally -iss.
  -sub S -iss ISS     a "sub" event: tokens of S issued before -not-before.
  -client C -iss ISS  a "client" event: likewise for a client_id.

The token is never printed; output names it by the first 12 hex digits of
its SHA-256.
`

const revokeExamples = `  tokenctl revoke -token-file stolen.jwt
  tokenctl revoke -nats nats://n1:4222,nats://n2:4222 -creds ops.creds -ca ca.pem -token -  < stolen.jwt
  tokenctl revoke -jti 5f2b8c -iss https://auth.example.com/ -exp 2026-01-01T00:00:00Z
  tokenctl revoke -sub alice -iss https://auth.example.com/
  tokenctl revoke -client gateway -iss https://auth.example.com/ -not-before 1767225600
`

// defaultOpaqueTTL is the lifetime assumed for a token whose exp cannot be
// read: the default revocation.max_token_lifetime.
const defaultOpaqueTTL = 24 * time.Hour

func runRevoke(e *env, args []string) error {
	f := newFlags("revoke", "[-nats URLS] [auth flags] (-token T | -token-file F | -jti ID | -sub S -iss ISS | -client C -iss ISS) [flags]", revokeDoc, revokeExamples)
	servers := f.String("nats", nats.DefaultURL, "NATS server `URLs`, comma-separated, e.g. -nats nats://n1:4222,nats://n2:4222")
	subject := f.String("subject", revocation.DefaultSubject, "`subject` prefix, as nats.subject in introspectd's config; events go to <subject>.<kind>, e.g. -subject introspect.revocations")
	creds := f.String("creds", "", "NATS credentials `FILE` (JWT and NKey seed), e.g. -creds ops.creds")
	nkey := f.String("nkey", "", "NKey seed `FILE`, e.g. -nkey ops.nk")
	user := f.String("user", "", "NATS `user` name, with -password, e.g. -user ops")
	password := f.String("password", "", "NATS `password` for -user (default: $TOKENCTL_NATS_PASSWORD)")
	ca := f.String("ca", "", "PEM `FILE` of the CA certificates to trust; turns on TLS, e.g. -ca ca.pem")
	token := f.String("token", "", "revoke this `token` (JWT or opaque); - reads it from stdin, e.g. -token eyJhbGciOi...")
	tokenFile := f.String("token-file", "", "revoke the token in `FILE` (surrounding white space removed); - is stdin, e.g. -token-file stolen.jwt")
	jti := f.String("jti", "", "revoke the token with this jti claim `ID`, e.g. -jti 5f2b8c")
	sub := f.String("sub", "", "revoke every token of this `subject` issued before -not-before, e.g. -sub alice")
	client := f.String("client", "", "revoke every token of this client `ID` issued before -not-before, e.g. -client gateway")
	iss := f.String("iss", "", "`issuer` of -jti (optional: any issuer when absent), -sub and -client (required), e.g. -iss https://auth.example.com/")
	exp := f.String("exp", "", "for -jti and -token: `time` the entry may be forgotten, the token's expiry, as unix seconds or RFC 3339, e.g. -exp 2026-01-01T00:00:00Z")
	ttl := f.Duration("ttl", 0, "for -jti and -token: instead of -exp, now plus this `duration`, e.g. -ttl 1h")
	notBefore := f.String("not-before", "now", "for -sub and -client: tokens issued (iat) before this `time` are inactive; unix seconds, RFC 3339 or now, e.g. -not-before 2026-01-01T00:00:00Z")
	timeout := f.Duration("timeout", 5*time.Second, "give up connecting and waiting for acknowledgements after this `duration`, e.g. -timeout 10s")
	if err := f.parse(e, args); err != nil {
		return err
	}
	set := f.set()
	now := e.now()

	// Which kind of revocation, and the flags that kind allows.
	common := []string{"nats", "subject", "creds", "nkey", "user", "password", "ca", "timeout"}
	var modes []string
	for _, m := range []string{"token", "token-file", "jti", "sub", "client"} {
		if set[m] {
			modes = append(modes, "-"+m)
		}
	}
	if set["token"] && set["token-file"] {
		modes = modes[1:] // readToken says what is wrong with that
	}
	switch {
	case len(modes) == 0:
		return usagef("say what to revoke: one of -token, -token-file, -jti, -sub, -client")
	case len(modes) > 1:
		return usagef("%s cannot be used together; give one per run", strings.Join(modes, " and "))
	}
	if err := validSubject(*subject); err != nil {
		return err
	}
	switch {
	case *timeout <= 0:
		return usagef("-timeout: %s is not positive", *timeout)
	case set["exp"] && set["ttl"]:
		return usagef("-exp and -ttl cannot be used together")
	case set["ttl"] && *ttl <= 0:
		return usagef("-ttl: %s is not positive", *ttl)
	}
	var expAt int64 // from -exp or -ttl; 0 when neither
	if set["exp"] {
		t, err := parseTime("exp", *exp, now, false)
		if err != nil {
			return err
		}
		expAt = t
	} else if set["ttl"] {
		expAt = now.Add(*ttl).Unix()
	}

	var (
		events []revocation.Event
		ref    string // names a token in the output
	)
	switch modes[0] {
	case "-token", "-token-file":
		if err := f.only(set, "with "+modes[0]+" (iss and jti come from the token)", append(common, "token", "token-file", "exp", "ttl")...); err != nil {
			return err
		}
		tok, err := readToken(e, set, *token, *tokenFile)
		if err != nil {
			return err
		}
		ref = tokenRef(tok)
		events = tokenEvents(tok, expAt, now)
	case "-jti":
		if err := f.only(set, "with -jti", append(common, "jti", "iss", "exp", "ttl")...); err != nil {
			return err
		}
		switch {
		case *jti == "":
			return usagef("-jti is empty")
		case expAt == 0:
			return usagef("-jti needs -exp (the token's expiry) or -ttl")
		}
		events = []revocation.Event{{Kind: revocation.KindJTI, Iss: *iss, Jti: *jti, Exp: expAt}}
	case "-sub", "-client":
		name := modes[0][1:]
		if err := f.only(set, "with "+modes[0], append(common, name, "iss", "not-before")...); err != nil {
			return err
		}
		if *iss == "" {
			return usagef("%s needs -iss, the issuer of the tokens to revoke", modes[0])
		}
		nbf, err := parseTime("not-before", *notBefore, now, true)
		if err != nil {
			return err
		}
		ev := revocation.Event{Kind: revocation.KindSub, Iss: *iss, Sub: *sub, NotBefore: nbf}
		if name == "client" {
			ev = revocation.Event{Kind: revocation.KindClient, Iss: *iss, ClientID: *client, NotBefore: nbf}
		}
		if ev.Sub == "" && ev.ClientID == "" {
			return usagef("%s is empty", modes[0])
		}
		events = []revocation.Event{ev}
	}

	msgs := make([][]byte, len(events))
	for i, ev := range events {
		b, err := ev.MarshalJSON()
		if err != nil {
			return usagef("%v", err)
		}
		msgs[i] = b
	}
	if ev := events[0]; ev.Exp != 0 && ev.Exp <= now.Unix() {
		fmt.Fprintf(e.stderr, "tokenctl revoke: warning: exp %d is in the past; nodes forget the entry once exp plus their leeway has passed\n", ev.Exp)
	}

	// Authentication.
	opts := []nats.Option{
		nats.Name("tokenctl"),
		nats.Timeout(*timeout),
		nats.MaxReconnects(0),
	}
	if !set["password"] {
		*password = e.getenv("TOKENCTL_NATS_PASSWORD")
	}
	var auth []string
	for _, a := range []string{"creds", "nkey", "user"} {
		if set[a] {
			auth = append(auth, "-"+a)
		}
	}
	switch {
	case len(auth) > 1:
		return usagef("%s cannot be used together; choose one way to authenticate", strings.Join(auth, " and "))
	case set["password"] && !set["user"]:
		return usagef("-password needs -user")
	case set["creds"]:
		opts = append(opts, nats.UserCredentials(*creds))
	case set["nkey"]:
		o, err := nats.NkeyOptionFromSeed(*nkey)
		if err != nil {
			return fmt.Errorf("-nkey: %w", err)
		}
		opts = append(opts, o)
	case set["user"]:
		if *password == "" {
			return usagef("-user needs a password: -password or $TOKENCTL_NATS_PASSWORD")
		}
		opts = append(opts, nats.UserInfo(*user, *password))
	}
	if *ca != "" {
		opts = append(opts, nats.RootCAs(*ca))
	}
	urls, err := natsURLs(*servers)
	if err != nil {
		return err
	}

	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", redactURLs(urls), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var done []string
	var stream string
	for i, ev := range events {
		subj := ev.Subject(*subject)
		ack, err := js.Publish(ctx, subj, msgs[i])
		if err != nil {
			if len(done) > 0 {
				fmt.Fprintf(e.stdout, "revoked in part: %s\n", strings.Join(done, ", "))
			}
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("publish %s event on %s: no JetStream stream acknowledged it; is a stream capturing %s.> (introspectd creates one at start)? %w", ev.Kind, subj, *subject, err)
			}
			return fmt.Errorf("publish %s event on %s: %w", ev.Kind, subj, err)
		}
		stream = ack.Stream
		done = append(done, fmt.Sprintf("%s event seq %d", ev.Kind, ack.Sequence))
	}
	extra := "stream " + stream
	if ref != "" {
		extra += ", token sha256 " + ref
	}
	fmt.Fprintf(e.stdout, "revoked: %s (%s)\n", strings.Join(done, ", "), extra)
	return nil
}

// tokenEvents returns the events that revoke tok: a token event, plus a jti
// event when tok is a JWT with a jti (the contract's pair, as POST /revoke
// publishes). expAt is -exp or -ttl (0: not given).
//
// The JWT is decoded without checking its signature: only exp, iss and jti
// are read, and a forged value can only make the revocation broader (jti)
// or keep it longer than needed. When the token's exp is earlier than
// expAt, expAt is used, so a revocation never ends before the operator
// asked.
func tokenEvents(tok string, expAt int64, now time.Time) []revocation.Event {
	claims, isJWT := jwtClaims(tok)
	exp := expAt
	if isJWT && claims.exp > exp {
		exp = claims.exp
	}
	if exp == 0 {
		exp = now.Add(defaultOpaqueTTL).Unix()
	}
	events := []revocation.Event{{Kind: revocation.KindToken, TokenSHA256: sha256.Sum256([]byte(tok)), Exp: exp}}
	if isJWT && claims.jti != "" {
		events = append(events, revocation.Event{Kind: revocation.KindJTI, Iss: claims.iss, Jti: claims.jti, Exp: exp})
	}
	return events
}

type unverifiedClaims struct {
	iss, jti string
	exp      int64 // 0 when absent or not a number
}

// jwtClaims reads iss, jti and exp from tok when it is a JWS in compact
// form whose payload is a JSON object. It does not verify anything.
func jwtClaims(tok string) (unverifiedClaims, bool) {
	var c unverifiedClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return c, false
	}
	_ = json.Unmarshal(raw["iss"], &c.iss)
	_ = json.Unmarshal(raw["jti"], &c.jti)
	// exp must be a JSON number, as RFC 7519 says; json.Number would also
	// take a string holding one.
	var exp json.Number
	d := json.NewDecoder(bytes.NewReader(raw["exp"]))
	d.UseNumber()
	if r := raw["exp"]; len(r) > 0 && r[0] >= '0' && r[0] <= '9' && d.Decode(&exp) == nil {
		if n, err := exp.Int64(); err == nil {
			c.exp = n
		} else if f, err := exp.Float64(); err == nil && f > 0 && f <= maxUnix {
			c.exp = int64(math.Ceil(f))
		}
	}
	if c.exp < 0 || c.exp > maxUnix {
		c.exp = 0
	}
	return c, true
}

// validSubject checks -subject: NATS tokens separated by dots, no
// wildcards, no white space.
func validSubject(s string) error {
	if s == "" {
		return usagef("-subject is empty")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return usagef("-subject: %q is not a NATS subject without wildcards, like introspect.revocations", s)
		}
	}
	return nil
}

// natsURLs splits and checks -nats.
func natsURLs(s string) ([]string, error) {
	var urls []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return nil, usagef("-nats: want URLs like nats://127.0.0.1:4222, comma-separated")
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, usagef("-nats: scheme %q is not nats, tls, ws or wss", p.Scheme)
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, usagef("-nats is empty")
	}
	return urls, nil
}

// redactURLs hides passwords in URLs for messages.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if p, err := url.Parse(u); err == nil {
			out[i] = p.Redacted()
		} else {
			out[i] = u
		}
	}
	return strings.Join(out, ",")
}
