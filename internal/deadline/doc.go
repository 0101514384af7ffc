// Package deadline enforces a server's read, idle and write timeouts below
// the HTTP server, on a coarse clock, so that they cost no clock read and
// (in the steady state) no poller call per request.
//
// # Why
//
// fasthttp moves the deadlines of a keep-alive connection three times per
// request (SetReadDeadline for the idle wait, again at the request's first
// byte, SetWriteDeadline for the response). Each move went through the
// runtime poller's timer; making them lazy (see [NewListener]) took that
// away, but fasthttp still calls time.Now before each of them: six vDSO
// clock_gettime calls per request at about 30 ns each on our VMs, about 2%
// of the 8.4 µs of server CPU a cache hit costs. With the timeouts enforced
// here the service gives fasthttp zero timeouts and fasthttp makes none of
// those calls.
//
// # Semantics
//
// A connection follows HTTP/1.1's request/response alternation:
//
//   - A new connection waits for its first request with the deadline
//     accept+Read, kept until the first response is written (as fasthttp
//     applies ReadTimeout to the first request from the connection's start).
//     Under TLS ([NewTLSListener]) this covers the handshake too.
//   - After a response is written the connection is idle: the next read must
//     bring a byte by (end of that write)+Idle.
//   - The first byte after an idle wait starts a request: the deadline
//     becomes (time of that byte)+Read and stays fixed until the next
//     response, so the whole request must arrive within Read of its first
//     byte however it is dripped (slowloris).
//   - Each Write must complete within Write of its start.
//
// A passed deadline makes Read or Write return the usual timeout error
// ([os.ErrDeadlineExceeded]), on which fasthttp closes the connection.
// Deadlines a caller sets with SetReadDeadline and friends still apply: the
// effective deadline of a direction is the earlier of the two.
//
// # Differences from fasthttp's own timeouts
//
//   - Granularity: the clock ticks every 100 ms, so a deadline fires
//     between the exact timeout and a tick after it (earlier only if the
//     ticking goroutine runs more than a tick late). The ticker costs 10
//     wake-ups per second per process, shared by all listeners, and runs
//     from the first listener on, for the life of the process. A finer tick
//     costs CPU on every request (see tick).
//   - The wrapper cannot parse HTTP: a "response" is any successful write
//     (from [NewTLSListener], any write of application data above TLS, so
//     the handshake and post-handshake messages such as KeyUpdate do not
//     count).
//     With pipelining several requests may arrive in one read and the idle
//     and read windows follow the writes of their responses, which bounds a
//     connection without matching fasthttp's per-request accounting.
//   - WriteTimeout bounds each Write call, not a whole response: a response
//     written in many Writes (a streamed body) may take longer in total.
//     Under TLS each record (up to 16 KiB) is a Write, and closing a
//     connection whose write timed out sends close_notify, which waits one
//     more window: a client that never reads a large response was cut off
//     after about three windows in our test (1.82 s with a 600 ms timeout),
//     and one that reads a little within every window keeps it going.
//   - The timeouts apply to the connection for its whole life, including
//     after a fasthttp hijack, whose SetDeadline(time.Time{}) clears only
//     caller-requested deadlines.
package deadline
