package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/introspectd/introspectd/revocation"
)

var (
	revApplied    = desc("revocation_events_applied_total", "Revocation events applied (duplicates included), by kind.", "kind")
	revMalformed  = desc("revocation_events_malformed_total", "Revocation events skipped as malformed, by the kind their subject names.", "kind")
	revEntries    = desc("revocation_denylist_entries", "Live deny-list entries, by kind.", "kind")
	revAppliedSeq = desc("revocation_applied_sequence", "JetStream sequence of the last applied revocation event.")
	revLastSeq    = desc("revocation_stream_last_sequence", "Last sequence in the revocation stream, as last seen.")
	revReplaying  = desc("revocation_replaying", "1 while the node replays the revocation stream (start, reconnect or resync).")
	revResyncs    = desc("revocation_resyncs_total", "Replays from the first available event after a gap in the stream.")
	natsConnected = desc("nats_connected", "1 when the NATS connection is up.")
	revContactAge = desc("revocation_last_contact_age_seconds", "Seconds since the last event or heartbeat from JetStream; -1 when never.")
)

// RevocationSource is what the revocation metrics read.
type RevocationSource interface {
	Stats() revocation.Stats
}

type revocationCollector struct {
	src  RevocationSource
	deny *revocation.DenyList
	now  func() time.Time
}

// RegisterRevocation exports the NATS consumer's and deny-list's state.
func (m *Metrics) RegisterRevocation(src RevocationSource, deny *revocation.DenyList) {
	m.reg.MustRegister(revocationCollector{src: src, deny: deny, now: time.Now})
}

func (rc revocationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{revApplied, revMalformed, revEntries, revAppliedSeq, revLastSeq,
		revReplaying, revResyncs, natsConnected, revContactAge} {
		ch <- d
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (rc revocationCollector) Collect(ch chan<- prometheus.Metric) {
	st := rc.src.Stats()
	for _, k := range []revocation.Kind{revocation.KindJTI, revocation.KindToken, revocation.KindSub, revocation.KindClient} {
		ch <- prometheus.MustNewConstMetric(revApplied, prometheus.CounterValue, float64(st.Applied[k]), string(k))
		ch <- prometheus.MustNewConstMetric(revMalformed, prometheus.CounterValue, float64(st.Malformed[k]), string(k))
	}
	ch <- prometheus.MustNewConstMetric(revMalformed, prometheus.CounterValue, float64(st.Malformed[revocation.KindUnknown]), string(revocation.KindUnknown))
	for k, n := range rc.deny.Len() {
		ch <- prometheus.MustNewConstMetric(revEntries, prometheus.GaugeValue, float64(n), string(k))
	}
	ch <- prometheus.MustNewConstMetric(revAppliedSeq, prometheus.GaugeValue, float64(st.AppliedSeq))
	ch <- prometheus.MustNewConstMetric(revLastSeq, prometheus.GaugeValue, float64(st.StreamLastSeq))
	ch <- prometheus.MustNewConstMetric(revReplaying, prometheus.GaugeValue, boolf(st.Replaying))
	ch <- prometheus.MustNewConstMetric(revResyncs, prometheus.CounterValue, float64(st.Resyncs))
	ch <- prometheus.MustNewConstMetric(natsConnected, prometheus.GaugeValue, boolf(st.Connected))
	age := -1.0
	if !st.LastContact.IsZero() {
		age = rc.now().Sub(st.LastContact).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(revContactAge, prometheus.GaugeValue, age)
}
