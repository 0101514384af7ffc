// Package onread wraps a listener so that a function sees each chunk of
// bytes its connections read, before the server that called Read parses
// them. introspectd uses it to start loading a token's cache memory while
// fasthttp is still parsing the request (see introspect.Handler.Prefetch):
// the parse then hides a memory miss the handler would otherwise wait for.
package onread

import "net"

// NewListener returns a listener whose connections call fn with every
// chunk they read, in order, before returning it. fn runs on the reading
// goroutine and must be quick; it must neither keep nor modify the slice.
//
// The connections hide the concrete type of those they wrap: wrap only
// listeners whose callers need no type assertion on them (over TLS,
// fasthttp looks for the *tls.Conn's methods; and fn would see ciphertext
// below TLS anyway).
func NewListener(ln net.Listener, fn func([]byte)) net.Listener {
	return &listener{Listener: ln, fn: fn}
}

type listener struct {
	net.Listener
	fn func([]byte)
}

// Accept returns the underlying error unchanged, so that the server still
// tells a temporary error from a closed listener.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, fn: l.fn}, nil
}

type conn struct {
	net.Conn
	fn func([]byte)
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.fn(b[:n])
	}
	return n, err
}
