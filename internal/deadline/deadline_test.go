package deadline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/introspectd/introspectd/internal/testcert"
)

// These tests use real TCP over 127.0.0.1 and the wall clock: deadlines live
// in the runtime poller, which testing/synctest cannot fake. The machine is
// shared and noisy, so a deadline must fire no earlier than asked (checked
// exactly) and no later than slack after it.
const slack = 2 * time.Second

// far are timeouts that never fire during a test: the connection's own
// deadlines are armed but the caller's are the effective ones.
var far = Timeouts{Read: time.Minute, Write: time.Minute, Idle: time.Minute}

// none in a list of deadline offsets stands for the zero time.Time.
const none = time.Duration(math.MinInt64)

// counter counts the deadline calls that reach the connection under the
// wrapper, so a test can tell a lazy wrapper from an eager one.
type counter struct {
	net.Conn
	rd, wr atomic.Int64
}

func (c *counter) SetReadDeadline(t time.Time) error {
	c.rd.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *counter) SetWriteDeadline(t time.Time) error {
	c.wr.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// tcpPair returns both ends of a fresh TCP connection on 127.0.0.1, closed
// at cleanup. Socket buffers are kept small (the kernel would otherwise
// autotune the receive buffer up to tens of MB), so a peer that does not
// read blocks a writer after a few hundred KB.
func tcpPair(tb testing.TB) (server, client net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept() // nil on error; the dial below then fails too
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() {
		server.Close()
		client.Close()
	})
	for _, c := range []net.Conn{server, client} {
		tc := c.(*net.TCPConn)
		if err := tc.SetReadBuffer(64 << 10); err != nil {
			tb.Fatal(err)
		}
		if err := tc.SetWriteBuffer(64 << 10); err != nil {
			tb.Fatal(err)
		}
	}
	return server, client
}

// lazyPair is tcpPair with the server end wrapped with t, over a counter. Both ends
// are closed after 10s, so a Read or Write that hangs fails its test instead
// of stalling the suite.
func lazyPair(tb testing.TB, t Timeouts) (*conn, *counter, net.Conn) {
	tb.Helper()
	server, client := tcpPair(tb)
	watchdog := time.AfterFunc(10*time.Second, func() {
		server.Close()
		client.Close()
	})
	tb.Cleanup(func() { watchdog.Stop() })
	cnt := &counter{Conn: server}
	return newConn(cnt, t), cnt, client
}

// apply sets start+d for each offset in turn (the zero time for none).
func apply(t *testing.T, set func(time.Time) error, start time.Time, offsets []time.Duration) {
	t.Helper()
	for _, d := range offsets {
		var dl time.Time
		if d != none {
			dl = start.Add(d)
		}
		if err := set(dl); err != nil {
			t.Fatalf("set deadline %v: %v", d, err)
		}
	}
}

func checkTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got error %v, want a timeout", err)
	}
}

// checkWhen fails unless start+want <= at <= start+want+slack.
func checkWhen(t *testing.T, what string, start, at time.Time, want time.Duration) {
	t.Helper()
	if got := at.Sub(start); got < want || got > want+slack {
		t.Fatalf("%s after %v, want in [%v, %v]", what, got, want, want+slack)
	}
}

