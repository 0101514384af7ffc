// Package deadline makes connection deadlines cheap to move, so a server can
// keep its read, write and idle timeouts without paying for them on every
// request.
package deadline

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// NewListener returns a listener whose connections apply read and write
// deadlines lazily.
//
// It exists because fasthttp moves the deadlines of a keep-alive connection
// three times per request (SetReadDeadline for the idle wait, again for the
// request, SetWriteDeadline for the response), and each call goes through the
// runtime poller's timer (pollSetDeadline, modtimer) plus time.Now. In a
// closed-loop load test the server answered 112k req/s with the timeouts set
// and 119-121k req/s with all three at zero: about 7% of a cache hit went to
// deadline bookkeeping. The timeouts stay (they are the slowloris
// protection); this makes them cheaper.
//
// A connection records each requested deadline and passes it to the
// underlying connection only when it is earlier than the one armed there, so
// tightening (including SetReadDeadline(time.Now()) to interrupt a blocked
// Read) is immediate and exact. A later or zero deadline is not passed on:
// the armed one fires early, Read or Write sees the timeout, finds the
// requested deadline not yet reached, arms it and carries on (a Write with
// the bytes not yet written). Under steady traffic the underlying deadline
// moves about once per timeout period instead of three times per request,
// and a deadline still fires no later than requested.
//
// Differences from a plain connection: a deadline later than the armed one is
// only recorded, so setting it on a closed connection returns no error (the
// next Read or Write does); a Read or Write whose deadline passes while
// another goroutine extends it may carry on under the new one, as if the
// extension came first; and the connection hides the concrete type of
// the one it wraps, so type assertions on it fail (fasthttp's writev of large
// responses and sendfile need a *net.TCPConn; SetKeepAlive is not
// reachable, but net.Listen already enables TCP keep-alive).
//
// ln must be the raw listener: with TLS, wrap it before [crypto/tls.NewListener],
// so the early wake-ups are absorbed below TLS and never reach it.
func NewListener(ln net.Listener) net.Listener {
	return &listener{ln}
}

type listener struct{ net.Listener }

var _ net.Listener = (*listener)(nil)

// Accept returns the underlying error unchanged: fasthttp decides from it
// whether to retry (net.Error Timeout) or stop (a closed listener).
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newConn(c), nil
}

// epoch is the origin of the deadlines' int64 encoding. Measuring from a
// monotonic reading keeps a stored deadline immune to wall-clock steps, as
// the runtime's own deadlines are.
var epoch = time.Now()

// encode returns t as nanoseconds since epoch: 0 for no deadline, at least 1
// (already past) otherwise. Far-future times saturate at math.MaxInt64.
func encode(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(int64(t.Sub(epoch)), 1)
}

func decode(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(d))
}

func now() int64 { return int64(time.Since(epoch)) }

// half is the deadline state of one direction; read and write are
// independent.
//
// Invariant once a set or rearm has returned: if want != 0 then armed != 0
// and armed <= want, so the underlying connection never times out later
// than requested.
type half struct {
	// want is the deadline the caller asked for (encoded, 0 = none).
	want atomic.Int64

	mu sync.Mutex // guards the underlying deadline and writes to armed
	// armed is the deadline set on the underlying connection (0 = none,
	// which counts as infinitely late). Read without mu on the fast path.
	armed atomic.Int64
}

// conn is safe for concurrent use as a net.Conn is: one reader, one writer
// and any number of deadline setters at a time.
type conn struct {
	net.Conn
	rd, wr half

	// rearmHook, when set (by tests only), runs in rearm between arming the
	// socket and recording it in armed: the window a racing tightening must
	// not fall into.
	rearmHook func()
}

var _ net.Conn = (*conn)(nil)

func newConn(c net.Conn) *conn { return &conn{Conn: c} }

func (c *conn) SetReadDeadline(t time.Time) error  { return c.set(&c.rd, false, t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.set(&c.wr, true, t) }

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.set(&c.rd, false, t); err != nil {
		return err
	}
	return c.set(&c.wr, true, t)
}

// set records t and arms it only if it tightens the armed deadline: the fast
// path is an atomic store and load.
func (c *conn) set(h *half, write bool, t time.Time) error {
	w := encode(t)
	h.want.Store(w)
	if w == 0 {
		return nil
	}
	// Pairs with the store-then-load in rearm: either this load sees rearm's
	// armed, or rearm's reload of want sees w (both are sequentially
	// consistent), so a tightening racing a re-arm is never lost.
	if a := h.armed.Load(); a != 0 && a <= w {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Another setter may have moved want since; arm what is wanted now, and
	// only if it still tightens. Arming an earlier deadline than wanted is
	// harmless (Read and Write absorb it), a later one never happens here.
	w = h.want.Load()
	if a := h.armed.Load(); w == 0 || (a != 0 && a <= w) {
		return nil
	}
	// Errors pass through unwrapped, as from a plain connection: callers
	// (crypto/tls, fasthttp) inspect them as net.Error.
	if err := c.setUnderlying(write, decode(w)); err != nil {
		return err
	}
	h.armed.Store(w)
	return nil
}

// rearm sets the underlying deadline to the wanted one, which may be later
// than the armed one: the only place armed moves later.
func (c *conn) rearm(h *half, write bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		w := h.want.Load()
		if err := c.setUnderlying(write, decode(w)); err != nil {
			return err
		}
		if c.rearmHook != nil {
			c.rearmHook()
		}
		h.armed.Store(w)
		// A setter that stored a tighter want before our armed store may
		// have compared it with the old armed and skipped arming; catch it.
		if h.want.Load() == w {
			return nil
		}
	}
}

func (c *conn) setUnderlying(write bool, t time.Time) error {
	if write {
		return c.Conn.SetWriteDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

// early reports whether err is a timeout of the armed deadline that came
// before the wanted one (or with none wanted), so it must not reach the
// caller.
func early(h *half, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	w := h.want.Load()
	return w == 0 || now() < w
}

func (c *conn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err == nil || !early(&c.rd, err) {
			return n, err
		}
		if err := c.rearm(&c.rd, false); err != nil {
			return n, err
		}
		// A net.TCPConn reports a timeout with n == 0; should another conn
		// return data with it, the data is the answer and the early timeout
		// is dropped.
		if n > 0 {
			return n, nil
		}
	}
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	for err != nil && early(&c.wr, err) {
		if err := c.rearm(&c.wr, true); err != nil {
			return n, err
		}
		if n == len(b) {
			return n, nil
		}
		// n counts what the kernel took before the timeout, so continuing
		// from b[n:] neither repeats nor skips a byte.
		var m int
		m, err = c.Conn.Write(b[n:])
		n += m
	}
	return n, err
}
