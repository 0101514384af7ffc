package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Bounds on how often a JWKS is refreshed. An issuer's Cache-Control
// max-age is honoured inside them: too short would hammer the issuer, too
// long would miss a key withdrawal for a day.
const (
	minRefresh      = time.Minute
	maxRefresh      = 24 * time.Hour
	maxJWKSBytes    = 1 << 20
	maxFailureDelay = time.Minute
)

// keySource holds one issuer's current keys and keeps them fresh. Safe for
// concurrent use.
type keySource struct {
	issuer          string
	file            string // jwks_file, or
	uri             string // jwks_uri, or
	discovery       bool   // resolve jwks_uri from the issuer's metadata
	static          *keySet
	client          *http.Client
	refreshInterval time.Duration
	cooldown        time.Duration
	now             func() time.Time
	log             *slog.Logger
	stats           *issuerStats

	set  atomic.Pointer[keySet]
	gen  atomic.Uint64 // bumped whenever set changes
	ok   atomic.Bool   // the last fetch attempt succeeded
	uriR atomic.Pointer[string]

	// lastForced is when an unknown kid last caused a refetch (unix nanos).
	lastForced atomic.Int64
	// forced is the refetch an unknown kid caused while it runs, so that
	// other tokens waiting on new keys see its result.
	forced      atomic.Pointer[refetch]
	fetches     singleflight.Group
	fetchStarts atomic.Uint64 // fetches started so far

	loadedCh chan struct{} // closed once keys were first loaded
	loadOnce sync.Once
}

// issuerStats are counters per issuer, read by metrics at scrape time.
type issuerStats struct {
	Fetches, Failures, UnknownKidRefetches atomic.Uint64
	LastSuccess                            atomic.Int64 // unix seconds
}

func (s *keySource) remote() bool { return s.uri != "" || s.discovery }

func (s *keySource) markLoaded() { s.loadOnce.Do(func() { close(s.loadedCh) }) }

// loaded reports whether the source has held keys at least once.
func (s *keySource) loaded() bool { return s.set.Load() != nil }

// install swaps in a new key set, bumping the generation only when the keys
// differ, so a refresh returning the same keys invalidates nothing.
func (s *keySource) install(ks *keySet) {
	old := s.set.Load()
	same := old != nil && old.len() == ks.len()
	if same {
		for _, k := range ks.all {
			if !old.has(&k.fp) {
				same = false
				break
			}
		}
	}
	if same {
		return
	}
	s.set.Store(ks)
	s.gen.Add(1)
	s.log.Info("jwks installed", "keys", ks.len(), "generation", s.gen.Load())
}

// start loads file-based keys now and, for remote sources, runs the refresh
// loop until ctx ends.
func (s *keySource) start(ctx context.Context) error {
	s.loadedCh = make(chan struct{})
	switch {
	case s.static != nil:
		s.install(s.static)
		s.ok.Store(true)
		s.stats.LastSuccess.Store(s.now().Unix())
		s.markLoaded()
	case s.file != "":
		data, err := os.ReadFile(s.file)
		if err != nil {
			return fmt.Errorf("jwks_file: %w", err)
		}
		ks, err := parseJWKS(data, s.log)
		if err != nil {
			return fmt.Errorf("jwks_file %s: %w", s.file, err)
		}
		s.install(ks)
		s.ok.Store(true)
		s.stats.LastSuccess.Store(s.now().Unix())
		s.markLoaded()
	default:
		go s.refreshLoop(ctx)
	}
	return nil
}