func TestReadDeadline(t *testing.T) {
	tests := []struct {
		name      string
		deadlines []time.Duration // offsets from the start, set in order
		arms      int64           // deadline calls that reach the socket
		peerWrite time.Duration   // when the peer sends a byte; 0 = never
		wantErr   bool
		at        time.Duration // when Read returns, not earlier
	}{
		{name: "past", deadlines: []time.Duration{-time.Second}, arms: 1, wantErr: true},
		{name: "now", deadlines: []time.Duration{0}, arms: 1, wantErr: true},
		{name: "tightened to past", deadlines: []time.Duration{10 * time.Second, -time.Second}, arms: 2, wantErr: true},
		{name: "extended", deadlines: []time.Duration{50 * time.Millisecond, 300 * time.Millisecond}, arms: 1, wantErr: true, at: 300 * time.Millisecond},
		{name: "extended after expiry", deadlines: []time.Duration{-time.Second, 300 * time.Millisecond}, arms: 1, wantErr: true, at: 300 * time.Millisecond},
		{name: "tightened", deadlines: []time.Duration{10 * time.Second, 50 * time.Millisecond}, arms: 2, wantErr: true, at: 50 * time.Millisecond},
		{name: "zero clears", deadlines: []time.Duration{50 * time.Millisecond, none}, arms: 1, peerWrite: 300 * time.Millisecond, at: 300 * time.Millisecond},
		{name: "data in time", deadlines: []time.Duration{50 * time.Millisecond, time.Minute}, arms: 1, peerWrite: 300 * time.Millisecond, at: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, cnt, peer := lazyPair(t, Timeouts{})
			start := time.Now()
			apply(t, c.SetReadDeadline, start, tt.deadlines)
			if got := cnt.rd.Load(); got != tt.arms {
				t.Errorf("got %d SetReadDeadline calls on the socket, want %d", got, tt.arms)
			}
			wrote := make(chan error, 1)
			if tt.peerWrite > 0 {
				go func() {
					time.Sleep(time.Until(start.Add(tt.peerWrite)))
					_, err := peer.Write([]byte("x"))
					wrote <- err
				}()
			} else {
				wrote <- nil
			}
			var buf [8]byte
			n, err := c.Read(buf[:])
			at := time.Now()
			if werr := <-wrote; werr != nil {
				t.Fatalf("peer write: %v", werr)
			}
			if tt.wantErr {
				checkTimeout(t, err)
				if n != 0 {
					t.Errorf("got n = %d with the timeout, want 0", n)
				}
			} else if err != nil || string(buf[:n]) != "x" {
				t.Fatalf("got %q, %v; want \"x\", nil", buf[:n], err)
			}
			checkWhen(t, "Read returned", start, at, tt.at)
		})
	}
}

func TestWriteDeadline(t *testing.T) {
	const size = 4 << 20 // far more than the socket buffers hold
	tests := []struct {
		name      string
		deadlines []time.Duration
		arms      int64
		peerDrain time.Duration // when the peer starts reading; 0 = never
		wantErr   bool
		at        time.Duration
	}{
		{name: "past", deadlines: []time.Duration{-time.Second}, arms: 1, wantErr: true},
		{name: "deadline", deadlines: []time.Duration{200 * time.Millisecond}, arms: 1, wantErr: true, at: 200 * time.Millisecond},
		{name: "extended", deadlines: []time.Duration{50 * time.Millisecond, 300 * time.Millisecond}, arms: 1, wantErr: true, at: 300 * time.Millisecond},
		{name: "tightened", deadlines: []time.Duration{10 * time.Second, 100 * time.Millisecond}, arms: 2, wantErr: true, at: 100 * time.Millisecond},
		{name: "zero clears", deadlines: []time.Duration{50 * time.Millisecond, none}, arms: 1, peerDrain: 300 * time.Millisecond, at: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, cnt, peer := lazyPair(t, Timeouts{})
			start := time.Now()
			apply(t, c.SetWriteDeadline, start, tt.deadlines)
			if got := cnt.wr.Load(); got != tt.arms {
				t.Errorf("got %d SetWriteDeadline calls on the socket, want %d", got, tt.arms)
			}
			drained := make(chan error, 1)
			if tt.peerDrain > 0 {
				go func() {
					time.Sleep(time.Until(start.Add(tt.peerDrain)))
					_, err := io.CopyN(io.Discard, peer, size)
					drained <- err
				}()
			}
			n, err := c.Write(make([]byte, size))
			at := time.Now()
			if tt.wantErr {
				checkTimeout(t, err)
				if n >= size {
					t.Errorf("got n = %d with the timeout, want < %d", n, size)
				}
			} else {
				if err != nil || n != size {
					t.Fatalf("got %d, %v; want %d, nil", n, err, size)
				}
				if derr := <-drained; derr != nil {
					t.Fatalf("peer read: %v", derr)
				}
			}
			checkWhen(t, "Write returned", start, at, tt.at)
		})
	}
}

