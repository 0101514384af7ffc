package bench

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// revokePoll is how often a revoked token is introspected until it turns inactive.
const revokePoll = 2 * time.Millisecond

// revokeStorm publishes revocations through POST /revoke at cfg.RevokeRate
// until ctx is done. Each revocation is of a token that was introspected (and
// so cached) just before; it then measures how long the token stays active
// after /revoke answered. The load of the other workers goes on meanwhile
// and must see no change.
func (r *run) revokeStorm(ctx context.Context) *RevocationResult {
	c := &r.cfg
	hc := &fasthttp.HostClient{
		Addr: r.addr, IsTLS: r.isTLS, MaxConns: 64, MaxConnWaitTimeout: c.Timeout,
		NoDefaultUserAgentHeader: true,
	}
	u, _ := url.Parse(c.URL)
	base := u.Scheme + "://" + u.Host + u.Path
	if base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	var (
		mu      sync.Mutex // guards revLat, visLat, errs
		revLat  = newHist()
		visLat  = newHist()
		errs    = map[string]int64{}
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 64)
		revoked int64
	)
	fail := func(kind string) {
		mu.Lock()
		errs[kind]++
		mu.Unlock()
	}
	// do posts form to path and returns the answer's status and activity.
	do := func(path string, body []byte) (code int, active bool, kind string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(base + path)
		req.Header.SetContentType("application/x-www-form-urlencoded")
		if r.basic != "" {
			req.Header.Set("Authorization", r.basic)
		}
		req.SetBodyRaw(body)
		if err := hc.DoTimeout(req, resp, c.Timeout); err != nil {
			return 0, false, errorKind(err)
		}
		code = resp.StatusCode()
		if path == "/introspect" && code == fasthttp.StatusOK {
			a, ok := parseActive(resp.Body())
			if !ok {
				return code, false, "bad_body"
			}
			active = a
		}
		return code, active, ""
	}
	one := func(tok string) {
		body := []byte("token=" + tok)
		if code, active, kind := do("/introspect", body); kind != "" || code != 200 || !active {
			fail("introspect_before_revoke_failed")
			return
		}
		t0 := time.Now()
		code, _, kind := do("/revoke", append(body, "&token_type_hint=access_token"...))
		t1 := time.Now()
		if kind != "" || code != fasthttp.StatusOK {
			if kind == "" {
				kind = "revoke_status_" + strconv.Itoa(code)
			}
			fail(kind)
			return
		}
		deadline := t1.Add(c.RevokeWait)
		for {
			code, active, kind := do("/introspect", body)
			now := time.Now()
			if kind == "" && code == fasthttp.StatusOK && !active {
				mu.Lock()
				record(revLat, t1.Sub(t0))
				record(visLat, now.Sub(t1))
				revoked++
				mu.Unlock()
				return
			}
			if now.After(deadline) {
				fail("still_active_after_revoke_wait")
				return
			}
			time.Sleep(revokePoll)
		}
	}

	interval := time.Duration(float64(time.Second) / c.RevokeRate)
	start := time.Now()
	for i := 0; i < len(r.revoke); i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		tok := r.revoke[i]
		wg.Go(func() {
			defer func() { <-sem }()
			one(tok)
		})
	}
	wg.Wait()
	return &RevocationResult{Revoked: revoked, Revoke: summarize(revLat), Visible: summarize(visLat), Errors: errs}
}
