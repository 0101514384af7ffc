package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Consumer tuning.
const (
	pullBatch = 1024 // messages buffered per pull request

	// maxHoles bounds the interior deletions of the stream that a session
	// tracks to tell them from gaps; with more, gap detection falls back to
	// the checks at session start.
	maxHoles = 100_000

	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

var (
	errGap       = errors.New("revocation: gap in the stream")
	errOutOfStep = errors.New("revocation: consumer delivered out of order")
)

// consume runs consumer sessions until ctx ends. A session replays from
// where the node stands and then follows live events; any failure ends it
// and the next one is planned from the stream's state at that time.
func (n *Node) consume(ctx context.Context) {
	defer n.wg.Done()
	backoff := minBackoff
	for {
		progressed, err := n.session(ctx)
		n.gen.Add(1) // not caught up until the next session is
		if ctx.Err() != nil {
			return
		}
		restarted := errors.Is(err, context.Canceled) // by restartSession
		if err != nil && !restarted {
			n.mu.Lock()
			n.lastErr = err.Error()
			n.mu.Unlock()
			n.log.Warn("revocation: consumer stopped; retrying", "error", err, "applied_seq", n.applied.Load())
		}
		if progressed || restarted {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// plan is what one session does.
type plan struct {
	start    uint64 // first stream sequence to deliver; 0: all
	expect   uint64 // sequence the first delivered event should have
	target   uint64 // last sequence of the stream at the start
	resync   string // why the session replays from the first available event
	holes    []uint64
	checkSeq bool // every sequence of the stream is ours: a jump is a gap unless it is a hole
}

// session runs one consumer session and reports whether it applied any
// event.
func (n *Node) session(ctx context.Context) (progressed bool, err error) {
	if err := n.waitConnected(ctx); err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.mu.Lock()
	n.sessionCancel = cancel
	n.mu.Unlock()
	// After sessionCancel is set, so a connection change from now on
	// cancels this session rather than slipping in before it.
	gen := n.gen.Add(1)
	defer func() {
		n.mu.Lock()
		n.sessionCancel = nil
		n.mu.Unlock()
	}()

	rctx, rcancel := context.WithTimeout(sctx, n.requestTimeout())
	defer rcancel()
	st, exclusive, err := n.ensureStream(rctx)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", n.cfg.Stream, err)
	}
	p, err := n.plan(rctx, st, exclusive)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", n.cfg.Stream, err)
	}

	cc := jetstream.ConsumerConfig{
		Description:       "introspectd revocation replay",
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		ReplayPolicy:      jetstream.ReplayInstantPolicy,
		InactiveThreshold: max(n.cfg.MaxStaleness, 30*time.Second),
		MemoryStorage:     true,
		Replicas:          1,
	}
	if p.start > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = p.start
	}
	if !exclusive {
		cc.FilterSubject = n.cfg.Subject + ".>"
	}
	cons, err := n.js.CreateConsumer(rctx, n.cfg.Stream, cc)
	if err != nil {
		return false, fmt.Errorf("create consumer: %w", err)
	}
	name := cons.CachedInfo().Name
	defer n.deleteConsumer(name)

	n.contactAt(time.Now())
	n.mu.Lock()
	n.lastErr = ""
	n.mu.Unlock()
	began := time.Now()
	n.target.Store(p.target)
	n.streamLast.Store(max(n.streamLast.Load(), p.target))
	if p.target < p.expect {
		n.caughtUpAt(gen, began, p, 0)
	}

	// Any error ends the session; the next one resumes after the last
	// applied event, so it costs little to be strict.
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	var applied atomic.Bool
	// The handler runs on one goroutine at a time, so these need no lock.
	var (
		expect      = p.expect
		dseq, count uint64
		stopped     bool
	)
	handler := func(msg jetstream.Msg) {
		if stopped {
			return
		}
		md, err := msg.Metadata()
		if err != nil {
			stopped = true
			fail(fmt.Errorf("message metadata: %w", err))
			return
		}
		if md.Sequence.Consumer != dseq+1 {
			// A lost pull response or a redelivery: start over from
			// the last applied event.
			stopped = true
			fail(errOutOfStep)
			return
		}
		dseq = md.Sequence.Consumer
		seq := md.Sequence.Stream
		if p.checkSeq && seq > expect && !allHoles(p.holes, expect, seq) {
			stopped = true
			n.requestResync(fmt.Sprintf("stream sequences %d to %d were removed before they were applied", expect, seq-1))
			fail(errGap)
			return
		}
		n.handle(msg.Subject(), msg.Data(), seq)
		n.applied.Store(seq)
		// NumPending tells how far the stream reaches beyond this event,
		// so lag is current between heartbeats.
		if last := seq + md.NumPending; last > n.streamLast.Load() {
			n.streamLast.Store(last)
		}
		applied.Store(true)
		expect = seq + 1
		count++
		if count%256 == 0 || md.NumPending == 0 {
			n.contactAt(time.Now())
		}
		if !n.isCaughtUp() && (seq >= p.target || md.NumPending == 0) {
			n.caughtUpAt(gen, began, p, count)
		}
	}
	hb := min(max(n.cfg.HeartbeatInterval, 500*time.Millisecond), 10*time.Second)
	cctx, err := cons.Consume(handler,
		jetstream.PullMaxMessages(pullBatch),
		jetstream.PullHeartbeat(hb),
		jetstream.PullExpiry(min(max(4*hb, 2*time.Second), 30*time.Second)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { fail(err) }),
	)
	if err != nil {
		return false, fmt.Errorf("consume: %w", err)
	}
	defer func() {
		cctx.Stop()
		select {
		case <-cctx.Closed():
		case <-time.After(5 * time.Second):
			n.log.Warn("revocation: consumer did not stop in time")
		}
	}()

	select {
	case <-sctx.Done():
		return applied.Load(), sctx.Err()
	case err := <-errc:
		return applied.Load(), err
	}
}

// plan decides where a session starts, from the stream's state and what
// the node applied. It replays from the first available event (a resync)
// when the stream lost events that the node never applied, when the stream
// was recreated or went back, or when a session found a gap.
func (n *Node) plan(ctx context.Context, st jetstream.Stream, exclusive bool) (plan, error) {
	info := st.CachedInfo()
	state := info.State
	applied := n.applied.Load()

	n.mu.Lock()
	reason, created := n.resync, n.streamCreated
	pending := reason != ""
	switch {
	case reason != "":
	case !created.IsZero() && !created.Equal(info.Created):
		reason = "the stream was recreated"
	case state.LastSeq < applied:
		reason = fmt.Sprintf("the stream ends at %d, before the last applied event %d", state.LastSeq, applied)
	case applied > 0 && state.FirstSeq > applied+1:
		reason = fmt.Sprintf("the stream starts at %d, events after the last applied %d are gone", state.FirstSeq, applied)
	}
	n.resync = reason
	n.streamCreated = info.Created
	n.mu.Unlock()

	p := plan{target: state.LastSeq, resync: reason, checkSeq: exclusive}
	first := max(state.FirstSeq, 1)
	switch {
	case reason != "":
		level := slog.LevelDebug // already logged when it was found
		if !pending {
			n.resyncs.Add(1)
			level = slog.LevelWarn
		}
		n.log.Log(ctx, level, "revocation: resyncing from the first available event; not ready until caught up",
			"reason", reason, "applied_seq", applied, "first_seq", state.FirstSeq, "last_seq", state.LastSeq)
		// Nothing applied is dropped: entries stay until they expire.
		n.applied.Store(first - 1)
		p.expect = first
	case applied == 0:
		p.expect = first
	default:
		p.start = applied + 1
		p.expect = applied + 1
	}

	if exclusive && state.NumDeleted > 0 {
		if state.NumDeleted > maxHoles {
			p.checkSeq = false
		} else {
			full, err := st.Info(ctx, jetstream.WithDeletedDetails(true))
			if err != nil {
				return plan{}, fmt.Errorf("stream info: %w", err)
			}
			p.holes = slices.Clone(full.State.Deleted)
			slices.Sort(p.holes)
		}
	}
	return p, nil
}

// allHoles reports whether every sequence in [from, to) is one of the
// sorted holes.
func allHoles(holes []uint64, from, to uint64) bool {
	i, _ := slices.BinarySearch(holes, from)
	j, _ := slices.BinarySearch(holes, to)
	return uint64(j-i) == to-from
}

func (n *Node) caughtUpAt(gen uint64, began time.Time, p plan, count uint64) {
	n.mu.Lock()
	if n.gen.Load() != gen {
		n.mu.Unlock()
		return // a late callback of a session that was replaced
	}
	n.resync = ""
	n.mu.Unlock()
	n.markCaughtUp(gen)
	attrs := []any{"applied_seq", n.applied.Load(), "events", count, "took", time.Since(began).Round(time.Millisecond)}
	if p.resync != "" || p.start == 0 {
		n.log.Info("revocation: history replayed", attrs...)
	} else {
		n.log.Debug("revocation: caught up", attrs...)
	}
}

// requestResync makes the next session replay from the first available
// event, counting it once.
func (n *Node) requestResync(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.resync == "" {
		n.resyncs.Add(1)
		n.log.Warn("revocation: gap in the stream; resyncing from the first available event", "reason", reason)
	}
	n.resync = reason
}

// handle parses and applies one event. Malformed events are counted and
// logged without token material, then skipped.
func (n *Node) handle(subject string, body []byte, seq uint64) {
	e, err := ParseEvent(subject, body, n.cfg.Subject)
	if err != nil {
		i := e.Kind.index()
		if i < 0 {
			i = len(kinds)
		}
		n.nMalformed[i].Add(1)
		n.log.Warn("revocation: skipping malformed event", "kind", e.Kind, "seq", seq, "error", err)
		return
	}
	n.deny.Apply(e)
	n.nApplied[e.Kind.index()].Add(1)
}

func (n *Node) waitConnected(ctx context.Context) error {
	if n.nc.IsConnected() {
		return nil
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if n.nc.IsConnected() {
				return nil
			}
		}
	}
}

