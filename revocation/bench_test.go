package revocation

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchID returns a 36-character identifier, the length of a UUID jti.
func benchID(prefix byte, i int) string {
	var b [36]byte
	for j := range b {
		b[j] = '0'
	}
	b[0] = prefix
	hex.Encode(b[20:], binary.BigEndian.AppendUint64(nil, uint64(i)))
	return string(b[:])
}

func benchDigest(i int) (h [32]byte) {
	binary.LittleEndian.PutUint64(h[:], uint64(i)*0x9E3779B97F4A7C15)
	binary.LittleEndian.PutUint64(h[8:], uint64(i))
	return h
}

// benchEvent returns the i-th of a mix of all four kinds.
func benchEvent(i int, exp int64) Event {
	switch i % 4 {
	case 0:
		return Event{Kind: KindJTI, Iss: issA, Jti: benchID('j', i), Exp: exp}
	case 1:
		return Event{Kind: KindToken, TokenSHA256: benchDigest(i), Exp: exp}
	case 2:
		return Event{Kind: KindSub, Iss: issA, Sub: benchID('s', i), NotBefore: exp - 3600}
	default:
		return Event{Kind: KindClient, Iss: issA, ClientID: benchID('c', i), NotBefore: exp - 3600}
	}
}

var benchLists sync.Map // live entries -> *DenyList

// benchList returns a deny-list with live entries, a quarter of each kind.
func benchList(live int) *DenyList {
	if d, ok := benchLists.Load(live); ok {
		return d.(*DenyList)
	}
	d := NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
	exp := time.Now().Add(time.Hour).Unix()
	for i := range live {
		d.Apply(benchEvent(i, exp))
	}
	benchLists.Store(live, d)
	return d
}

// BenchmarkRevoked is the hit path: the same verified token checked on every
// request. memo is the steady state; lookup forgets the remembered answer
// before every call (the cost right after the list changed); revoked is a
// token on the list. The figures with 1,000,000 live entries should be
// within 10% of those with none.
func BenchmarkRevoked(b *testing.B) {
	for _, live := range []int{0, 1_000_000} {
		d := benchList(live)
		now := time.Now().Unix()
		clean := NewToken(benchDigest(-1), benchDigest(-2), issA, benchID('j', -1), benchID('s', -1), benchID('c', -1), now, now+600)
		revoked := NewToken(benchDigest(1), [32]byte{}, issA, benchID('j', -3), benchID('s', -3), benchID('c', -3), now, now+600)
		if live > 0 && !d.Revoked(revoked) {
			b.Fatal("token not revoked")
		}
		b.Run(fmt.Sprintf("live=%d/memo", live), func(b *testing.B) {
			b.ReportAllocs()
			d.Revoked(clean)
			for b.Loop() {
				if d.Revoked(clean) {
					b.Fatal("revoked")
				}
			}
		})
		b.Run(fmt.Sprintf("live=%d/memo-parallel", live), func(b *testing.B) {
			b.ReportAllocs()
			d.Revoked(clean)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d.Revoked(clean) {
						panic("revoked")
					}
				}
			})
		})
		b.Run(fmt.Sprintf("live=%d/lookup", live), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				clean.clean.Store(0)
				if d.Revoked(clean) {
					b.Fatal("revoked")
				}
			}
		})
		if live > 0 {
			b.Run(fmt.Sprintf("live=%d/revoked", live), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !d.Revoked(revoked) {
						b.Fatal("not revoked")
					}
				}
			})
		}
	}
}

