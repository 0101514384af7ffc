package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by [Node.Publish] after [Node.Close].
var ErrClosed = errors.New("revocation: node closed")

// Node keeps a [DenyList] in step with the revocation stream: it replays the
// whole stream on start, then follows live events, across reconnects and
// resyncs. It is safe for concurrent use.
type Node struct {
	cfg  Config
	deny *DenyList
	log  *slog.Logger

	srv    *server.Server // embedded server; nil when external
	tmpDir string         // store of the embedded server that Close removes
	nc     *nats.Conn
	js     jetstream.JetStream

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once

	// base is the monotonic origin of lastContact, so that wall clock
	// jumps do not make the node look fresh or stale.
	base        time.Time
	lastContact atomic.Int64 // since base, in ns; 0: never

	applied    atomic.Uint64 // stream sequence of the last applied event
	streamLast atomic.Uint64 // last sequence of the stream, as last seen
	target     atomic.Uint64 // sequence the current replay has to reach
	// gen changes when a session starts and when the connection drops or
	// comes back; caughtUp holds the largest gen whose session replayed up
	// to its target. The node is caught up only while they are equal, so a
	// reconnect makes it not ready at once, and a late callback of an old
	// session cannot make it ready.
	gen      atomic.Uint64
	caughtUp atomic.Uint64
	resyncs  atomic.Uint64
	// warnedStream is set once the stream's settings were checked, so
	// warnings are not repeated on every session.
	warnedStream atomic.Bool
	nApplied     [len(kinds)]atomic.Uint64
	nMalformed   [len(kinds) + 1]atomic.Uint64 // the last one counts KindUnknown

	mu            sync.Mutex         // guards the fields below
	sessionCancel context.CancelFunc // stops the running consumer session
	resync        string             // why the next session has to replay from the first available event; "" when it need not
	streamCreated time.Time          // creation time of the stream that applied refers to
	lastErr       string             // last consumer error, for Ready
}

// Start starts a node that feeds deny. It runs an embedded nats-server when
// cfg.URLs is empty. It returns quickly even when NATS cannot be reached: the
// node keeps trying in the background and stays not ready until it has
// replayed the stream. It fails for an invalid cfg, unreadable credential or
// TLS files, and an embedded server that cannot start.
//
// ctx bounds the start-up only; the node runs until [Node.Close].
func Start(ctx context.Context, cfg Config, deny *DenyList) (*Node, error) {
	if deny == nil {
		return nil, errors.New("revocation: nil DenyList")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	for _, f := range []struct{ name, path string }{
		{"CredsFile", cfg.CredsFile}, {"NKeySeedFile", cfg.NKeySeedFile},
		{"CAFile", cfg.CAFile}, {"CertFile", cfg.CertFile}, {"KeyFile", cfg.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return nil, fmt.Errorf("revocation: %s: %w", f.name, err)
		}
	}
	n := &Node{
		cfg:  cfg,
		deny: deny,
		log:  cfg.Logger.With("component", "revocation"),
		base: time.Now(),
	}
	n.gen.Store(1) // caughtUp is 0: not caught up until a session is
	if len(cfg.URLs) == 0 {
		dir := cfg.DataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "introspectd-nats-")
			if err != nil {
				return nil, fmt.Errorf("revocation: embedded store: %w", err)
			}
			dir, n.tmpDir = tmp, tmp
		}
		srv, err := startEmbedded(ctx, cfg, dir, n.log)
		if err != nil {
			n.removeTmp()
			return nil, fmt.Errorf("revocation: %w", err)
		}
		n.srv = srv
		n.log.Info("revocation: embedded nats-server started", "url", srv.ClientURL(), "store_dir", dir)
	}
	nc, err := n.connect()
	if err != nil {
		n.stopServer()
		return nil, fmt.Errorf("revocation: nats: %w", err)
	}
	n.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(max(DefaultPublishTimeout, cfg.MaxStaleness)))
	if err != nil {
		nc.Close()
		n.stopServer()
		return nil, fmt.Errorf("revocation: jetstream: %w", err)
	}
	n.js = js

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.wg.Add(2)
	go n.consume(runCtx)
	go n.watch(runCtx)
	return n, nil
}