func (n *Node) deleteConsumer(name string) {
	if !n.nc.IsConnected() {
		return // the server drops it after InactiveThreshold
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.js.DeleteConsumer(ctx, n.cfg.Stream, name)
}

// streamConfig is the stream that [Start] creates when it is absent. Every
// jti event shares one subject, so neither a per-subject limit nor
// "last per subject" delivery may be used: both would keep only the last
// revocation.
func (n *Node) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.cfg.Stream,
		Description: "introspectd revocation events",
		Subjects:    []string{n.cfg.Subject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      n.minStreamAge() + StreamAgeMargin,
		MaxMsgSize:  MaxEventSize,
		Replicas:    n.cfg.Replicas,
	}
}

func (n *Node) minStreamAge() time.Duration {
	return n.cfg.MaxTokenLifetime + n.cfg.Leeway
}

// ensureStream returns the stream, creating it when absent. exclusive
// reports whether the stream captures exactly the node's subjects, so that
// every stream sequence is an event of ours.
func (n *Node) ensureStream(ctx context.Context) (st jetstream.Stream, exclusive bool, err error) {
	st, err = n.js.Stream(ctx, n.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = n.js.CreateStream(ctx, n.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = n.js.Stream(ctx, n.cfg.Stream)
		} else if err == nil {
			n.log.Info("revocation: created stream", "stream", n.cfg.Stream,
				"subjects", n.cfg.Subject+".>", "max_age", n.streamConfig().MaxAge, "replicas", n.cfg.Replicas)
		}
	}
	if err != nil {
		return nil, false, err
	}
	cfg := st.CachedInfo().Config
	ours := n.cfg.Subject + ".>"
	covered := false
	for _, s := range cfg.Subjects {
		if server.SubjectMatchesFilter(ours, s) {
			covered = true
		}
	}
	if !covered {
		return nil, false, fmt.Errorf("the stream does not capture %s", ours)
	}
	exclusive = len(cfg.Subjects) == 1 && cfg.Subjects[0] == ours
	if n.warnedStream.CompareAndSwap(false, true) {
		n.checkStream(cfg, exclusive)
	}
	return st, exclusive, nil
}

