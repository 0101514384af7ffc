//go:build !linux

package bench

import (
	"context"
	"time"
)

// pacer waits for points in time; outside Linux with [time.Sleep].
type pacer struct{}

// earlyBy is how early sleepUntil may return.
const earlyBy = 0

func newPacer() *pacer { return &pacer{} }

func (p *pacer) sleepUntil(ctx context.Context, t time.Time) {
	if d := time.Until(t); d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
		case <-tm.C:
		}
	}
}

func (p *pacer) ticker(time.Duration) func() { return nil }

func (p *pacer) close() {}
