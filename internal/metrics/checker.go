package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/introspectd/introspectd/cache"
	"github.com/introspectd/introspectd/introspect"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	cacheHits     = desc("cache_hits_total", "Cache lookups that found an entry, by cache (verified: active tokens; failed: tokens whose signature failed).", "cache")
	cacheMisses   = desc("cache_misses_total", "Cache lookups that found nothing, by cache.", "cache")
	cacheAdded    = desc("cache_sets_total", "Entries admitted into the cache, by cache.", "cache")
	cacheRejected = desc("cache_sets_rejected_total", "Sets refused by the cache's admission policy, by cache.", "cache")
	cacheDropped  = desc("cache_sets_dropped_total", "Sets dropped because the cache's buffers were full, by cache.", "cache")
	cacheEvicted  = desc("cache_evictions_total", "Entries evicted or expired, by cache.", "cache")
	cacheCost     = desc("cache_cost_bytes", "Bytes held by cache entries, by cache.", "cache")
	cacheEntries  = desc("cache_entries", "Entries held, by cache.", "cache")
	verified      = desc("verifications_total", "Tokens whose signature verified, by algorithm.", "alg")
	failures      = desc("verification_failures_total", "Tokens found not active, by reason.", "reason")
	jwksFetches   = desc("jwks_fetches_total", "JWKS fetches, by issuer.", "issuer")
	jwksFailures  = desc("jwks_fetch_failures_total", "JWKS fetches that failed, by issuer.", "issuer")
	jwksKeys      = desc("jwks_keys", "Verification keys held, by issuer.", "issuer")
	jwksLast      = desc("jwks_last_success_timestamp_seconds", "Unix time of the last successful JWKS load, by issuer.", "issuer")
	jwksRefetch   = desc("jwks_unknown_kid_refetches_total", "JWKS refetches caused by an unknown kid, by issuer.", "issuer")
	jwksHealthy   = desc("jwks_healthy", "1 when the issuer's last JWKS fetch succeeded, by issuer.", "issuer")
)

// checkerCollector reads the checker's statistics at scrape time.
type checkerCollector struct{ c *introspect.Checker }

// RegisterChecker exports the cache, verification and JWKS statistics of c.
func (m *Metrics) RegisterChecker(c *introspect.Checker) { m.reg.MustRegister(checkerCollector{c}) }

func (cc checkerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cacheAdded, cacheRejected, cacheDropped,
		cacheEvicted, cacheCost, cacheEntries, verified, failures, jwksFetches, jwksFailures, jwksKeys,
		jwksLast, jwksRefetch, jwksHealthy} {
		ch <- d
	}
}

func (cc checkerCollector) Collect(ch chan<- prometheus.Metric) {
	pos, neg := cc.c.CacheStats()
	for _, c := range []struct {
		name string
		s    cache.Stats
	}{{"verified", pos}, {"failed", neg}} {
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(c.s.Hits), c.name)
		ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(c.s.Misses), c.name)
		ch <- prometheus.MustNewConstMetric(cacheAdded, prometheus.CounterValue, float64(c.s.SetsAdded), c.name)
		ch <- prometheus.MustNewConstMetric(cacheRejected, prometheus.CounterValue, float64(c.s.SetsRejected), c.name)
		ch <- prometheus.MustNewConstMetric(cacheDropped, prometheus.CounterValue, float64(c.s.SetsDropped), c.name)
		ch <- prometheus.MustNewConstMetric(cacheEvicted, prometheus.CounterValue, float64(c.s.Evictions), c.name)
		ch <- prometheus.MustNewConstMetric(cacheCost, prometheus.GaugeValue, float64(max(c.s.CostBytes, 0)), c.name)
		ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(max(c.s.Entries, 0)), c.name)
	}
	st := cc.c.Verifier().Stats()
	for alg, n := range st.VerifiedByAlg {
		ch <- prometheus.MustNewConstMetric(verified, prometheus.CounterValue, float64(n), alg)
	}
	for r := introspect.Reason(1); r < introspect.NumReasons; r++ {
		ch <- prometheus.MustNewConstMetric(failures, prometheus.CounterValue, float64(st.Failures[r]), r.String())
	}
	for _, is := range st.Issuers {
		ch <- prometheus.MustNewConstMetric(jwksFetches, prometheus.CounterValue, float64(is.Fetches), is.Issuer)
		ch <- prometheus.MustNewConstMetric(jwksFailures, prometheus.CounterValue, float64(is.Failures), is.Issuer)
		ch <- prometheus.MustNewConstMetric(jwksKeys, prometheus.GaugeValue, float64(is.Keys), is.Issuer)
		ch <- prometheus.MustNewConstMetric(jwksRefetch, prometheus.CounterValue, float64(is.UnknownKidRefetches), is.Issuer)
		var last float64
		if !is.LastSuccess.IsZero() {
			last = float64(is.LastSuccess.Unix())
		}
		ch <- prometheus.MustNewConstMetric(jwksLast, prometheus.GaugeValue, last, is.Issuer)
		healthy := 0.0
		if is.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(jwksHealthy, prometheus.GaugeValue, healthy, is.Issuer)
	}
}
