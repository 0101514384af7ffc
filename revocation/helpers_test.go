package revocation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitNoLeaks waits until no goroutine of a node, the NATS client or a
// nats-server is left, and returns their stacks if some stay.
func waitNoLeaks(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "revocation.(*Node)") ||
				strings.Contains(g, "nats-io/nats.go") ||
				strings.Contains(g, "nats-server/v2/server.") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLogger discards logs unless REVOCATION_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("REVOCATION_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runServer starts a nats-server with JetStream on loopback.
func runServer(t testing.TB, mod func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
	}
	if mod != nil {
		mod(opts)
	}
	s := startServer(t, opts)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func startServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server not ready")
	}
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newDenyList() *DenyList {
	return NewDenyList(DenyListConfig{Leeway: 30 * time.Second, MaxTokenLifetime: time.Hour})
}

// fastConfig has short durations so that faults show within seconds.
func fastConfig(urls ...string) Config {
	return Config{
		URLs:             urls,
		MaxStaleness:     2 * time.Second,
		MaxTokenLifetime: time.Hour,
		Leeway:           30 * time.Second,
		Logger:           testLogger(),
	}
}

func startNode(t testing.TB, cfg Config, deny *DenyList) *Node {
	t.Helper()
	n, err := Start(context.Background(), cfg, deny)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitReady(t testing.TB, n *Node, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, reason := n.Ready()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready after %s: %s", d, reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// corePublish publishes body with a plain core-NATS publish, like `nats pub`.
func corePublish(t testing.TB, nc *nats.Conn, subject, body string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func jtiEvent(jti string) Event {
	return Event{Kind: KindJTI, Iss: issA, Jti: jti, Exp: time.Now().Add(time.Hour).Unix()}
}

func jtiToken(jti string) *Token {
	return &Token{Digest: digest(jti), Iss: issA, Jti: jti, Iat: time.Now().Unix()}
}

// proxy is a TCP proxy that can black-hole traffic (keep connections open
// but stop forwarding) or cut every connection.
type proxy struct {
	ln        net.Listener
	target    string
	blackhole atomic.Bool
	refuse    atomic.Bool

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies from src to dst, dropping everything while black-holed.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every open connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// The hard-kill test runs an embedded node in a child process and kills it.
const (
	childEnv    = "REVOCATION_TEST_CHILD_DIR"
	childPrefix = "CLIENT_URL="
)

// runChild starts a node with an embedded server on the store in
// $REVOCATION_TEST_CHILD_DIR, prints its client URL and waits to be killed.
func runChild() {
	n, err := Start(context.Background(), Config{
		DataDir: os.Getenv(childEnv),
		Logger:  slog.New(slog.DiscardHandler),
	}, NewDenyList(DenyListConfig{}))
	if err != nil {
		io.WriteString(os.Stderr, err.Error()+"\n")
		os.Exit(3)
	}
	io.WriteString(os.Stdout, childPrefix+n.ClientURL()+"\n")
	select {}
}