// TestEarlyTimeoutIntegrity makes the armed deadline fire in the middle of a
// transfer that the requested deadline allows, and checks that every byte
// arrives once and in order.
func TestEarlyTimeoutIntegrity(t *testing.T) {
	const size = 8 << 20
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	// slowly copies src to dst in small chunks, so the transfer outlasts the
	// first, short deadline.
	slowly := func(dst io.Writer, src io.Reader) error {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	tests := []struct {
		name string
		// transfer runs in the test goroutine: it moves data over c (the
		// wrapped end) and peer, and returns what arrived.
		transfer func(c *conn, peer net.Conn) ([]byte, error)
		arms     func(cnt *counter) int64
	}{
		{
			name: "write",
			transfer: func(c *conn, peer net.Conn) ([]byte, error) {
				got := make(chan []byte, 1)
				go func() {
					var b bytes.Buffer
					_ = slowly(&b, io.LimitReader(peer, size))
					got <- b.Bytes()
				}()
				n, err := c.Write(data)
				if err != nil {
					return nil, fmt.Errorf("write after %d bytes: %w", n, err)
				}
				return <-got, nil
			},
			arms: func(cnt *counter) int64 { return cnt.wr.Load() },
		},
		{
			name: "read",
			transfer: func(c *conn, peer net.Conn) ([]byte, error) {
				sent := make(chan error, 1)
				go func() { sent <- slowly(peer, bytes.NewReader(data)) }()
				got := make([]byte, size)
				n, err := io.ReadFull(c, got)
				if serr := <-sent; serr != nil {
					return nil, fmt.Errorf("peer write: %w", serr)
				}
				if err != nil {
					return nil, fmt.Errorf("read after %d bytes: %w", n, err)
				}
				return got, nil
			},
			// Less the arming of the connection's own read deadline when it
			// was wrapped.
			arms: func(cnt *counter) int64 { return cnt.rd.Load() - 1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The connection's own timeouts are on but far: the caller's
			// deadlines below are the effective ones.
			c, cnt, peer := lazyPair(t, far)
			start := time.Now()
			// Armed at +20ms, extended lazily to a minute: the socket times
			// out early, mid-transfer.
			dl := []time.Duration{20 * time.Millisecond, time.Minute}
			apply(t, c.SetReadDeadline, start, dl)
			apply(t, c.SetWriteDeadline, start, dl)
			got, err := tt.transfer(c, peer)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes that differ from the %d sent", len(got), len(data))
			}
			// 1 arm at +20ms, then at least 1 re-arm after it fired.
			if got := tt.arms(cnt); got < 2 {
				t.Errorf("got %d deadline calls on the socket, want >= 2 (the early timeout was never hit)", got)
			}
		})
	}
}

// TestKick interrupts a blocked Read from another goroutine, as a server
// shutting down does.
func TestKick(t *testing.T) {
	tests := []struct {
		name      string
		deadlines []time.Duration
	}{
		{name: "no deadline"},
		{name: "far", deadlines: []time.Duration{10 * time.Second}},
		// The socket fires at 1ms while the Read waits and is re-armed.
		{name: "extended", deadlines: []time.Duration{time.Millisecond, 10 * time.Second}},
		{name: "cleared", deadlines: []time.Duration{time.Millisecond, none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := lazyPair(t, far)
			apply(t, c.SetReadDeadline, time.Now(), tt.deadlines)
			done := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 1))
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Read returned %v before the kick", err)
			default:
			}
			kick := time.Now()
			if err := c.SetReadDeadline(kick); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				checkTimeout(t, err)
			case <-time.After(slack):
				c.Close() // unblock the Read so the goroutine ends
				<-done
				t.Fatalf("Read still blocked %v after the kick", slack)
			}
		})
	}
}

// TestKickRace kicks a Read at random moments around the socket's early
// timeout, when the Read is re-arming the later deadline, so a tightening
// racing a re-arm would be lost and the Read would hang.
func TestKickRace(t *testing.T) {
	c, _, _ := lazyPair(t, far)
	buf := make([]byte, 1)
	for i := range 100 {
		now := time.Now()
		apply(t, c.SetReadDeadline, now, []time.Duration{time.Millisecond, time.Minute})
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(buf)
			done <- err
		}()
		time.Sleep(rand.N(3 * time.Millisecond))
		if err := c.SetReadDeadline(time.Now()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			checkTimeout(t, err)
		case <-time.After(slack):
			c.Close()
			<-done
			t.Fatalf("iteration %d: Read still blocked %v after the kick", i, slack)
		}
	}
}