func (s *keySource) refreshLoop(ctx context.Context) {
	failures := 0
	for {
		next, err := s.fetch(ctx)
		if err != nil {
			failures++
			next = time.Second << min(failures, 6)
			if next > maxFailureDelay {
				next = maxFailureDelay
			}
		} else {
			failures = 0
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// fetch downloads the JWKS, sharing one request among concurrent callers,
// and returns how long its answer may be kept.
func (s *keySource) fetch(ctx context.Context) (time.Duration, error) {
	r, err := s.fetchShared(ctx)
	return r.ttl, err
}

// fetched is the outcome of one fetch: when to refresh next, and the
// fetch's place in the order fetches started.
type fetched struct {
	ttl time.Duration
	seq uint64
}

// fetchShared fetches the keys, sharing a fetch already in flight.
func (s *keySource) fetchShared(ctx context.Context) (fetched, error) {
	v, err, _ := s.fetches.Do("", func() (any, error) {
		seq := s.fetchStarts.Add(1)
		s.stats.Fetches.Add(1)
		ttl, err := s.fetchOnce(ctx)
		if err != nil {
			s.stats.Failures.Add(1)
			s.ok.Store(false)
			s.log.Warn("jwks fetch failed", "err", err, "keeping_keys", s.set.Load().len())
			return fetched{seq: seq}, err
		}
		s.ok.Store(true)
		s.stats.LastSuccess.Store(s.now().Unix())
		s.markLoaded()
		return fetched{ttl: ttl, seq: seq}, nil
	})
	return v.(fetched), err
}

// fetchFresh is a fetch for a caller that needs keys the issuer may have
// published just before the call (a token's unknown kid): it does not
// settle for a fetch already in flight, which may have started before.
func (s *keySource) fetchFresh(ctx context.Context) error {
	before := s.fetchStarts.Load()
	for {
		r, err := s.fetchShared(ctx)
		if r.seq > before || ctx.Err() != nil {
			return err
		}
	}
}

func (s *keySource) fetchOnce(ctx context.Context) (time.Duration, error) {
	uri := s.uri
	if s.discovery {
		if p := s.uriR.Load(); p != nil {
			uri = *p
		} else {
			u, err := s.discover(ctx)
			if err != nil {
				return 0, err
			}
			s.uriR.Store(&u)
			uri = u
		}
	}
	body, hdr, err := s.get(ctx, uri)
	if err != nil {
		return 0, err
	}
	ks, err := parseJWKS(body, s.log)
	if err != nil {
		return 0, err
	}
	s.install(ks)
	return refreshAfter(hdr.Get("Cache-Control"), s.refreshInterval), nil
}

// discover reads RFC 8414 / OpenID Connect Discovery metadata and returns
// its jwks_uri, checking that the metadata speaks for the configured issuer.
func (s *keySource) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(s.issuer, "/")
	var lastErr error
	for _, wk := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		body, _, err := s.get(ctx, base+wk)
		if err != nil {
			lastErr = err
			continue
		}
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &md); err != nil {
			return "", fmt.Errorf("discovery %s: %w", wk, err)
		}
		if md.Issuer != s.issuer {
			return "", fmt.Errorf("discovery: metadata names issuer %q, want %q", md.Issuer, s.issuer)
		}
		if md.JWKSURI == "" {
			return "", errors.New("discovery: metadata has no jwks_uri")
		}
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("discovery: %w", lastErr)
}

func (s *keySource) get(ctx context.Context, uri string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", uri, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("GET %s: body over %d bytes", uri, maxJWKSBytes)
	}
	return body, resp.Header, nil
}

// refreshAfter picks the refresh delay from Cache-Control max-age, bounded
// to [minRefresh, maxRefresh]; without one it uses def.
func refreshAfter(cc string, def time.Duration) time.Duration {
	d := def
	for _, part := range strings.Split(cc, ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		if v, ok := strings.CutPrefix(part, "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				d = time.Duration(n) * time.Second
			}
		}
	}
	return max(minRefresh, min(d, maxRefresh))
}

// refetch is a fetch an unknown kid caused; err and ran are set before
// done is closed.
type refetch struct {
	done chan struct{}
	err  error
	ran  bool // false when another lookup's refetch came first
}

// keyStatus is what a key lookup concluded.
type keyStatus uint8

const (
	keyFound       keyStatus = iota
	keyUnknown               // the issuer's current keys do not include it: the token is inactive
	keyUndecidable           // the keys could not be fetched: no verdict possible now
)

// lookup returns the keys that may verify a token with kid and alg. When
// none fits, a remote source refetches — at most once per cooldown, so a
// flood of invented kids costs the issuer one request per cooldown, while a
// real rotation is picked up no later than one cooldown after it shows up.
func (s *keySource) lookup(ctx context.Context, kid, alg string) ([]*key, uint64, keyStatus) {
	gen := s.gen.Load()
	if c := s.set.Load().candidates(kid, alg); len(c) > 0 {
		return c, gen, keyFound
	}
	if !s.remote() {
		return nil, gen, keyUnknown
	}
	now := s.now().UnixNano()
	last := s.lastForced.Load()
	var mine *refetch // the refetch this lookup ran or waited for
	if now-last >= int64(s.cooldown) {
		// Whoever installs the refetch owns it; the others wait on it
		// below instead of calling the kid unknown meanwhile.
		r := &refetch{done: make(chan struct{})}
		if s.forced.CompareAndSwap(nil, r) {
			if s.lastForced.CompareAndSwap(last, now) {
				s.stats.UnknownKidRefetches.Add(1)
				r.err, r.ran = s.fetchFresh(ctx), true
			}
			s.forced.Store(nil)
			close(r.done)
			mine = r
		}
	}
	if p := s.forced.Load(); mine == nil && p != nil {
		select {
		case <-p.done:
			mine = p
		case <-ctx.Done():
		}
	}
	gen = s.gen.Load()
	if c := s.set.Load().candidates(kid, alg); len(c) > 0 {
		return c, gen, keyFound
	}
	// Judge by the refetch this kid caused when there was one: a fetch
	// that finished later but started earlier says nothing about the kid.
	if mine != nil && mine.ran {
		if mine.err != nil {
			return nil, gen, keyUndecidable
		}
		return nil, gen, keyUnknown
	}
	if !s.ok.Load() {
		return nil, gen, keyUndecidable
	}
	return nil, gen, keyUnknown
}
