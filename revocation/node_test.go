package revocation

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

func hexDigest(s string) string {
	d := digest(s)
	return hex.EncodeToString(d[:])
}

// TestNodeReplay fills a stream with events of every kind, duplicates,
// malformed events and plain core publishes, then checks that a second node
// never reports ready before it replayed all of them.
func TestNodeReplay(t *testing.T) {
	s := runServer(t, nil)
	logs := &syncBuffer{}
	cfg := fastConfig(s.ClientURL())
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d1 := newDenyList()
	n1 := startNode(t, cfg, d1)
	waitReady(t, n1, 10*time.Second)
	ctx := context.Background()

	var revoked []*Token
	// Three jti events on one subject.
	seq, err := n1.Publish(ctx, jtiEvent("a"), jtiEvent("b"), jtiEvent("c"))
	if err != nil || seq != 3 {
		t.Fatalf("Publish = %d, %v; want 3, nil", seq, err)
	}
	revoked = append(revoked, jtiToken("a"), jtiToken("b"), jtiToken("c"))
	// The same event three times.
	for range 3 {
		if _, err := n1.Publish(ctx, jtiEvent("dup")); err != nil {
			t.Fatal(err)
		}
	}
	revoked = append(revoked, jtiToken("dup"))

	nc := connect(t, s.ClientURL())
	// Malformed events inside the stream, holding would-be token material.
	corePublish(t, nc, base+".jti", `{"jti":"SECRET-1","exp":"soon"}`)
	corePublish(t, nc, base+".token", `{"token_sha256":"SECRET-2`+hexDigest("x")[:20]+`"}`)
	corePublish(t, nc, base+".bogus", `{"jti":"SECRET-3"}`)
	corePublish(t, nc, base+".sub", `not json SECRET-4`)
	// Plain core publishes, like `nats pub`.
	now := time.Now().Unix()
	corePublish(t, nc, base+".jti", `{"iss":"`+issA+`","jti":"core"}`)
	corePublish(t, nc, base+".token", `{"token_sha256":"`+hexDigest("opaque")+`"}`)
	corePublish(t, nc, base+".sub", fmt.Sprintf(`{"iss":%q,"sub":"mallory","not_before":%d}`, issA, now+10))
	corePublish(t, nc, base+".client", fmt.Sprintf(`{"client_id":"rogue","not_before":%d}`, now+10))
	revoked = append(revoked,
		jtiToken("core"),
		&Token{Digest: digest("opaque")},
		&Token{Iss: issA, Sub: "mallory", Iat: now},
		&Token{Iss: issB, ClientID: "rogue", Iat: now},
	)
	// Enough events that a replay takes a while.
	for i := range 10 {
		var batch []Event
		for j := range 200 {
			batch = append(batch, jtiEvent(fmt.Sprintf("bulk-%d-%d", i, j)))
		}
		if _, err := n1.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	revoked = append(revoked, jtiToken("bulk-0-0"), jtiToken("bulk-9-199"))
	const total = 3 + 3 + 4 + 4 + 2000

	waitFor(t, 10*time.Second, "node 1 to apply every event", func() bool { return n1.Stats().AppliedSeq == total })
	for i, tok := range revoked {
		if !d1.Revoked(tok) {
			t.Errorf("node 1: token %d not revoked", i)
		}
	}
	if d1.Revoked(jtiToken("never")) {
		t.Error("node 1: unrelated token revoked")
	}
	st := n1.Stats()
	wantApplied := map[Kind]uint64{KindJTI: 3 + 3 + 1 + 2000, KindToken: 1, KindSub: 1, KindClient: 1}
	wantMalformed := map[Kind]uint64{KindJTI: 1, KindToken: 1, KindSub: 1, KindClient: 0, KindUnknown: 1}
	if fmt.Sprint(st.Applied) != fmt.Sprint(wantApplied) || fmt.Sprint(st.Malformed) != fmt.Sprint(wantMalformed) {
		t.Errorf("node 1: Applied %v Malformed %v, want %v %v", st.Applied, st.Malformed, wantApplied, wantMalformed)
	}
	if got := d1.Len()[KindJTI]; got != 3+1+1+2000 {
		t.Errorf("node 1: %d jti entries, want %d", got, 3+1+1+2000)
	}
	out := logs.String()
	if !strings.Contains(out, "malformed") {
		t.Error("malformed events were not logged")
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, hexDigest("x")[:20]) {
		t.Errorf("logs hold token material:\n%s", out)
	}

	// A second node: whenever it says ready, it has everything.
	d2 := newDenyList()
	cfg.Logger = testLogger()
	start := time.Now()
	n2 := startNode(t, cfg, d2)
	for {
		ok, _ := n2.Ready()
		if ok {
			for i, tok := range revoked {
				if !d2.Revoked(tok) {
					t.Fatalf("node 2 ready before token %d was replayed", i)
				}
			}
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("node 2 never ready")
		}
		time.Sleep(time.Millisecond)
	}
	st2 := n2.Stats()
	if st2.AppliedSeq != total || fmt.Sprint(st2.Applied) != fmt.Sprint(wantApplied) ||
		fmt.Sprint(st2.Malformed) != fmt.Sprint(wantMalformed) || st2.Resyncs != 0 {
		t.Errorf("node 2 stats %+v, want seq %d applied %v malformed %v, no resync", st2, total, wantApplied, wantMalformed)
	}
	if st2.Replaying || !st2.Connected || st2.LastContact.IsZero() || st2.StreamLastSeq != total {
		t.Errorf("node 2 stats %+v", st2)
	}
}

// TestNodeEmbedded runs the embedded server: live events reach tokens that
// were checked before (and after: revoke before first sight), and the store
// outlives the node.
func TestNodeEmbedded(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig()
	cfg.DataDir = dir
	d := newDenyList()
	n := startNode(t, cfg, d)
	waitReady(t, n, 10*time.Second)

	url := n.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want a loopback URL", url)
	}
	if js := n.srv.JetStreamConfig(); js == nil || !js.SyncAlways || !strings.HasPrefix(js.StoreDir, dir) {
		t.Fatalf("embedded JetStream config %+v, want SyncAlways under %s", js, dir)
	}

	seen := jtiToken("seen")
	if d.Revoked(seen) {
		t.Fatal("revoked before any event")
	}
	// Publish applies locally before it returns.
	if _, err := n.Publish(context.Background(), jtiEvent("seen")); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked(seen) {
		t.Fatal("not revoked when Publish returned")
	}
	// A core publish from another connection; the token is checked (and
	// found clean) while the event travels.
	live := jtiToken("live")
	d.Revoked(live)
	nc := connect(t, url)
	corePublish(t, nc, base+".jti", `{"iss":"`+issA+`","jti":"live"}`)
	waitFor(t, 5*time.Second, "live event applied", func() bool { return d.Revoked(live) })
	// Revoke before first sight.
	corePublish(t, nc, base+".jti", `{"jti":"future"}`)
	waitFor(t, 5*time.Second, "event applied", func() bool { return n.Stats().AppliedSeq == 3 })
	if !d.Revoked(jtiToken("future")) {
		t.Fatal("token first seen after its revocation is not revoked")
	}
	nc.Close()
	n.Close()
	if ok, reason := n.Ready(); ok || !strings.Contains(reason, "closed") {
		t.Fatalf("Ready after Close = %v, %q", ok, reason)
	}
	if _, err := n.Publish(context.Background(), jtiEvent("x")); err != ErrClosed {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}

	d2 := newDenyList()
	n2 := startNode(t, cfg, d2)
	waitReady(t, n2, 10*time.Second)
	for _, j := range []string{"seen", "live", "future"} {
		if !d2.Revoked(jtiToken(j)) {
			t.Errorf("after restart: %s not revoked", j)
		}
	}
}

