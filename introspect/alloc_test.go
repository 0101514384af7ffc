//go:build !race

package introspect

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestHitPathAllocs pins the cache-hit paths of /introspect and /authz at
// zero allocations per request. (The race detector allocates, hence the
// build tag.)
func TestHitPathAllocs(t *testing.T) {
	env := newHandlerEnv(t, nil)
	tok := testKeys().mint(t, "ES256", claims(time.Now(), nil))
	var ctx fasthttp.RequestCtx
	auth := []byte(basic(testClientID, testClientSecret))
	body := []byte(form(tok))
	path := []byte("/introspect")
	hitRequest(&ctx, path, auth, body)
	env.h.ServeHTTP(&ctx)
	env.chk.pos.Wait() // ristretto applies sets asynchronously
	if n := testing.AllocsPerRun(1000, func() {
		hitRequest(&ctx, path, auth, body)
		env.h.ServeHTTP(&ctx)
	}); n != 0 {
		t.Errorf("/introspect hit: %v allocs per request, want 0", n)
	}
	bearerAuth := []byte("Bearer " + tok)
	authzRequest(&ctx, bearerAuth)
	env.h.ServeHTTP(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("authz warm-up status %d", ctx.Response.StatusCode())
	}
	if n := testing.AllocsPerRun(1000, func() {
		authzRequest(&ctx, bearerAuth)
		env.h.ServeHTTP(&ctx)
	}); n != 0 {
		t.Errorf("/authz hit: %v allocs per request, want 0", n)
	}
}
