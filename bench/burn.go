package bench

import (
	"sync/atomic"
	"time"
)

// burner spends about a fixed amount of CPU per call. It makes the
// CPU-matched ceiling: the fixed-body server made to cost, per request,
// what introspectd costs, so that a report can tell how much of a p99
// ratio at a fixed rate comes from CPU per request alone (see run.sh). It
// counts iterations of a loop calibrated at start-up rather than watching a
// clock: time the thread spends descheduled must not count as work done,
// and reading the clock is itself tens of nanoseconds here.
type burner struct{ iters int }

// burnSink keeps the compiler from discarding the loop.
var burnSink atomic.Uint64

// newBurner returns a burner that spends about d per call (none for d <= 0).
func newBurner(d time.Duration) burner {
	if d <= 0 {
		return burner{}
	}
	const probe = 1 << 16 // tens of microseconds
	best := time.Duration(1<<63 - 1)
	for range 9 {
		t := time.Now()
		spin(probe)
		// The fastest timing: the others include time spent descheduled.
		best = min(best, max(time.Since(t), 1))
	}
	return burner{iters: max(1, int(float64(probe)*float64(d)/float64(best)))}
}

func (b burner) burn() {
	if b.iters > 0 {
		spin(b.iters)
	}
}

// spin runs n steps of a dependent multiply-add chain: registers only, so
// its cost does not depend on what the caches hold.
func spin(n int) {
	x := uint64(n)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	burnSink.Store(x)
}
