package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The spin engine runs the open loop on one goroutine that never sleeps: it
// polls all connections with epoll_wait(0) and sends each request when its
// time comes.
//
// The goroutine engine (one worker per connection, woken by the runtime's
// poller) sleeps between requests at a fixed rate, and on this kind of
// machine (a VM, two vCPUs) every wake-up costs a few microseconds of
// interrupts and context switches: at half the ceiling's rate it used its
// whole core, and its own queueing, not the server's, set the p99. A
// process that never sleeps is never woken: the server's answer just lands
// in a socket the loop reads on its next turn. The core shows 100% busy by
// design; what the loop spends on requests is in the result (Client.Busy).
//
// Requests are built by fasthttp (hits once per warmed token) and answers
// parsed by fasthttp; only the framing (where an answer ends: headers, then
// Content-Length bytes) is read here, because the loop must know when an
// answer is whole without blocking on it.

const spinSupported = true

// spinConn is one keep-alive connection of the spin engine.
type spinConn struct {
	fd       int
	w        *worker // its request and response objects, RNG
	busy     bool
	class    int
	intended time.Time
	sent     time.Time
	out      []byte // request bytes not yet written
	in       []byte // answer bytes read so far
	rd       bytes.Reader
	br       *bufio.Reader
}

// spinLoop is the state of one open-loop phase on the spin engine.
type spinLoop struct {
	r      *run
	ep     int   // the epoll set, shared by the loops of a pair
	tag    int32 // the loop's index << tagBits, in its events' data
	sa     unix.Sockaddr
	family int
	conns  []*spinConn
	idle   []int // indexes of idle connections
	busy   int   // requests sent and not yet answered
	st     *phaseStats
	req    bytes.Buffer // serialised miss and garbage requests
	bw     *bufio.Writer
}

// spinPhase is phase for the open loop on the spin engine.
func (r *run) spinPhase(ctx context.Context, d time.Duration, limit int64) []*phaseStats {
	st, _ := spinRuns(ctx, []*run{r}, d, d, limit)
	return st[0]
}

// tagBits is where an epoll event's data holds the index of its loop (above)
// and of its connection (below), so that the loops of a pair share one epoll
// set and the engine still makes one epoll_wait per turn.
const tagBits = 20 // MaxConnections < 1<<tagBits

// spinRuns runs the open loop for d on the spin engine: one schedule at
// runs[0]'s rate, whose send times go to runs[k%len(runs)] during the k-th
// slice of d. It returns each run's stats and how long it had the schedule.
func spinRuns(ctx context.Context, runs []*run, d, slice time.Duration, limit int64) ([][]*phaseStats, []time.Duration) {
	stats := make([][]*phaseStats, len(runs))
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		err = fmt.Errorf("epoll: %w", err)
	}
	var loops []*spinLoop
	for k, r := range runs {
		st := &phaseStats{service: newHist(), lag: newHist()}
		stats[k] = []*phaseStats{st}
		if err != nil {
			st.fail(classHit, errorKind(err))
			r.failed.Add(1)
			continue
		}
		var l *spinLoop
		if l, err = r.newSpinLoop(st, ep, int32(k)<<tagBits); err != nil {
			st.fail(classHit, errorKind(err))
			r.failed.Add(1)
			continue
		}
		defer l.close()
		loops = append(loops, l)
	}
	if ep >= 0 {
		defer func() { _ = unix.Close(ep) }()
	}
	if err != nil {
		return stats, make([]time.Duration, len(runs))
	}
	return stats, drive(ctx, ep, loops, d, slice, limit)
}

func (r *run) newSpinLoop(st *phaseStats, ep int, tag int32) (*spinLoop, error) {
	ta, err := net.ResolveTCPAddr("tcp", r.addr)
	if err != nil {
		return nil, err
	}
	l := &spinLoop{r: r, st: st, ep: ep, tag: tag, family: unix.AF_INET}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		l.sa = sa
	} else {
		sa := &unix.SockaddrInet6{Port: ta.Port}
		copy(sa.Addr[:], ta.IP.To16())
		l.sa, l.family = sa, unix.AF_INET6
	}
	l.bw = bufio.NewWriter(&l.req)
	if r.hitReq == nil && len(r.hitBody) > 0 {
		// Hits are most requests: build each warmed token's request once.
		w := r.workers[0]
		r.hitReq = make([][]byte, len(r.hitBody))
		for i, b := range r.hitBody {
			w.setToken(b)
			r.hitReq[i] = bytes.Clone(l.serialize(w.req))
		}
	}
	for i, w := range r.workers {
		c := &spinConn{fd: -1, w: w, br: bufio.NewReaderSize(nil, 4096)}
		l.conns = append(l.conns, c)
		if err := l.connect(i); err != nil {
			l.close()
			return nil, err
		}
		l.idle = append(l.idle, i)
	}
	return l, nil
}

