package introspect

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash/maphash"
	"net/url"
	"sync/atomic"
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

	// memo remembers Authorization headers that authenticated, so that a
	// caller sending the same header on every request (all of them do) is
	// recognised by one comparison instead of base64 and SHA-256 work: that
	// was about 2% of a cache hit's CPU under load. Direct-mapped by a
	// seeded hash; a slot holds one header.
	seed maphash.Seed
	memo [64]atomic.Pointer[authMemo]
}

type authMemo struct {
	header []byte
	client *Client
}

// maxMemoHeader bounds the headers remembered: real credentials are short.
const maxMemoHeader = 256

func newClients(cs []Client) *clients {
	c := &clients{byID: make(map[string]*Client, len(cs)), seed: maphash.MakeSeed()}
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
// well-formed headers it has seen before.
func (c *clients) authenticate(h []byte) *Client {
	if len(h) > maxMemoHeader {
		return c.check(h)
	}
	slot := &c.memo[maphash.Bytes(c.seed, h)%uint64(len(c.memo))]
	// Constant time, so that how long a wrong header takes says nothing of
	// how much of it matched a remembered one.
	if m := slot.Load(); m != nil && subtle.ConstantTimeCompare(m.header, h) == 1 {
		return m.client
	}
	cl := c.check(h)
	if cl != nil {
		slot.Store(&authMemo{header: bytes.Clone(h), client: cl})
	}
	return cl
}

// check is authenticate without the memo.
func (c *clients) check(h []byte) *Client {
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
