// Package onread wraps a listener so that a function sees each chunk of
// bytes its connections read, before the server that called Read parses
// them. introspectd uses it to start loading a token's cache memory while
// fasthttp is still parsing the request (see introspect.Handler.Prefetch):
// the parse then hides a memory miss the handler would otherwise wait for.
package onread

import (
	"crypto/tls"
	"io"
	"net"
)

// NewListener returns a listener whose connections call fn with every
// chunk they read, in order, before returning it. fn runs on the reading
// goroutine and must be quick; it must neither keep nor modify the slice.
//
// Wrap a TLS listener, not the one below it, or fn sees ciphertext. A
// connection with a TLS connection's Handshake and ConnectionState keeps
// them (fasthttp finds TLS through them); no other method of the wrapped
// connection is reachable beyond net.Conn's.
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
	if tc, ok := c.(tlsConn); ok {
		return &tlsReader{tlsConn: tc, fn: l.fn}, nil
	}
	return &conn{Conn: c, fn: l.fn}, nil
}

type conn struct {
	net.Conn
	fn func([]byte)
}

func (c *conn) Read(b []byte) (int, error) { return read(c.Conn, c.fn, b) }

// read reads into b from r and shows fn what it read.
func read(r io.Reader, fn func([]byte), b []byte) (int, error) {
	n, err := r.Read(b)
	if n > 0 {
		fn(b[:n])
	}
	return n, err
}

// tlsConn is what fasthttp looks for to tell a TLS connection.
type tlsConn interface {
	net.Conn
	Handshake() error
	ConnectionState() tls.ConnectionState
}

type tlsReader struct {
	tlsConn
	fn func([]byte)
}

func (c *tlsReader) Read(b []byte) (int, error) { return read(c.tlsConn, c.fn, b) }
