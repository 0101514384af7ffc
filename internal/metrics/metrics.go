// Package metrics exposes the service's Prometheus metrics.
//
// Request counters and latency histograms are recorded as requests happen,
// through pre-resolved children so that the hit path neither allocates nor
// looks up labels. Everything else (cache, verification, JWKS, revocation)
// is read from the components' own counters when Prometheus scrapes, so the
// components do not depend on this package.
package metrics

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/introspectd/introspectd/introspect"
)

// Namespace prefixes every metric name.
const Namespace = "introspectd"

// LatencyBuckets are classic histogram buckets from 10 µs to 1 s: a cache
// hit takes microseconds, a verification tens of them, a JWKS fetch
// milliseconds. Classic buckets keep dashboards and alerts working on
// Prometheus servers without native histograms.
var LatencyBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// Metrics records requests and collects component statistics. It
// implements introspect.Observer.
type Metrics struct {
	reg       *prometheus.Registry
	requests  [introspect.NumEndpoints][introspect.NumOutcomes]prometheus.Counter
	durations [introspect.NumEndpoints]prometheus.Observer
}

var _ introspect.Observer = (*Metrics)(nil)

// New registers the request metrics, build info and the Go runtime and
// process collectors on reg.
func New(reg *prometheus.Registry, version string) *Metrics {
	m := &Metrics{reg: reg}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Requests answered, by endpoint and outcome.",
	}, []string{"endpoint", "outcome"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help:    "Time from request parsed to answer written, by endpoint.",
		Buckets: LatencyBuckets,
	}, []string{"endpoint"})
	for e := introspect.Endpoint(0); e < introspect.NumEndpoints; e++ {
		m.durations[e] = dur.WithLabelValues(e.String())
		for o := introspect.Outcome(0); o < introspect.NumOutcomes; o++ {
			m.requests[e][o] = reqs.WithLabelValues(e.String(), o.String())
		}
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "goversion", "revision"})
	build.WithLabelValues(version, runtime.Version(), revision()).Set(1)
	reg.MustRegister(reqs, dur, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Observe records one answer.
func (m *Metrics) Observe(e introspect.Endpoint, o introspect.Outcome, d time.Duration) {
	m.requests[e][o].Inc()
	m.durations[e].Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
}

// Register adds a collector (for the components' statistics).
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Ready exports readiness as a gauge, for the "node not ready" alert.
func (m *Metrics) Ready(ready func() (bool, string)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "ready",
		Help: "1 when /readyz answers 200, else 0.",
	}, func() float64 {
		if ok, _ := ready(); ok {
			return 1
		}
		return 0
	}))
}
