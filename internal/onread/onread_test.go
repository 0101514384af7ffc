package onread

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// TestSeesEveryChunk: fn sees exactly the bytes Read returns, in order,
// across reads of every size, and writes pass through untouched.
func TestSeesEveryChunk(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen bytes.Buffer
	ln := NewListener(raw, func(p []byte) {
		mu.Lock()
		seen.Write(p)
		mu.Unlock()
	})
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
		mu.Lock()
		same := bytes.Equal(seen.Bytes(), got.Bytes())
		mu.Unlock()
		if !same {
			t.Fatalf("after %d bytes read, fn saw %d different ones", got.Len(), seen.Len())
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
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, func([]byte) { t.Error("fn called") })
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

// TestTLS: wrapping a TLS listener, fn sees the plaintext, and the
// connection still shows a TLS connection's methods, by which fasthttp
// tells TLS (IsTLS, TLSConnectionState).
func TestTLS(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen bytes.Buffer
	ln := NewListener(tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}), func(p []byte) {
		mu.Lock()
		seen.Write(p)
		mu.Unlock()
	})
	defer ln.Close()

	const sent = "POST /introspect HTTP/1.1\r\n\r\ntoken=abc.def.ghi"
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
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
	mu.Lock()
	defer mu.Unlock()
	if string(got) != sent || seen.String() != sent {
		t.Errorf("read %q, fn saw %q; want the plaintext %q", got, seen.String(), sent)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
