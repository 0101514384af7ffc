// Package revocation holds the deny-list of revoked tokens and keeps it in
// step on every node through NATS JetStream.
//
// A JWT cannot be recalled once issued, so revocation is a deny-list that
// every node holds until the token could no longer be active anyway. The
// package has three parts:
//
//   - [DenyList], the in-memory list checked on every answer, cache hits
//     included. [DenyList.Revoked] is O(1), allocation free and lock free in
//     the common case: a [Token] remembers the deny-list epoch at which it was
//     last found clean, so a check costs one atomic load until the list
//     changes. Entries are forgotten once the token could no longer be active
//     ([DenyList.Prune]); the list is never kept in a cache that may drop
//     writes.
//   - [Event], the four kinds of revocation events of the external contract
//     (jti, token, sub, client), with a strict parser ([ParseEvent]) and the
//     exact wire encoding ([Event.MarshalJSON]).
//   - [Node], which connects to NATS (or runs an embedded nats-server with
//     JetStream when no URL is configured), makes sure the stream capturing
//     "<subject>.>" exists, replays the whole stream into the deny-list before
//     it reports ready, follows live events, detects gaps and resyncs, and
//     notices a dead or black-holed connection well within
//     [Config.MaxStaleness]. [Node.Publish] publishes events and returns only
//     once JetStream acknowledged all of them.
//
// # Wire format
//
// Events are published on "<subject>.<kind>" (default subject
// [DefaultSubject]) with JSON bodies:
//
//	jti     {"iss":"…","jti":"…","exp":1767225600}
//	token   {"token_sha256":"<hex>","exp":1767225600}
//	sub     {"iss":"…","sub":"…","not_before":1767225600}
//	client  {"iss":"…","client_id":"…","not_before":1767225600}
//
// A plain core-NATS publish works as well as [Node.Publish]: the stream
// captures it and every node applies it.
//
// # Security
//
// A revocation MUST hold on every node until the token could no longer be
// active: jti and token entries until exp plus leeway, sub and client entries
// until not_before plus the maximum token lifetime plus leeway. No kind masks
// another: an entry of one kind never makes a token that another entry
// revokes look active, an entry for one issuer never affects another, and
// events with an empty jti, sub or client_id are rejected as malformed rather
// than matching tokens that lack the claim.
//
// Malformed events are counted and logged without token material (neither
// the body nor any hash) and skipped; they never stop the node.
package revocation
