package revocation_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"time"

	"github.com/introspectd/introspectd/revocation"
)

func ExampleDenyList() {
	deny := revocation.NewDenyList(revocation.DenyListConfig{
		Leeway:           30 * time.Second,
		MaxTokenLifetime: 24 * time.Hour,
	})
	raw := "eyJhbGciOiJFUzI1NiJ9.e30.sig" // the token as presented
	now := time.Now().Unix()
	// Built once per verification and kept with the cached result.
	tok := revocation.NewToken(sha256.Sum256([]byte(raw)), [32]byte{},
		"https://auth.example.com/", "4f1c", "alice", "gateway", now-60, now+3600)

	fmt.Println(deny.Revoked(tok))
	deny.Apply(revocation.Event{Kind: revocation.KindSub, Iss: "https://auth.example.com/", Sub: "alice", NotBefore: now})
	fmt.Println(deny.Revoked(tok))
	// Output:
	// false
	// true
}

func ExampleNode() {
	deny := revocation.NewDenyList(revocation.DenyListConfig{MaxTokenLifetime: 24 * time.Hour})
	// No URLs: an embedded nats-server with JetStream on loopback.
	node, err := revocation.Start(context.Background(), revocation.Config{
		DataDir:          "/var/lib/introspectd/nats",
		MaxTokenLifetime: 24 * time.Hour,
		MaxStaleness:     time.Minute,
	}, deny)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	// /readyz
	if ok, reason := node.Ready(); !ok {
		log.Printf("not ready: %s", reason)
	}
	// POST /revoke: 200 only once JetStream acknowledged.
	seq, err := node.Publish(context.Background(),
		revocation.Event{Kind: revocation.KindJTI, Iss: "https://auth.example.com/", Jti: "4f1c", Exp: 1767225600})
	if err != nil {
		log.Printf("revoke: %v", err) // answer 503
	}
	log.Printf("revoked at stream sequence %d", seq)
}