// TestNodeServerRestart restarts the NATS server on the same port and
// store; the node reconnects and resumes after the last applied event.
func TestNodeServerRestart(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	opts := func() *server.Options {
		return &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	}
	s := startServer(t, opts())
	d := newDenyList()
	n := startNode(t, fastConfig(s.ClientURL()), d)
	waitReady(t, n, 10*time.Second)
	if _, err := n.Publish(context.Background(), jtiEvent("1"), jtiEvent("2"), jtiEvent("3")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "3 events applied", func() bool { return n.Stats().AppliedSeq == 3 })

	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, 5*time.Second, "not ready", func() bool { ok, _ := n.Ready(); return !ok })
	pctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := n.Publish(pctx, jtiEvent("x")); err == nil {
		t.Fatal("Publish without a server succeeded")
	}

	s2 := startServer(t, opts())
	t.Cleanup(func() { s2.Shutdown(); s2.WaitForShutdown() })
	nc := connect(t, s2.ClientURL())
	corePublish(t, nc, base+".jti", `{"jti":"4"}`)
	corePublish(t, nc, base+".jti", `{"jti":"5"}`)
	waitReady(t, n, 15*time.Second)
	waitFor(t, 5*time.Second, "5 events applied", func() bool { return n.Stats().AppliedSeq >= 5 })
	st := n.Stats()
	// The failed publish may or may not have been stored after the
	// reconnect; either way nothing was applied twice.
	if st.Resyncs != 0 || st.Applied[KindJTI] != st.AppliedSeq {
		t.Fatalf("stats %+v: want no resync and every event applied once", st)
	}
	for _, j := range []string{"1", "2", "3", "4", "5"} {
		if !d.Revoked(jtiToken(j)) {
			t.Errorf("%s not revoked", j)
		}
	}
}

