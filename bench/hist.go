package bench

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: nanoseconds from 1 ns to 60 s at 3 significant digits
// (a value is recorded to within 0.1%).
const (
	histMin     = 1
	histMax     = int64(60 * time.Second)
	histSigFigs = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histSigFigs) }

// record adds d to h, clamping it into the histogram's range so that no
// sample is lost (a 90 s stall is recorded as 60 s, not dropped).
func record(h *hdr.Histogram, d time.Duration) {
	v := int64(d)
	if v < histMin {
		v = histMin
	} else if v > histMax {
		v = histMax
	}
	_ = h.RecordValue(v)
}

// Latency is a latency distribution in microseconds, as written to the JSON result.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
}

// summarize reads the percentiles off h. Percentiles are the highest value
// equivalent to the recorded ones (HdrHistogram's convention), so they never
// understate.
func summarize(h *hdr.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1e3,
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}
