package bench

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pacer waits for points in time more precisely than [time.Sleep].
//
// The Go runtime, when it has nothing to run, waits for its next timer in
// epoll_wait, whose timeout is in milliseconds: a 20 µs sleep on an idle
// process takes about 1 ms. An open loop pacing requests with time.Sleep
// would then send them in 1 ms bursts and charge the server for the
// queueing that the bursts cause. A timerfd read through the runtime's
// poller wakes on time to the microsecond instead. Not safe for concurrent use.
type pacer struct {
	f  *os.File // the timerfd, read through the runtime's poller
	fd int      // its descriptor (f.Fd would make reads blocking)
}

func newPacer() *pacer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &pacer{}
	}
	return &pacer{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd}
}

// earlyBy is how early sleepUntil may return rather than arm the timer for
// a few µs, which would cost about as much in syscalls. It does not spin:
// the load tool may have a single P, which the requests need.
const earlyBy = 5 * time.Microsecond

// sleepUntil returns at t or soon after, at most earlyBy before t, at once
// if t has passed, or when ctx is done.
func (p *pacer) sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= earlyBy {
		return
	}
	if d > 5*time.Millisecond || p.f == nil {
		// Long waits on the runtime's timer, which ctx can cut short; the
		// last millisecond on the timerfd.
		tm := time.NewTimer(d - time.Millisecond)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C:
		}
		if d = time.Until(t); d <= earlyBy || p.f == nil {
			return
		}
	}
	p.arm(d, 0)
	p.wait()
}

// arm sets the timer to fire after d, then every period (0: once).
func (p *pacer) arm(d, period time.Duration) bool {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d)), Interval: unix.NsecToTimespec(int64(period))}
	return unix.TimerfdSettime(p.fd, 0, &spec, nil) == nil
}

// wait blocks until the armed timer fires (at once if it has since the last wait).
func (p *pacer) wait() {
	var buf [8]byte
	_, _ = p.f.Read(buf[:])
}

// ticker makes the timer fire every period and returns a function that waits
// for the next tick, or nil when there is no timerfd.
func (p *pacer) ticker(period time.Duration) func() {
	if p.f == nil || !p.arm(period, period) {
		return nil
	}
	return p.wait
}

func (p *pacer) close() {
	if p.f != nil {
		_ = p.f.Close()
	}
}
