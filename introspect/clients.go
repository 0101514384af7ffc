package introspect

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
)

// Client is a caller of /introspect and /revoke (RFC 7662 §2.1).
type Client struct {
	ID string
	// SecretSHA256 is the SHA-256 of the client's secret. Secrets are high
	// entropy, so a plain hash suffices and costs nanoseconds per request,
	// where a password KDF would cost milliseconds on every call.
	SecretSHA256 [32]byte
	// Audiences, when set, restrict what the client learns (RFC 7662 §4):
	// a token whose aud has none of them is answered inactive.
	Audiences []string
}

type clients struct {
	byID map[string]*Client
	all  []*Client
}

func newClients(cs []Client) *clients {
	c := &clients{byID: make(map[string]*Client, len(cs))}
	for i := range cs {
		cl := &cs[i]
		c.byID[cl.ID] = cl
		c.all = append(c.all, cl)
	}
	return c
}

// authenticate identifies the caller from an Authorization header: HTTP
// Basic with client id and secret, or "Bearer <client secret>". It returns
// nil when the caller is not a known client. It does not allocate for
// well-formed headers.
func (c *clients) authenticate(h []byte) *Client {
	scheme, cred, ok := bytes.Cut(h, []byte{' '})
	if !ok {
		return nil
	}
	cred = bytes.TrimLeft(cred, " ")
	switch {
	case asciiEqualFold(scheme, "Basic"):
		var buf [512]byte
		n := base64.StdEncoding.DecodedLen(len(cred))
		if n > len(buf) {
			return nil
		}
		n, err := base64.StdEncoding.Decode(buf[:], cred)
		if err != nil {
			return nil
		}
		id, secret, ok := bytes.Cut(buf[:n], []byte{':'})
		if !ok {
			return nil
		}
		if cl := c.match(id, secret); cl != nil {
			return cl
		}
		// RFC 6749 §2.3.1 form-encodes id and secret before Basic; most
		// clients send them raw, so the decoded form is only a fallback.
		if bytes.ContainsAny(id, "%+") || bytes.ContainsAny(secret, "%+") {
			did, err1 := url.QueryUnescape(string(id))
			dsec, err2 := url.QueryUnescape(string(secret))
			if err1 == nil && err2 == nil {
				return c.match([]byte(did), []byte(dsec))
			}
		}
		return nil
	case asciiEqualFold(scheme, "Bearer"):
		sum := sha256.Sum256(cred)
		var found *Client
		// Compare against every client, so the time taken does not say
		// which one (if any) matched.
		for _, cl := range c.all {
			if subtle.ConstantTimeCompare(sum[:], cl.SecretSHA256[:]) == 1 {
				found = cl
			}
		}
		return found
	}
	return nil
}

func (c *clients) match(id, secret []byte) *Client {
	cl := c.byID[string(id)]
	sum := sha256.Sum256(secret)
	if cl == nil {
		return nil
	}
	if subtle.ConstantTimeCompare(sum[:], cl.SecretSHA256[:]) != 1 {
		return nil
	}
	return cl
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}