// TestKickDuringRearm kicks a Read at the worst moment: its socket timed out
// early and it is re-arming the later deadline it read before the kick. The
// kick sees the old, already passed armed deadline and leaves arming to the
// Read, which must notice the new deadline before it blocks again.
func TestKickDuringRearm(t *testing.T) {
	c, cnt, _ := lazyPair(t, Timeouts{})
	var kicked atomic.Bool
	c.rearmHook = func() {
		if kicked.CompareAndSwap(false, true) {
			if err := c.SetReadDeadline(time.Now()); err != nil {
				t.Error(err)
			}
		}
	}
	apply(t, c.SetReadDeadline, time.Now(), []time.Duration{time.Millisecond, time.Minute})
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	checkTimeout(t, err)
	if !kicked.Load() {
		t.Fatal("the socket never timed out early; nothing tested")
	}
	if d := time.Since(start); d > slack {
		t.Errorf("Read returned %v after the kick, want within %v", d, slack)
	}
	// Armed at 1ms, re-armed to a minute, re-armed again to the kick.
	if got := cnt.rd.Load(); got < 3 {
		t.Errorf("got %d SetReadDeadline calls on the socket, want >= 3", got)
	}
}

// TestSteadyTraffic replays fasthttp's per-request deadline calls over a
// live connection: the socket sees each deadline once, not once per request.
func TestSteadyTraffic(t *testing.T) {
	const (
		requests = 1000
		// Long enough that nothing fires during the test.
		idle  = 2 * time.Minute
		read  = time.Minute
		write = time.Minute
	)
	c, cnt, peer := lazyPair(t, Timeouts{})
	b := make([]byte, 1)
	for i := range requests {
		if _, err := peer.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(b); err != nil || b[0] != byte(i) {
			t.Fatalf("request %d: got %d, %v", i, b[0], err)
		}
		if err := c.SetReadDeadline(time.Now().Add(read)); err != nil {
			t.Fatal(err)
		}
		if err := c.SetWriteDeadline(time.Now().Add(write)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, b); err != nil {
			t.Fatal(err)
		}
	}
	// Read: the first idle deadline, then the first (tighter) read one.
	if got, want := cnt.rd.Load(), int64(2); got != want {
		t.Errorf("got %d SetReadDeadline calls on the socket for %d requests, want %d", got, requests, want)
	}
	if got, want := cnt.wr.Load(), int64(1); got != want {
		t.Errorf("got %d SetWriteDeadline calls on the socket for %d requests, want %d", got, requests, want)
	}
}

func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, Timeouts{})
	defer ln.Close()
	if got, want := ln.Addr().String(), raw.Addr().String(); got != want {
		t.Errorf("got Addr %s, want %s", got, want)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*conn); !ok {
		t.Fatalf("got %T from Accept, want *conn", c)
	}
	if got, want := c.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("got LocalAddr %s, want %s", got, want)
	}
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("got RemoteAddr %s, want %s", got, want)
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The armed deadline is in the future: a closed conn reports its own
	// error, not a timeout, and a Read does not spin.
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got Read error %v after Close, want net.ErrClosed", err)
	}
	if err := c.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got SetReadDeadline error %v after Close, want net.ErrClosed", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got Accept error %v after Close, want net.ErrClosed", err)
	}
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// smallSendBuffers gives accepted TCP connections a 64 KiB send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		// Should this fail, the buffers stay large: the test is slower,
		// not wrong.
		_ = tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// checkAround fails unless at is within [want-early, want+slack] of start.
// The connection's own timeouts are measured on a clock a tick behind, or
// more when its goroutine runs late: with both cores busy under -race a
// deadline fired 120 ms early. A quarter of the timeout allows for that and
// still tells one timeout from another (read 600 ms, idle 1200 ms).
func checkAround(t *testing.T, what string, start, at time.Time, want time.Duration) {
	t.Helper()
	early := max(tick, want/4)
	if got := at.Sub(start); got < want-early || got > want+slack {
		t.Fatalf("%s after %v, want in [%v, %v]", what, got, want-early, want+slack)
	}
}