// TestNodeBlackhole stops forwarding traffic without closing the
// connection: the node is stale and not ready within MaxStaleness, then
// recovers and applies what it missed.
func TestNodeBlackhole(t *testing.T) {
	s := runServer(t, nil)
	p := newProxy(t, s.Addr().String())
	cfg := fastConfig(p.url())
	d := newDenyList()
	n := startNode(t, cfg, d)
	waitReady(t, n, 10*time.Second)

	p.blackhole.Store(true)
	start := time.Now()
	waitFor(t, 3*cfg.MaxStaleness, "stale", n.Stale)
	if took := time.Since(start); took > cfg.MaxStaleness+750*time.Millisecond {
		t.Errorf("stale after %s, want within MaxStaleness %s", took, cfg.MaxStaleness)
	}
	if ok, reason := n.Ready(); ok {
		t.Fatal("ready while black-holed")
	} else {
		t.Logf("stale after %s; reason: %s", time.Since(start), reason)
	}

	nc := connect(t, s.ClientURL())
	corePublish(t, nc, base+".jti", `{"iss":"`+issA+`","jti":"missed"}`)
	p.blackhole.Store(false)
	waitReady(t, n, 15*time.Second)
	waitFor(t, 5*time.Second, "missed event applied", func() bool { return d.Revoked(jtiToken("missed")) })
	if st := n.Stats(); st.Resyncs != 0 {
		t.Errorf("Resyncs = %d, want 0", st.Resyncs)
	}
}

// TestNodeHardKill kills a process that runs an embedded server right after
// JetStream acknowledged revocations; a node on the same store has them.
func TestNodeHardKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), childPrefix); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("child did not start")
	}
	if url == "" {
		t.Fatal("child exited")
	}

	nc := connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "stream created by the child", func() bool {
		_, err := js.Stream(ctx, DefaultStream)
		return err == nil
	})
	const count = 50
	for i := range count {
		body, _ := jtiEvent(fmt.Sprint("kill-", i)).MarshalJSON()
		if _, err := js.Publish(ctx, base+".jti", body); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// SIGKILL: no shutdown, no flush.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	nc.Close()

	d := newDenyList()
	cfg := fastConfig()
	cfg.DataDir = dir
	n := startNode(t, cfg, d)
	waitReady(t, n, 20*time.Second)
	for i := range count {
		if !d.Revoked(jtiToken(fmt.Sprint("kill-", i))) {
			t.Fatalf("acknowledged revocation %d lost", i)
		}
	}
	if st := n.Stats(); st.AppliedSeq != count {
		t.Errorf("AppliedSeq = %d, want %d", st.AppliedSeq, count)
	}
}

