package revocation

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish publishes events on "<subject>.<kind>" through JetStream and
// returns the stream sequence of the last one once JetStream acknowledged
// every event. It fails, and says so, when any event is malformed, not
// acknowledged in time or rejected; some of the events may then be stored
// nonetheless, which is harmless since applying an event twice changes
// nothing. Callers retry or report the failure (POST /revoke answers 503):
// nothing is lost silently.
//
// When ctx has no deadline, [DefaultPublishTimeout] applies. On success the
// events are also applied to the node's deny-list at once, so a revocation
// holds on this node before Publish returns.
func (n *Node) Publish(ctx context.Context, events ...Event) (lastSeq uint64, err error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	if len(events) == 0 {
		return 0, nil
	}
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		body, err := e.MarshalJSON()
		if err != nil {
			return 0, fmt.Errorf("revocation: publish: %w", err)
		}
		msgs[i] = &nats.Msg{Subject: e.Subject(n.cfg.Subject), Data: body}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := n.js.PublishMsgAsync(m, jetstream.WithExpectStream(n.cfg.Stream))
		if err != nil {
			return 0, fmt.Errorf("revocation: publish: %w", err)
		}
		futures[i] = f
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			lastSeq = max(lastSeq, ack.Sequence)
		case err := <-f.Err():
			return 0, fmt.Errorf("revocation: publish: %w", err)
		case <-ctx.Done():
			return 0, fmt.Errorf("revocation: publish: no acknowledgement: %w", ctx.Err())
		}
	}
	for _, e := range events {
		n.deny.Apply(e)
	}
	return lastSeq, nil
}