// drip writes b to c one byte every 50ms until done, c fails or b ends, and
// reports when it wrote the first byte.
func drip(c net.Conn, b []byte, done <-chan struct{}) <-chan time.Time {
	first := make(chan time.Time, 1)
	go func() {
		defer close(first)
		for i := range b {
			if i == 0 {
				// Before the write: the server cannot see the byte earlier.
				first <- time.Now()
			}
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return first
}

// TestOwnTimeouts drives a wrapped connection through the request/response
// alternation and checks which of its own deadlines applies when.
func TestOwnTimeouts(t *testing.T) {
	const (
		// Four ticks and more, so that checkAround's early bound (a tick,
		// or a quarter) stays well above zero for "read - tick".
		read  = 4 * tick
		idle  = 8 * tick
		write = 4 * tick
	)
	// respond plays one request and its response, leaving c idle.
	respond := func(t *testing.T, c *conn, peer net.Conn) {
		t.Helper()
		b := make([]byte, 1)
		if _, err := peer.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, b); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// run returns when the timed period started and the error that
		// ended it.
		run  func(t *testing.T, c *conn, peer net.Conn) (time.Time, error)
		want time.Duration
	}{
		{
			name: "silent new connection",
			run: func(t *testing.T, c *conn, _ net.Conn) (time.Time, error) {
				// The deadline was set in lazyPair, before this start.
				start := time.Now()
				_, err := c.Read(make([]byte, 1))
				return start, err
			},
			// Just under read: lazyPair wrapped the connection before start.
			want: read - tick,
		},
		{
			name: "idle",
			run: func(t *testing.T, c *conn, peer net.Conn) (time.Time, error) {
				start := time.Now()
				respond(t, c, peer)
				_, err := c.Read(make([]byte, 1))
				return start, err
			},
			want: idle,
		},
		{
			name: "slow drip after a response",
			run: func(t *testing.T, c *conn, peer net.Conn) (time.Time, error) {
				respond(t, c, peer)
				done := make(chan struct{})
				defer close(done)
				first := drip(peer, make([]byte, 100), done)
				b := make([]byte, 64)
				got := 0
				for {
					n, err := c.Read(b)
					got += n
					if err != nil {
						if got < 2 {
							t.Errorf("read %d bytes before the timeout, want >= 2 (reads did not complete)", got)
						}
						return <-first, err
					}
				}
			},
			want: read,
		},
		{
			// Below TLS a write may be the handshake or a KeyUpdate, not a
			// response: the request's deadline stays. A byte sent after it
			// but before the idle deadline must not be read.
			name: "write below TLS",
			run: func(t *testing.T, c *conn, peer net.Conn) (time.Time, error) {
				c.underTLS = true
				start := time.Now()
				if _, err := c.Write([]byte("a")); err != nil {
					t.Fatal(err)
				}
				timer := time.AfterFunc((read+idle)/2, func() { _, _ = peer.Write([]byte("q")) })
				defer timer.Stop()
				_, err := c.Read(make([]byte, 1))
				return start, err
			},
			want: read - tick, // from lazyPair's wrapping, just before start
		},
		{
			name: "caller's earlier deadline",
			run: func(t *testing.T, c *conn, _ net.Conn) (time.Time, error) {
				start := time.Now()
				if err := c.SetReadDeadline(start.Add(50 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				_, err := c.Read(make([]byte, 1))
				return start, err
			},
			want: 50*time.Millisecond + tick, // exact, not on the coarse clock
		},
		{
			name: "caller's later deadline",
			run: func(t *testing.T, c *conn, peer net.Conn) (time.Time, error) {
				start := time.Now()
				respond(t, c, peer)
				if err := c.SetReadDeadline(start.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				_, err := c.Read(make([]byte, 1))
				return start, err
			},
			want: idle,
		},
		{
			name: "write",
			run: func(t *testing.T, c *conn, _ net.Conn) (time.Time, error) {
				start := time.Now()
				_, err := c.Write(make([]byte, 4<<20)) // the peer never reads
				return start, err
			},
			want: write,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, peer := lazyPair(t, Timeouts{Read: read, Write: write, Idle: idle})
			start, err := tt.run(t, c, peer)
			at := time.Now()
			checkTimeout(t, err)
			checkAround(t, "timed out", start, at, tt.want)
		})
	}
}

// bigBody is what the /big handler answers: far more than the socket buffers
// of both ends hold.
var bigBody = make([]byte, 16<<20)

// TestFasthttp runs a fasthttp.Server with no timeouts of its own over the
// wrapped listener, plain and under TLS, and checks that the wrapper's
// timeouts do fasthttp's job: keep-alive works, and slow, idle, silent and
// non-reading clients are cut off in time.
func TestFasthttp(t *testing.T) {
	const (
		// Long enough that a TLS handshake under -race on a busy 2-core
		// machine fits in the first read window (200ms did not, in CI).
		readTimeout  = 600 * time.Millisecond
		writeTimeout = 600 * time.Millisecond
		idleTimeout  = 1200 * time.Millisecond
	)
	cert, pool := testcert.New(t, "deadline test")
	for _, withTLS := range []bool{false, true} {
		name := "tcp"
		if withTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// serve starts a server for one subtest and returns a dialer and
			// the times the server closed connections. read overrides the
			// read timeout when not zero.
			serve := func(t *testing.T, read time.Duration) (func(t *testing.T) net.Conn, <-chan time.Time) {
				raw, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				to := Timeouts{Read: readTimeout, Write: writeTimeout, Idle: idleTimeout}
				if read != 0 {
					to.Read = read
				}
				// Small send buffers too: a non-reading client then stalls
				// the server after a few hundred KB, not after the several
				// MB that autotuning allows, which under -race on a busy
				// machine took longer to encrypt and queue than the write
				// test's slack (a full make test saw over 2.6 s).
				raw = smallSendBuffers{raw}
				var ln net.Listener
				if withTLS {
					ln = NewTLSListener(raw, to, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
				} else {
					ln = NewListener(raw, to)
				}
				closed := make(chan time.Time, 16)
				srv := &fasthttp.Server{
					Handler: func(ctx *fasthttp.RequestCtx) {
						if string(ctx.Path()) == "/big" {
							ctx.SetBody(bigBody)
							return
						}
						if ctx.IsTLS() != withTLS {
							ctx.Error("IsTLS wrong", fasthttp.StatusInternalServerError)
							return
						}
						ctx.SetBodyString("ok")
					},
					ConnState: func(_ net.Conn, s fasthttp.ConnState) {
						if s == fasthttp.StateClosed {
							select {
							case closed <- time.Now():
							default:
							}
						}
					},
					CloseOnShutdown: true,
					Logger:          quietLogger{},
				}
				served := make(chan error, 1)
				go func() { served <- srv.Serve(ln) }()
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := srv.ShutdownWithContext(ctx); err != nil {
						t.Errorf("shutdown: %v", err)
					}
					if err := <-served; err != nil {
						t.Errorf("serve: %v", err)
					}
				})
				addr := raw.Addr().String()
				dial := func(t *testing.T) net.Conn {
					t.Helper()
					tc, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					// Small, so a client that does not read stalls the
					// server's writes.
					if err := tc.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
						t.Fatal(err)
					}
					c := tc
					if withTLS {
						c = tls.Client(tc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
					}
					t.Cleanup(func() { c.Close() })
					// Bounds every client read, so a server that never closes
					// fails the test instead of hanging it.
					if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
						t.Fatal(err)
					}
					if withTLS {
						if err := c.(*tls.Conn).Handshake(); err != nil {
							t.Fatal(err)
						}
					}
					return c
				}
				return dial, closed
			}
			get := func(c net.Conn, br *bufio.Reader) error {
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					return err
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return err
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK || string(body) != "ok" {
					return fmt.Errorf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
				}
				return nil
			}
			// closedAfter waits until the server closes c and returns when.
			closedAfter := func(t *testing.T, c net.Conn) time.Time {
				t.Helper()
				_, err := io.Copy(io.Discard, c)
				at := time.Now()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("server never closed the connection")
				}
				return at
			}

			// The subtests run one at a time: with sub-second timeouts, a dozen
			// TLS handshakes and transfers at once under -race on a small
			// shared machine miss them for real.
			t.Run("keep-alive", func(t *testing.T) {
				dial, _ := serve(t, 0)
				c := dial(t)
				br := bufio.NewReader(c)
				last := time.Now()
				for i := range 500 {
					if err := get(c, br); err != nil {
						t.Fatalf("request %d, %v after the previous one: %v", i, time.Since(last), err)
					}
					last = time.Now()
				}
				// Longer than the read and write timeouts, shorter than the
				// idle one: only the idle one applies between requests.
				for i := range 2 {
					time.Sleep(900 * time.Millisecond)
					if err := get(c, br); err != nil {
						t.Fatalf("request after pause %d: %v", i, err)
					}
				}
			})
			t.Run("slowloris", func(t *testing.T) {
				dial, _ := serve(t, 0)
				start := time.Now()
				c := dial(t)
				if _, err := io.WriteString(c, "GET / HT"); err != nil {
					t.Fatal(err)
				}
				checkAround(t, "slow client cut off", start, closedAfter(t, c), readTimeout)
			})
			// A request dripped a byte every 50ms: each read completes at
			// once, but the whole request must arrive within the read timeout
			// of its first byte. 100 bytes would take 5s.
			req := "GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + string(bytes.Repeat([]byte("a"), 60)) + "\r\n\r\n"
			for _, after := range []bool{false, true} {
				name := "slow drip"
				if after {
					name += " after a response"
				}
				t.Run(name, func(t *testing.T) {
					dial, _ := serve(t, 0)
					// A new connection's window opens at accept (under TLS
					// the handshake takes part of it), a keep-alive one's at
					// the first byte.
					start := time.Now()
					c := dial(t)
					br := bufio.NewReader(c)
					if after {
						if err := get(c, br); err != nil {
							t.Fatal(err)
						}
					}
					done := make(chan struct{})
					defer close(done)
					first := drip(c, []byte(req), done)
					at := closedAfter(t, c)
					if after {
						var ok bool
						if start, ok = <-first; !ok {
							t.Fatal("no byte dripped")
						}
					}
					checkAround(t, "dripping client cut off", start, at, readTimeout)
				})
			}
			t.Run("idle", func(t *testing.T) {
				dial, _ := serve(t, 0)
				c := dial(t)
				br := bufio.NewReader(c)
				if err := get(c, br); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				checkAround(t, "idle connection closed", start, closedAfter(t, c), idleTimeout)
			})
			t.Run("silent", func(t *testing.T) {
				dial, _ := serve(t, 0)
				start := time.Now()
				c := dial(t) // under TLS, the handshake counts
				checkAround(t, "silent connection closed", start, closedAfter(t, c), readTimeout)
			})
			t.Run("write", func(t *testing.T) {
				// Only the write timeout is under test: a slow handshake must
				// not use up the first request's read window.
				dial, closed := serve(t, time.Minute)
				c := dial(t)
				// Never read: the server's write of the 16MB answer stalls.
				start := time.Now()
				if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				// Under TLS each record is its own Write with its own window,
				// a partly written record can stall twice (the window armed
				// by the previous Write fires first, then its own), and
				// closing sends close_notify, which waits one more window:
				// about three windows in all (measured 1.82-1.83 s).
				limit := writeTimeout + slack
				if withTLS {
					limit += 2 * writeTimeout
				}
				select {
				case at := <-closed:
					// Closed means the goroutine serving the connection
					// returned.
					if got := at.Sub(start); got < writeTimeout-writeTimeout/4 || got > limit {
						t.Fatalf("stalled response cut off after %v, want in [%v, %v]", got, writeTimeout-writeTimeout/4, limit)
					}
				case <-time.After(limit):
					t.Fatalf("server still writing %v after the request", limit)
				}
			})
		})
	}
}