// connect opens connection i, waiting at most the request timeout.
func (l *spinLoop) connect(i int) error {
	c := l.conns[i]
	fd, err := unix.Socket(l.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net does
	err = unix.Connect(fd, l.sa)
	if errors.Is(err, unix.EINPROGRESS) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		var n int
		n, err = unix.Poll(pfd, int(l.r.cfg.Timeout.Milliseconds()))
		switch {
		case err != nil:
		case n == 0:
			err = fmt.Errorf("connect %s: %w", l.r.addr, unix.ETIMEDOUT)
		default:
			var soerr int
			if soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soerr != 0 {
				err = &net.OpError{Op: "dial", Net: "tcp", Err: unix.Errno(soerr)}
			}
		}
	}
	if err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: l.tag | int32(i)} // Fd holds our indexes
		err = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		_ = unix.Close(fd)
		return err
	}
	c.fd, c.in, c.out = fd, c.in[:0], nil
	return nil
}

func (l *spinLoop) close() {
	for _, c := range l.conns {
		if c.fd >= 0 {
			_ = unix.Close(c.fd)
			c.fd = -1
		}
	}
}

// serialize returns req as fasthttp writes it. The bytes are valid until
// the next call.
func (l *spinLoop) serialize(req *fasthttp.Request) []byte {
	l.req.Reset()
	l.bw.Reset(&l.req)
	_ = req.Write(l.bw) // to memory: cannot fail
	_ = l.bw.Flush()
	return l.req.Bytes()
}

// gosched is how often the loop lets the rest of the program (the progress
// line, timers) run; it never needs to wait for them.
const gosched = time.Millisecond

// drive runs the open loop over loops for d, sending the k-th slice's
// requests on loops[k%len(loops)]; it returns how long each loop had the
// schedule.
func drive(ctx context.Context, ep int, loops []*spinLoop, d, slice time.Duration, limit int64) []time.Duration {
	interval := time.Duration(float64(time.Second) / loops[0].r.cfg.Rate)
	start := time.Now()
	end := start.Add(d)
	next := start
	var issued, sentBefore int64
	sending, stopped := true, end
	stopSending := func(at time.Time) { sending, stopped = false, at }
	// until is where the schedule ended, or now if it is cut short.
	until := func(now time.Time) time.Time {
		if sending {
			return now
		}
		return stopped
	}
	target := func(t time.Time) *spinLoop { return loops[int(t.Sub(start)/slice)%len(loops)] }
	n := 0
	for _, l := range loops {
		n += len(l.conns)
	}
	events := make([]unix.EpollEvent, n)
	lastYield := start
	sender := loops[0]
	for {
		now := time.Now()
		switch {
		case !sending:
		case !next.Before(end):
			stopSending(end)
		case ctx.Err() != nil || limit > 0 && issued >= limit:
			stopSending(now)
		}
		for sending && !now.Before(next) {
			l := target(next)
			if len(l.idle) == 0 {
				break // its requests wait for a connection, and are charged the wait
			}
			i := l.idle[len(l.idle)-1]
			l.idle = l.idle[:len(l.idle)-1]
			if !l.send(i, next) {
				l.idle = append(l.idle, i)
				stopSending(now) // pool exhausted: run.stop was called
				break
			}
			sender = l
			issued++
			next = start.Add(time.Duration(issued) * interval)
			switch {
			case !next.Before(end):
				stopSending(end)
			case limit > 0 && issued >= limit:
				stopSending(now)
			}
		}
		if issued > sentBefore {
			sender.st.busy += time.Since(now)
			sentBefore = issued
		}
		idle := true
		for _, l := range loops {
			if l.busy == 0 && len(l.idle) == 0 {
				// Every connection of a loop is gone and could not be
				// remade (finish counted each): its server cannot be
				// measured any more, and the schedule, which advances
				// only by sending, would never pass its slice.
				return activeTimes(len(loops), start, until(now), slice)
			}
			idle = idle && l.busy == 0
		}
		if !sending && idle {
			return activeTimes(len(loops), start, until(now), slice)
		}
		n, err := unix.EpollWait(ep, events, 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			for _, l := range loops {
				l.failAll(now, "client_error")
			}
			return activeTimes(len(loops), start, until(now), slice)
		}
		if n > 0 {
			now = time.Now()
			for _, ev := range events[:n] {
				loops[ev.Fd>>tagBits].ready(int(ev.Fd&(1<<tagBits-1)), ev.Events, now)
			}
			// Answers of both loops may be in one turn; the time goes to
			// the loop whose slice it is.
			target(now).st.busy += time.Since(now)
		}
		if now.Sub(lastYield) >= gosched {
			for _, l := range loops {
				l.expire(now)
			}
			runtime.Gosched()
			lastYield = now
		}
	}
}