// Ready reports whether the deny-list can be trusted: the node replayed the
// whole stream (after start and after every reconnect or resync), is
// connected, and had contact with JetStream within MaxStaleness. When it is
// not ready, reason says why, without secrets.
func (n *Node) Ready() (ok bool, reason string) {
	if n.closed.Load() {
		return false, "revocation: node closed"
	}
	if !n.nc.IsConnected() {
		n.mu.Lock()
		last := n.lastErr
		n.mu.Unlock()
		if last != "" {
			return false, "nats: not connected: " + last
		}
		return false, "nats: not connected"
	}
	if n.Stale() {
		return false, fmt.Sprintf("nats: no contact with JetStream for more than %s", n.cfg.MaxStaleness)
	}
	if !n.isCaughtUp() {
		n.mu.Lock()
		resync, last := n.resync, n.lastErr
		n.mu.Unlock()
		switch {
		case resync != "":
			return false, "revocation: resyncing: " + resync
		case last != "":
			return false, "revocation: consumer failing: " + last
		}
		return false, fmt.Sprintf("revocation: replaying history (at %d of %d)", n.applied.Load(), n.target.Load())
	}
	return true, ""
}

// Stale reports whether the node had no successful contact with JetStream
// for longer than MaxStaleness. It is true until the first contact. With a
// replicated stream, contact counts only while the stream leader reaches a
// quorum of its replicas.
func (n *Node) Stale() bool {
	lc := n.lastContact.Load()
	if lc == 0 {
		return true
	}
	return time.Since(n.base)-time.Duration(lc) > n.cfg.MaxStaleness
}

// contactAt records a successful contact at t, keeping the latest.
func (n *Node) contactAt(t time.Time) {
	v := max(int64(t.Sub(n.base)), 1)
	for {
		old := n.lastContact.Load()
		if v <= old || n.lastContact.CompareAndSwap(old, v) {
			return
		}
	}
}

// ClientURL returns the URL of the embedded server, "" when external.
func (n *Node) ClientURL() string {
	if n.srv == nil {
		return ""
	}
	return n.srv.ClientURL()
}

// Stats is a snapshot of a node's counters, for metrics.
type Stats struct {
	// Applied counts well-formed events handled, by kind, including
	// duplicates and events already past their forget time.
	Applied map[Kind]uint64
	// Malformed counts skipped malformed events by the kind their subject
	// names, [KindUnknown] when it names none.
	Malformed map[Kind]uint64

	AppliedSeq    uint64    // stream sequence of the last applied event
	StreamLastSeq uint64    // last stream sequence, as of the last heartbeat or replay start
	Replaying     bool      // not caught up with the stream (start, reconnect or resync)
	Connected     bool      // the NATS connection is up
	LastContact   time.Time // last successful contact with JetStream; zero: never
	Resyncs       uint64    // replays from the first available event after a gap or a reset stream
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Applied:       make(map[Kind]uint64, len(kinds)),
		Malformed:     make(map[Kind]uint64, len(kinds)+1),
		AppliedSeq:    n.applied.Load(),
		StreamLastSeq: n.streamLast.Load(),
		Replaying:     !n.isCaughtUp(),
		Connected:     n.nc.IsConnected(),
		Resyncs:       n.resyncs.Load(),
	}
	for i, k := range kinds {
		s.Applied[k] = n.nApplied[i].Load()
		s.Malformed[k] = n.nMalformed[i].Load()
	}
	s.Malformed[KindUnknown] = n.nMalformed[len(kinds)].Load()
	if lc := n.lastContact.Load(); lc != 0 {
		s.LastContact = n.base.Add(time.Duration(lc))
	}
	return s
}

// Close stops the consumer, closes the connection and shuts the embedded
// server down. It waits for the node's goroutines and is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.cancel()
		n.wg.Wait()
		n.nc.Close()
		n.stopServer()
	})
	return nil
}

func (n *Node) stopServer() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	n.removeTmp()
}

func (n *Node) removeTmp() {
	if n.tmpDir != "" {
		if err := os.RemoveAll(n.tmpDir); err != nil {
			n.log.Warn("revocation: removing temporary store", "error", err)
		}
	}
}

