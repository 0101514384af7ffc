package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Paired runs exist because of what the open loop's p99 measures on a shared
// machine. With both servers at 75-85% of their core, a p99 is set by how
// long the stalls of the machine (neighbouring VMs, the hypervisor) take to
// drain, and those come and go over seconds to minutes: alternating 10-second
// runs of two servers, one server's p99 ranged from 0.17 to 45 ms in one
// evening, and the ratio of a pair from 0.05x to 47x. Alternating the two
// servers every Slice inside one window (one schedule, one load process, the
// same requests) gives both the same weather, so their p99s differ by what
// the servers do.

// validatePair checks the fields [RunPair] needs; Validate calls it when
// c.Pair is set.
func (c *Config) validatePair() error {
	u, err := url.Parse(c.Pair.URL)
	switch {
	case err != nil || u.Host == "" || u.Scheme != "http":
		return fmt.Errorf("-pair-url %q: want http://host:port (the spin engine speaks plain HTTP)", c.Pair.URL)
	case c.Pair.URL == c.URL:
		return fmt.Errorf("-pair-url %q: the same server as -url", c.Pair.URL)
	case !(c.Rate > 0):
		return errors.New("-pair-url needs the open loop (-rate or -rate-of)")
	case c.Engine == EngineGoroutines || !spinSupported:
		return errors.New("-pair-url needs the spin engine (Linux)")
	case c.Scenario == "revoke-storm":
		return errors.New("-pair-url cannot run revoke-storm")
	case c.Slice <= 0 || c.Slice > c.Duration:
		return fmt.Errorf("-slice %v: want > 0 and at most -duration %v", c.Slice, c.Duration)
	case c.Pair.ServerPID < 0:
		return fmt.Errorf("-pair-server-pid %d: want a process id", c.Pair.ServerPID)
	}
	if c.Pair.ServerPID > 0 {
		if _, err := readProc(c.Pair.ServerPID); err != nil {
			return fmt.Errorf("-pair-server-pid %d: %w", c.Pair.ServerPID, err)
		}
	}
	return nil
}

// RunPair measures two servers, c.URL and c.Pair.URL, in one open-loop
// window of twice c.Duration: a single schedule at c.Rate whose send times
// go to c.URL's connections for a slice of c.Slice, then to c.Pair.URL's
// for the next, and so on, so that each server has the load for c.Duration
// in all. Both get the same requests (the same tokens, credentials and
// headers; only Host differs), are warmed one after the other, and each
// result covers its own slices: throughput and server CPU use the time that
// server had the load. c.MetricsURL applies to c.URL (c.Pair.MetricsURL
// to the other), and c.MaxRequests counts the requests to both.
//
// The server at c.URL warms first and has the first slice: run.sh swaps
// the two servers' places from one pair to the next, because in the 18
// reports before it did, the control's first server (of two identical
// ceilings paired alike) had the higher pooled p99 in 15 and the lower in
// 2, by a median of 1.14×: a bias against whichever server came first.
func RunPair(ctx context.Context, c Config) (a, b *Result, err error) {
	if c.Pair == nil {
		return nil, nil, errors.New("bench: RunPair needs Config.Pair")
	}
	ra, err := newRun(ctx, c, nil)
	if err != nil {
		return nil, nil, err
	}
	cb := ra.cfg
	cb.URL, cb.Name, cb.ServerPID, cb.MetricsURL, cb.Pair = c.Pair.URL, c.Pair.Name, c.Pair.ServerPID, c.Pair.MetricsURL, nil
	rb, err := newRun(ctx, cb, ra)
	if err != nil {
		return nil, nil, err
	}
	ra.peer = rb
	return measurePair(ctx, ra, rb)
}

func measurePair(parent context.Context, ra, rb *run) (a, b *Result, err error) {
	c := &ra.cfg
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	ra.stop, rb.stop = stop, stop

	a, b = ra.newResult(), rb.newResult()
	a.PairedWith, b.PairedWith = rb.cfg.Name, ra.cfg.Name
	a.SliceSeconds, b.SliceSeconds = c.Slice.Seconds(), c.Slice.Seconds()
	ra.warm(ctx, a)
	rb.warm(ctx, b)
	wa, wb := ra.openWindow(a), rb.openWindow(b)
	start := time.Now()
	var (
		st     [][]*phaseStats
		active []time.Duration
	)
	if ctx.Err() == nil {
		ra.withProgress(ctx, "run", func() {
			st, active = spinRuns(ctx, []*run{ra, rb}, 2*c.Duration, c.Slice, c.MaxRequests)
		})
	} else {
		st, active = make([][]*phaseStats, 2), make([]time.Duration, 2)
	}
	wall := time.Since(start)
	ra.closeWindow(ctx, parent, wa, a, mergeStats(st[0]), active[0], wall)
	rb.closeWindow(ctx, parent, wb, b, mergeStats(st[1]), active[1], wall)
	return a, b, nil
}