// activeTimes splits [start, stop) into the slices drive gave each of n loops.
func activeTimes(n int, start, stop time.Time, slice time.Duration) []time.Duration {
	t := make([]time.Duration, n)
	for k := 0; ; k++ {
		s := start.Add(time.Duration(k) * slice)
		if !s.Before(stop) {
			return t
		}
		t[k%n] += min(slice, stop.Sub(s))
	}
}

// send prepares and writes the next request on connection i, just taken
// off the idle list; false when there is no request left to send.
func (l *spinLoop) send(i int, intended time.Time) bool {
	c := l.conns[i]
	w := c.w
	class := w.chooseClass()
	var out []byte
	if class == classHit {
		out = l.r.hitReq[w.hitIndex()]
	} else {
		if !w.prepareOther(class) {
			return false
		}
		out = l.serialize(w.req)
	}
	// The clock is read per send, not per turn of the loop: a turn that
	// sends several requests must not date the later ones early.
	now := time.Now()
	c.busy, c.class, c.intended, c.sent = true, class, intended, now
	l.busy++
	c.in = c.in[:0]
	n, err := unix.Write(c.fd, out)
	if errors.Is(err, unix.EAGAIN) {
		n, err = 0, nil
	}
	if err != nil {
		l.finish(i, now, errorKind(err), true)
		return true
	}
	if n < len(out) {
		// Rare (a full socket buffer): keep the rest and wait for room.
		c.out = append(c.out[:0], out[n:]...)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: l.tag | int32(i)}
		_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
	return true
}

// ready handles an epoll event on connection i.
func (l *spinLoop) ready(i int, events uint32, now time.Time) {
	c := l.conns[i]
	if events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		switch {
		case errors.Is(err, unix.EAGAIN):
		case err != nil:
			l.finish(i, now, errorKind(err), true)
			return
		default:
			c.out = c.out[n:]
			if len(c.out) == 0 {
				ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: l.tag | int32(i)}
				_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &ev)
			}
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	for {
		if len(c.in) == cap(c.in) {
			c.in = append(c.in, make([]byte, max(4096, cap(c.in)))...)[:len(c.in)]
		}
		n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case err != nil:
			l.finish(i, now, errorKind(err), true)
			return
		case n == 0:
			l.finish(i, now, "conn_closed", true)
			return
		}
		c.in = c.in[:len(c.in)+n]
		if !c.busy {
			l.finish(i, now, "unsolicited_response", true)
			return
		}
		size, err := responseSize(c.in)
		switch {
		case err != nil:
			l.finish(i, now, "bad_response", true)
			return
		case size > 0 && len(c.in) > size:
			l.finish(i, now, "unsolicited_response", true)
			return
		case size > 0:
			c.rd.Reset(c.in)
			c.br.Reset(&c.rd)
			resp := c.w.resp
			resp.Reset()
			kind := "bad_response"
			if resp.Read(c.br) == nil {
				kind = l.r.check(c.class, resp)
			}
			l.finish(i, now, kind, false)
			return
		}
	}
}

// finish records connection i's request as answered (kind "" for a good
// answer) and makes the connection idle again, reconnecting when told to.
func (l *spinLoop) finish(i int, now time.Time, kind string, reconnect bool) {
	c := l.conns[i]
	if c.busy {
		cs := &l.st.class[c.class]
		if cs.lat == nil {
			cs.lat = newHist()
		}
		record(cs.lat, now.Sub(c.intended))
		record(l.st.service, now.Sub(c.sent))
		record(l.st.lag, c.sent.Sub(c.intended))
		l.r.done.Add(1)
		if kind != "" {
			l.st.fail(c.class, kind)
			l.r.failed.Add(1)
		}
		c.busy = false
		l.busy--
		l.idle = append(l.idle, i)
	}
	if reconnect {
		_ = unix.Close(c.fd) // also leaves the epoll set
		c.fd = -1
		if err := l.connect(i); err != nil {
			// The connection is gone for the rest of the phase: take it
			// out of the idle list; its absence shows as send lag.
			l.idle = deleteValue(l.idle, i)
			l.st.fail(classHit, errorKind(err))
			l.r.failed.Add(1)
		}
	}
}

// expire fails requests that have waited longer than the timeout.
func (l *spinLoop) expire(now time.Time) {
	for i, c := range l.conns {
		if c.busy && now.Sub(c.sent) > l.r.cfg.Timeout {
			l.finish(i, now, "timeout", true)
		}
	}
}

// failAll fails every outstanding request.
func (l *spinLoop) failAll(now time.Time, kind string) {
	for i, c := range l.conns {
		if c.busy {
			l.finish(i, now, kind, false)
		}
	}
}

func deleteValue(s []int, v int) []int {
	for j, x := range s {
		if x == v {
			return append(s[:j], s[j+1:]...)
		}
	}
	return s
}