// checkStream warns about settings of an existing stream that can lose
// revocations.
func (n *Node) checkStream(cfg jetstream.StreamConfig, exclusive bool) {
	name := "stream"
	if cfg.MaxAge != 0 && cfg.MaxAge < n.minStreamAge() {
		n.log.Warn("revocation: stream MaxAge is shorter than max_token_lifetime plus leeway; "+
			"a node that starts later misses revocations that still matter",
			name, cfg.Name, "max_age", cfg.MaxAge, "want_at_least", n.minStreamAge())
	}
	if cfg.MaxMsgsPerSubject > 0 {
		n.log.Warn("revocation: stream keeps a limited number of events per subject; "+
			"every jti event shares one subject, so older revocations are dropped",
			name, cfg.Name, "max_msgs_per_subject", cfg.MaxMsgsPerSubject)
	}
	if cfg.Retention != jetstream.LimitsPolicy {
		n.log.Warn("revocation: stream retention is not limits; events may be removed before every node replayed them",
			name, cfg.Name, "retention", cfg.Retention.String())
	}
	if cfg.MaxMsgs > 0 || cfg.MaxBytes > 0 {
		n.log.Warn("revocation: stream has a size limit; revocations may be dropped before they expire",
			name, cfg.Name, "max_msgs", cfg.MaxMsgs, "max_bytes", cfg.MaxBytes)
	}
	if !exclusive {
		n.log.Warn("revocation: stream captures other subjects too; gaps are only detected when the consumer restarts",
			name, cfg.Name, "subjects", cfg.Subjects)
	}
}