func startCluster(t *testing.T, size int) []*server.Server {
	t.Helper()
	var routes []string
	ports := make([]int, size)
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	var servers []*server.Server
	for i := range size {
		s := startServer(t, &server.Options{
			ServerName: fmt.Sprintf("S%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(),
			NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "revocation-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers = append(servers, s)
	}
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return servers
}

// TestNodeMinority runs an R3 stream on a 3-node cluster and shuts two
// servers down: publishing through the survivor fails loudly and the node
// goes not ready.
func TestNodeMinority(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a cluster")
	}
	servers := startCluster(t, 3)
	cfg := fastConfig(servers[0].ClientURL())
	cfg.Replicas = 3
	d := newDenyList()
	n := startNode(t, cfg, d)
	waitReady(t, n, 30*time.Second)
	if _, err := n.Publish(context.Background(), jtiEvent("before")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "event applied", func() bool { return n.Stats().AppliedSeq == 1 })

	start := time.Now()
	for _, s := range servers[1:] {
		s.Shutdown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if seq, err := n.Publish(ctx, jtiEvent("minority")); err == nil {
		t.Fatalf("Publish without quorum succeeded (seq %d)", seq)
	} else {
		t.Logf("publish failed after %s: %v", time.Since(start), err)
	}
	waitFor(t, 20*time.Second, "not ready", func() bool { ok, _ := n.Ready(); return !ok })
	_, reason := n.Ready()
	t.Logf("not ready %s after the partition: %s", time.Since(start), reason)
	// Whatever the consumer does, without a quorum there is no contact.
	waitFor(t, cfg.MaxStaleness+raftSlack+5*time.Second, "stale", n.Stale)
	t.Logf("stale %s after the partition", time.Since(start))
	if ok, _ := n.Ready(); ok {
		t.Fatal("ready without a quorum")
	}
	if !d.Revoked(jtiToken("before")) {
		t.Fatal("lost an applied revocation")
	}
}

// TestNodeGapResync purges the stream while the node is cut off, after
// events it never saw: the node notices the gap, counts a resync, replays
// from the first available event and keeps what it had.
func TestNodeGapResync(t *testing.T) {
	s := runServer(t, nil)
	p := newProxy(t, s.Addr().String())
	d := newDenyList()
	n := startNode(t, fastConfig(p.url()), d)
	waitReady(t, n, 10*time.Second)
	ctx := context.Background()
	if _, err := n.Publish(ctx, jtiEvent("one"), jtiEvent("two"), jtiEvent("three")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "3 events applied", func() bool { return n.Stats().AppliedSeq == 3 })

	p.refuse.Store(true)
	p.cut()
	waitFor(t, 5*time.Second, "disconnected", func() bool { return !n.Stats().Connected })

	nc := connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"lost1", "lost2"} {
		body, _ := jtiEvent(j).MarshalJSON()
		if _, err := js.Publish(ctx, base+".jti", body); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	body, _ := jtiEvent("after").MarshalJSON()
	if _, err := js.Publish(ctx, base+".jti", body); err != nil {
		t.Fatal(err)
	}

	p.refuse.Store(false)
	waitReady(t, n, 15*time.Second)
	stats := n.Stats()
	if stats.Resyncs != 1 || stats.AppliedSeq != 6 {
		t.Fatalf("stats %+v, want 1 resync and AppliedSeq 6", stats)
	}
	for _, j := range []string{"one", "two", "three", "after"} {
		if !d.Revoked(jtiToken(j)) {
			t.Errorf("%s not revoked after the resync", j)
		}
	}
}

// TestNodeStreamRecreated deletes the stream under a running node: the node
// recreates it, counts a resync and applies events of the new stream,
// although their sequences restart below what it applied.
func TestNodeStreamRecreated(t *testing.T) {
	s := runServer(t, nil)
	d := newDenyList()
	n := startNode(t, fastConfig(s.ClientURL()), d)
	waitReady(t, n, 10*time.Second)
	ctx := context.Background()
	if _, err := n.Publish(ctx, jtiEvent("old1"), jtiEvent("old2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "2 events applied", func() bool { return n.Stats().AppliedSeq == 2 })
	nc := connect(t, s.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, DefaultStream); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a resync", func() bool { return n.Stats().Resyncs == 1 })
	waitReady(t, n, 10*time.Second)
	if _, err := n.Publish(ctx, jtiEvent("new1")); err != nil {
		t.Fatal(err)
	}
	corePublish(t, nc, base+".jti", `{"jti":"new2"}`)
	waitFor(t, 5*time.Second, "new events applied", func() bool { return d.Revoked(jtiToken("new2")) })
	if st := n.Stats(); st.AppliedSeq != 2 || st.Resyncs != 1 {
		t.Errorf("stats %+v, want AppliedSeq 2 and 1 resync", st)
	}
	for _, j := range []string{"old1", "old2", "new1"} {
		if !d.Revoked(jtiToken(j)) {
			t.Errorf("%s not revoked", j)
		}
	}
}

// TestNodeUnreachable starts without a server: Start returns at once, the
// node is not ready, and it becomes ready once the server appears.
func TestNodeUnreachable(t *testing.T) {
	port := freePort(t)
	cfg := fastConfig(fmt.Sprintf("nats://127.0.0.1:%d", port))
	start := time.Now()
	n := startNode(t, cfg, newDenyList())
	if took := time.Since(start); took > time.Second {
		t.Errorf("Start took %s without a server", took)
	}
	if ok, reason := n.Ready(); ok || !strings.Contains(reason, "not connected") {
		t.Errorf("Ready = %v, %q; want not connected", ok, reason)
	}
	if !n.Stale() {
		t.Error("Stale = false before any contact")
	}
	if n.ClientURL() != "" {
		t.Errorf("ClientURL = %q for an external server", n.ClientURL())
	}
	s := startServer(t, &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	waitReady(t, n, 15*time.Second)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"zero", Config{}, ""},
		{"external", Config{URLs: []string{"nats://a:4222", "nats://b:4222"}, CredsFile: "x.creds", CAFile: "ca.pem"}, ""},
		{"bad subject", Config{Subject: "a.*"}, "Subject"},
		{"empty subject token", Config{Subject: "a..b"}, "Subject"},
		{"bad stream", Config{Stream: "a.b"}, "Stream"},
		{"replicas", Config{Replicas: 7}, "Replicas"},
		{"negative lifetime", Config{MaxTokenLifetime: -1}, "MaxTokenLifetime"},
		{"heartbeat too slow", Config{MaxStaleness: time.Second, HeartbeatInterval: time.Second}, "HeartbeatInterval"},
		{"heartbeat too fast", Config{HeartbeatInterval: time.Millisecond}, "HeartbeatInterval"},
		{"two auth methods", Config{URLs: []string{"nats://a"}, User: "u", Password: "p", Token: "t"}, "at most one"},
		{"cert without key", Config{URLs: []string{"nats://a"}, CertFile: "c.pem"}, "KeyFile"},
		{"embedded not loopback", Config{EmbeddedListen: "0.0.0.0:4222"}, "loopback"},
		{"embedded bad port", Config{EmbeddedListen: "127.0.0.1:x"}, "port"},
		{"embedded with auth", Config{Token: "t"}, "URLs"},
		{"embedded replicated", Config{Replicas: 3}, "Replicas"},
		{"empty URL", Config{URLs: []string{" "}}, "URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(context.Background(), Config{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: "/nonexistent.creds"}, newDenyList()); err == nil || !strings.Contains(err.Error(), "CredsFile") {
		t.Errorf("Start with a missing creds file: %v", err)
	}
	if _, err := Start(context.Background(), Config{}, nil); err == nil {
		t.Error("Start with a nil DenyList succeeded")
	}
	// The embedded server cannot listen on a port in use.
	s := runServer(t, nil)
	_, err := Start(context.Background(), Config{EmbeddedListen: s.Addr().String(), DataDir: t.TempDir(), Logger: testLogger()}, newDenyList())
	if err == nil {
		t.Error("Start on a busy port succeeded")
	}
}

func TestAllHoles(t *testing.T) {
	holes := []uint64{5, 6, 9}
	tests := []struct {
		from, to uint64
		want     bool
	}{
		{5, 7, true}, {5, 8, false}, {4, 6, false}, {9, 10, true}, {6, 7, true}, {7, 9, false}, {3, 3, true},
	}
	for _, tt := range tests {
		if got := allHoles(holes, tt.from, tt.to); got != tt.want {
			t.Errorf("allHoles(%d, %d) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestQuorumContact(t *testing.T) {
	now := time.Now()
	peer := func(active time.Duration, offline bool) *jetstream.PeerInfo {
		return &jetstream.PeerInfo{Active: active, Offline: offline, Current: true}
	}
	tests := []struct {
		name string
		ci   *jetstream.ClusterInfo
		want time.Duration // age of the contact; -1: none
	}{
		{"single server", nil, 0},
		{"R1 in a cluster", &jetstream.ClusterInfo{}, 0},
		{"healthy R3", &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(time.Second, false), peer(200*time.Millisecond, false)}}, 0},
		{"R3 one down", &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(time.Hour, true), peer(time.Second, false)}}, 0},
		{"R3 both silent", &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(10*time.Second, false), peer(5*time.Second, false)}}, 5*time.Second - raftSlack},
		{"R3 both offline", &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(0, true), peer(0, true)}}, -1},
		{"R5 two silent", &jetstream.ClusterInfo{Replicas: []*jetstream.PeerInfo{peer(0, false), peer(9*time.Second, false), peer(0, true), peer(4*time.Second, false)}}, 4*time.Second - raftSlack},
	}
	for _, tt := range tests {
		at, ok := quorumContact(now, tt.ci)
		switch {
		case tt.want < 0 && ok:
			t.Errorf("%s: contact at %s, want none", tt.name, now.Sub(at))
		case tt.want >= 0 && (!ok || now.Sub(at) != tt.want):
			t.Errorf("%s: contact %s ago (%v), want %s", tt.name, now.Sub(at), ok, tt.want)
		}
	}
}