// requestTimeout bounds each JetStream API request of the node.
func (n *Node) requestTimeout() time.Duration {
	return min(max(n.cfg.HeartbeatInterval, 500*time.Millisecond), 5*time.Second)
}

// watch probes JetStream every HeartbeatInterval and prunes the deny-list
// every PruneInterval.
func (n *Node) watch(ctx context.Context) {
	defer n.wg.Done()
	hb := time.NewTicker(n.cfg.HeartbeatInterval)
	defer hb.Stop()
	prune := time.NewTicker(PruneInterval)
	defer prune.Stop()
	n.probe(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			n.probe(ctx)
		case <-prune.C:
			if d := n.deny.Prune(n.deny.now()); d > 0 {
				n.log.Debug("revocation: pruned deny-list", "dropped", d)
			}
		}
	}
}

// raftSlack is how long a stream replica may go unseen and still count as
// current: the leader hears from its followers about once a second.
const raftSlack = 1500 * time.Millisecond

// probe asks for the stream's info. An answer is a contact, unless the
// stream is replicated and its leader has not reached a quorum lately: then
// the contact dates from when it last had one, since a leader without
// quorum can neither accept nor deliver new revocations. It also restarts
// the consumer session when the stream went back (recreated, or restored
// with fewer events); the next session then decides how to resync.
func (n *Node) probe(ctx context.Context) {
	if !n.nc.IsConnected() {
		return
	}
	applied := n.applied.Load() // before the request: the stream's last sequence only grows
	rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
	defer cancel()
	st, err := n.js.Stream(rctx, n.cfg.Stream)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("revocation: heartbeat failed", "error", err)
		}
		return
	}
	info := st.CachedInfo()
	now := time.Now()
	n.streamLast.Store(info.State.LastSeq)
	if at, ok := quorumContact(now, info.Cluster); ok {
		n.contactAt(at)
	}

	n.mu.Lock()
	created := n.streamCreated
	n.mu.Unlock()
	if (!created.IsZero() && !created.Equal(info.Created)) || info.State.LastSeq < applied {
		n.log.Warn("revocation: stream went back; restarting the consumer",
			"applied_seq", applied, "last_seq", info.State.LastSeq)
		n.restartSession()
	}
}

// quorumContact returns when the stream's leader last had a quorum of
// replicas in reach, given its answer at now. It returns false when it
// never had.
func quorumContact(now time.Time, ci *jetstream.ClusterInfo) (time.Time, bool) {
	if ci == nil || len(ci.Replicas) == 0 {
		return now, true
	}
	var ages []time.Duration
	for _, p := range ci.Replicas {
		if p == nil || p.Pending {
			continue
		}
		if p.Offline {
			ages = append(ages, -1)
			continue
		}
		ages = append(ages, p.Active)
	}
	size := len(ages) + 1  // with the leader
	need := size/2 + 1 - 1 // followers needed besides the leader
	if need == 0 {
		return now, true
	}
	// Offline peers sort last as "never".
	slices.SortFunc(ages, func(a, b time.Duration) int {
		switch {
		case a == b:
			return 0
		case a < 0:
			return 1
		case b < 0:
			return -1
		case a < b:
			return -1
		}
		return 1
	})
	age := ages[need-1]
	if age < 0 {
		return time.Time{}, false
	}
	return now.Add(-max(age-raftSlack, 0)), true
}

func (n *Node) isCaughtUp() bool {
	return n.caughtUp.Load() == n.gen.Load()
}

// markCaughtUp records that the session of generation gen caught up.
func (n *Node) markCaughtUp(gen uint64) {
	for {
		old := n.caughtUp.Load()
		if gen <= old || n.caughtUp.CompareAndSwap(old, gen) {
			return
		}
	}
}

// connectionChanged is called when the connection drops or comes back. The
// node is not caught up until a new session has checked the stream for
// gaps and replayed what it missed: the old session's consumer may have
// been lost or may resume past events that were removed meanwhile.
func (n *Node) connectionChanged() {
	n.gen.Add(1)
	n.restartSession()
}

// restartSession stops the running consumer session, if any; the consume
// loop then plans a new one.
func (n *Node) restartSession() {
	n.mu.Lock()
	if n.sessionCancel != nil {
		n.sessionCancel()
	}
	n.mu.Unlock()
}