// BenchmarkApply applies new events of all kinds to a growing list.
func BenchmarkApply(b *testing.B) {
	events := make([]Event, 1<<20)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range events {
		events[i] = benchEvent(i, exp)
	}
	d := NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n%len(events) == 0 {
			d = NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
		}
		d.Apply(events[n%len(events)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseApply is a node's work per event without NATS: parse the
// body, then apply it.
func BenchmarkParseApply(b *testing.B) {
	type msg struct {
		subject string
		body    []byte
	}
	msgs := make([]msg, 1<<16)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range msgs {
		e := benchEvent(i, exp)
		body, _ := e.MarshalJSON()
		msgs[i] = msg{e.Subject(""), body}
	}
	d := NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m := msgs[n%len(msgs)]
		e, err := ParseEvent(m.subject, m.body, "")
		if err != nil {
			b.Fatal(err)
		}
		d.Apply(e)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDenyListBytes reports the heap held per entry of each kind, with
// 36-character jti, sub and client_id values and one issuer.
func BenchmarkDenyListBytes(b *testing.B) {
	const entries = 1_000_000
	exp := time.Now().Add(time.Hour).Unix()
	for _, k := range kinds {
		b.Run(string(k), func(b *testing.B) {
			var per float64
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				d := NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
				for i := range entries {
					// The event's strings are made here, as parsing does.
					d.Apply(benchEvent(i*4+k.index(), exp))
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				if got := d.Len()[k]; got != entries {
					b.Fatalf("%d entries, want %d", got, entries)
				}
				per = float64(m1.HeapAlloc-m0.HeapAlloc) / entries
				runtime.KeepAlive(d)
			}
			b.ReportMetric(per, "B/entry")
		})
	}
}

// replayEvents is the stream size of BenchmarkReplay:
// $REVOCATION_BENCH_REPLAY_EVENTS (comma-separated) or 100,000.
func replayEvents(b *testing.B) []int {
	v := os.Getenv("REVOCATION_BENCH_REPLAY_EVENTS")
	if v == "" {
		return []int{100_000}
	}
	var ns []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("REVOCATION_BENCH_REPLAY_EVENTS: bad count %q", f)
		}
		ns = append(ns, n)
	}
	return ns
}

// BenchmarkReplay is a node's start-up: an embedded server recovers a store
// holding N events and the node replays them all until it is ready. Set
// REVOCATION_BENCH_REPLAY_EVENTS=1000000 for the figure of the issue.
func BenchmarkReplay(b *testing.B) {
	for _, count := range replayEvents(b) {
		b.Run(fmt.Sprintf("events=%d", count), func(b *testing.B) {
			dir := b.TempDir()
			fillStore(b, dir, count)
			cfg := Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
			runs := 0
			for b.Loop() {
				d := NewDenyList(DenyListConfig{MaxTokenLifetime: 2 * time.Hour})
				n, err := Start(context.Background(), cfg, d)
				if err != nil {
					b.Fatal(err)
				}
				for ok, _ := n.Ready(); !ok; ok, _ = n.Ready() {
					time.Sleep(time.Millisecond)
				}
				if got := n.Stats().AppliedSeq; got != uint64(count) {
					b.Fatalf("replayed %d events, want %d", got, count)
				}
				n.Close()
				runs++
			}
			b.ReportMetric(float64(count*runs)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// fillStore writes count events of all kinds into the stream of a store
// directory, with a server that does not fsync every write.
func fillStore(b *testing.B, dir string, count int) {
	b.Helper()
	s := startServer(b, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cfg := (&Node{cfg: Config{}.withDefaults()}).streamConfig()
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	for i := range count {
		e := benchEvent(i, exp)
		body, _ := e.MarshalJSON()
		if _, err := js.PublishAsync(e.Subject(""), body); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	st, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		b.Fatal(err)
	}
	if got := st.CachedInfo().State.Msgs; got != uint64(count) {
		b.Fatalf("stream holds %d events, want %d", got, count)
	}
}

// BenchmarkPublishToRevoked publishes one revocation per iteration through
// one of three nodes (which waits for the JetStream ack, as POST /revoke
// does) and waits until all three deny it. It reports p50 and p99.
func BenchmarkPublishToRevoked(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	d1 := NewDenyList(DenyListConfig{})
	n1, err := Start(context.Background(), Config{DataDir: b.TempDir(), Logger: logger}, d1)
	if err != nil {
		b.Fatal(err)
	}
	defer n1.Close()
	denies := []*DenyList{d1}
	nodes := []*Node{n1}
	for range 2 {
		d := NewDenyList(DenyListConfig{})
		n, err := Start(context.Background(), Config{URLs: []string{n1.ClientURL()}, Logger: logger}, d)
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		denies, nodes = append(denies, d), append(nodes, n)
	}
	for _, n := range nodes {
		for ok, _ := n.Ready(); !ok; ok, _ = n.Ready() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).Unix()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		jti := benchID('p', i)
		tok := &Token{Iss: issA, Jti: jti}
		start := time.Now()
		if _, err := n1.Publish(ctx, Event{Kind: KindJTI, Iss: issA, Jti: jti, Exp: exp}); err != nil {
			b.Fatal(err)
		}
		for _, d := range denies {
			for !d.Revoked(tok) {
				// Sleep rather than spin: on a small machine a spinning
				// waiter takes the CPU the nodes need.
				time.Sleep(20 * time.Microsecond)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
