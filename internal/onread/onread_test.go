package onread

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/introspectd/introspectd/internal/testcert"
)

// TestSeesEveryChunk: fn sees exactly the bytes Read returns, in order,
// across reads of every size, and writes pass through untouched.
func TestSeesEveryChunk(t *testing.T) {
	var seen recorder
	ln := NewListener(listen(t), seen.show)
	defer ln.Close()

	sent := bytes.Repeat([]byte("POST /introspect HTTP/1.1\r\n\r\ntoken=abc."), 500)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for rest := sent; len(rest) > 0; { // chunks of 1 to 4,096 bytes
			n := min(len(rest), 1+len(rest)%4096)
			if _, err := c.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
		if _, err := io.ReadAll(c); err != nil {
			t.Error(err)
		}
	}()

	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got bytes.Buffer
	buf := make([]byte, 700)
	for got.Len() < len(sent) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if saw := seen.bytes(); !bytes.Equal(saw, got.Bytes()) {
			t.Fatalf("after %d bytes read, fn saw %d different ones", got.Len(), len(saw))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptError: a closed listener's error reaches the server unchanged.
func TestAcceptError(t *testing.T) {
	ln := NewListener(listen(t), func([]byte) { t.Error("fn called") })
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

// TestTLS: wrapping a TLS listener, fn sees the plaintext, and the
// connection still shows a TLS connection's methods, by which fasthttp
// tells TLS (IsTLS, TLSConnectionState).
func TestTLS(t *testing.T) {
	cert, pool := testcert.New(t, "onread test")
	var seen recorder
	ln := NewListener(tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}}), seen.show)
	defer ln.Close()

	const sent = "POST /introspect HTTP/1.1\r\n\r\ntoken=abc.def.ghi"
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte(sent)); err != nil {
			t.Error(err)
		}
		_, _ = io.ReadAll(c)
	}()

	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, ok := c.(interface {
		Handshake() error
		ConnectionState() tls.ConnectionState
	})
	if !ok {
		t.Fatalf("%T hides the TLS connection's Handshake and ConnectionState", c)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !tc.ConnectionState().HandshakeComplete {
		t.Error("ConnectionState: handshake not complete after a read")
	}
	if saw := seen.bytes(); string(got) != sent || string(saw) != sent {
		t.Errorf("read %q, fn saw %q; want the plaintext %q", got, saw, sent)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// recorder keeps every chunk it is shown, for fn.
type recorder struct {
	mu   sync.Mutex
	seen bytes.Buffer
}

func (r *recorder) show(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.seen.Bytes())
}
