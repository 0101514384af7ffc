//go:build !linux

package bench

import (
	"context"
	"time"
)

// The spin engine needs epoll; elsewhere the open loop uses goroutines.
const spinSupported = false

func (r *run) spinPhase(context.Context, time.Duration, int64) []*phaseStats {
	panic("bench: spin engine on a system without epoll") // Config.Validate refuses it
}

func spinRuns(context.Context, []*run, time.Duration, time.Duration, int64) ([][]*phaseStats, []time.Duration) {
	panic("bench: spin engine on a system without epoll") // Config.Validate refuses it
}
