// Package bench measures introspectd and the alternatives it replaces.
//
// It holds the load generator behind cmd/introspect-bench (closed and open
// loop, on the fasthttp client, latencies in HdrHistogram), the token
// material it sends (keys, a JWKS file and an introspectd config, pre-minted
// JWTs, forged and malformed tokens), the baseline servers it is compared
// with in the same run (a fixed-body fasthttp server, the HTTP ceiling, and a
// net/http server that verifies every JWT with golang-jwt, what teams deploy
// instead), the raw signature-verify benchmarks of the standard library, and
// the Markdown report that bench/run.sh writes under bench/results/.
//
// Open-loop latency is measured from the time a request was scheduled to be
// sent, not from when it was sent, so that a stalled server is charged for the
// requests that queued behind the stall (no coordinated omission).
package bench