// BenchmarkCycle measures a keep-alive request's read and response write on
// a real connection pair (the peer's write and read included), on a raw
// socket and on a wrapped one with its timeouts on: the difference is the
// wrapper's per-request cost.
func BenchmarkCycle(b *testing.B) {
	server, client := tcpPair(b)
	for _, bc := range []struct {
		name string
		c    net.Conn
	}{
		{"raw", server},
		{"wrapped", newConn(server, Timeouts{Read: 5 * time.Second, Write: 5 * time.Second, Idle: 120 * time.Second})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := bc.c
			buf := make([]byte, 64)
			req, resp := []byte("q"), []byte("a")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(resp); err != nil {
					b.Fatal(err)
				}
				if _, err := client.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetReadDeadline measures the deadline calls fasthttp makes per
// keep-alive request (idle wait, request read, response write) on a raw
// socket and on a wrapped one. The wrapped figure is the steady state: the
// rare arming when a deadline passes is not in it. clock is the floor both
// share: the three time.Now calls fasthttp makes anyway.
func BenchmarkSetReadDeadline(b *testing.B) {
	const (
		idle  = 120 * time.Second
		read  = 5 * time.Second
		write = 5 * time.Second
	)
	server, _ := tcpPair(b)
	for _, bc := range []struct {
		name string
		c    net.Conn
	}{
		{"raw", server},
		{"wrapped", newConn(server, Timeouts{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := bc.c
			b.ReportAllocs()
			for b.Loop() {
				if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
					b.Fatal(err)
				}
				if err := c.SetReadDeadline(time.Now().Add(read)); err != nil {
					b.Fatal(err)
				}
				if err := c.SetWriteDeadline(time.Now().Add(write)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("clock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clockSink[0] = time.Now().Add(idle)
			clockSink[1] = time.Now().Add(read)
			clockSink[2] = time.Now().Add(write)
		}
	})
}

// clockSink keeps the compiler from dropping the clock baseline's work.
var clockSink [3]time.Time
